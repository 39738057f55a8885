package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
)

// apiBinary is the command built once by TestMain.
var apiBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dpop-examples-api")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	apiBinary = filepath.Join(dir, "api")
	out, err := exec.Command("go", "build", "-o", apiBinary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is a running api process.
type instance struct {
	URL    string // http://127.0.0.1:port, as printed
	Addr   string // 127.0.0.1:port
	cmd    *exec.Cmd
	stderr *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAPI starts the command with args (and env added to the test's), waits
// for its first line and stops it with SIGTERM at the end of the test,
// checking that it exits cleanly.
func startAPI(t *testing.T, env []string, args ...string) *instance {
	t.Helper()
	cmd := exec.Command(apiBinary, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	inst := &instance{cmd: cmd, stderr: &lockedBuffer{}}
	cmd.Stderr = inst.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- line
		io.Copy(io.Discard, r)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("api did not print its address within 30s; stderr:\n%s", inst.stderr)
	}
	u, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok || !strings.HasPrefix(u, "http://127.0.0.1:") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("first line %q, want \"listening on http://127.0.0.1:PORT\"; stderr:\n%s", line, inst.stderr)
	}
	inst.URL = u
	inst.Addr = strings.TrimPrefix(u, "http://")
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("api exited with %v after SIGTERM; stderr:\n%s", err, inst.stderr)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("api did not stop within 15s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("api %s stderr:\n%s", inst.URL, inst.stderr)
		}
	})
	return inst
}

// newSigner returns a Signer on a new P-256 key.
func newSigner(t testing.TB) *dpop.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dialTo returns a transport that sends every request to addr, whatever
// the URL's host: a load balancer in front of instances that share one
// public URL.
func dialTo(addr string) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 128,
	}
}

// rawRequest sends method url with exactly these Authorization and DPoP
// headers through rt, and returns the status, the error code of the
// challenge, the DPoP-Nonce answered and the body.
func rawRequest(t testing.TB, rt http.RoundTripper, method, url, auth string, proofs ...string) (status int, code, nonce string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, challengeCode(resp.Header.Get("WWW-Authenticate")), resp.Header.Get("DPoP-Nonce"), body
}

// challengeCode returns the error parameter of a DPoP challenge.
func challengeCode(h string) string {
	_, rest, ok := strings.Cut(h, `error="`)
	if !ok {
		return ""
	}
	code, _, _ := strings.Cut(rest, `"`)
	return code
}

// grant is the JSON document the API answers.
type grant struct {
	Sub      string `json:"sub"`
	JKT      string `json:"jkt"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Method   string `json:"method"`
	Path     string `json:"path"`
}

func decodeGrant(t testing.TB, body []byte) grant {
	t.Helper()
	var g grant
	if err := json.Unmarshal(body, &g); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return g
}

// fullTest reports whether DPOP_FULL_TEST=1: a missing real part fails.
func fullTest() bool { return os.Getenv("DPOP_FULL_TEST") == "1" }

func writeFile(name, s string) error { return os.WriteFile(name, []byte(s), 0o600) }

// redisAddr returns the Redis of scripts/with-redis.sh, or skips (fails
// under DPOP_FULL_TEST=1).
func redisAddr(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("DPOP_REDIS_ADDR")
	if addr == "" {
		msg := "no Redis: run under scripts/with-redis.sh (sets DPOP_REDIS_ADDR)"
		if fullTest() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return addr
}

// redisServer is a redis-server of a test's own, on a fixed port so that
// it can be stopped and started again at the same address.
type redisServer struct {
	Addr string
	port string
	dir  string
	cmd  *exec.Cmd
}

// newRedisServer starts redis-server on a free 127.0.0.1 port, without
// persistence; it is stopped at the end of the test.
func newRedisServer(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		msg := "no redis-server on PATH: run under scripts/with-redis.sh"
		if fullTest() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	s := &redisServer{Addr: addr, port: port, dir: t.TempDir()}
	s.Start(t)
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server and waits until it answers.
func (s *redisServer) Start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", s.port,
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"))
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Write([]byte("PING\r\n"))
			buf := make([]byte, 7)
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := io.ReadFull(c, buf)
			c.Close()
			if string(buf[:n]) == "+PONG\r\n" {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.Stop()
	t.Fatalf("redis-server on %s did not answer within 5s", s.Addr)
}

// Stop kills the server and waits for it.
func (s *redisServer) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}
