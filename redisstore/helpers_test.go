package redisstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestMain quiets go-redis's own log: the tests stop and freeze Redis on
// purpose, and each failed dial would be logged.
func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{})
	os.Exit(m.Run())
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// runWith is the command that runs the tests that need Redis; they skip
// without it.
const runWith = "run them with scripts/with-redis.sh bash -c 'cd redisstore && go test ./...' (it starts redis-server)"

// skipOrFail skips the test for a missing real part, or fails it under
// DPOP_FULL_TEST=1 (the full test command must never skip).
func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("DPOP_FULL_TEST") == "1" {
		t.Fatalf("DPOP_FULL_TEST=1 but %s: %s", msg, runWith)
	}
	t.Skipf("%s: %s", msg, runWith)
}

// redisAddr returns the address of the Redis that scripts/with-redis.sh
// started (DPOP_REDIS_ADDR).
func redisAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("DPOP_REDIS_ADDR")
	if addr == "" {
		skipOrFail(t, "no Redis (DPOP_REDIS_ADDR unset)")
	}
	return addr
}

// newClient returns a client of the Redis at addr, closed at the test's
// end. contextTimeout is its ContextTimeoutEnabled.
func newClient(t testing.TB, addr string, contextTimeout bool) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: contextTimeout,
		// Long enough that a test passing through the Store's own bound
		// cannot be mistaken for one passing through the client's.
		ReadTimeout:  time.Minute,
		WriteTimeout: time.Minute,
		DialTimeout:  time.Minute,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// testTimeout is the Timeout of the Stores of tests that are not about
// it: long, for a loaded machine running the race detector.
const testTimeout = 10 * time.Second

// newTestStore returns a Store on the shared test Redis, with a prefix of
// its own so that tests do not see each other's records. It has the
// signature resource/storetest.TestReplayStore takes.
func newTestStore(t *testing.T) *Store {
	t.Helper()
	return &Store{Client: newClient(t, redisAddr(t), true), Prefix: testPrefix(t), Timeout: testTimeout}
}

// testPrefix returns a key prefix no other test uses.
func testPrefix(t testing.TB) string {
	return "dpop:test:" + randomString(t, 6) + ":"
}

// newPair returns a fresh (jkt, jti) pair shaped as the Verifier's: 43
// characters of unpadded base64url each.
func newPair(t testing.TB) (jkt, jti string) {
	return randomString(t, 32), randomString(t, 32)
}

func randomString(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// scanKeys returns every key of c that starts with prefix.
func scanKeys(t testing.TB, c redis.UniversalClient, prefix string) []string {
	t.Helper()
	var keys []string
	iter := c.Scan(context.Background(), 0, prefix+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN %s*: %v", prefix, err)
	}
	return keys
}

// server is a redis-server of a test's own, on 127.0.0.1, without
// persistence, that the test can stop, freeze and start again on the same
// port. It is killed at the test's end.
type server struct {
	t    testing.TB
	addr string
	dir  string
	conf string // the configuration file's content, if any
	args []string
	cmd  *exec.Cmd
}

// startServer starts a redis-server with the extra arguments args.
func startServer(t testing.TB, args ...string) *server {
	t.Helper()
	return startServerConf(t, "", args...)
}

// startServerConf starts a redis-server with a configuration file holding
// conf, and the extra arguments args.
func startServerConf(t testing.TB, conf string, args ...string) *server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		skipOrFail(t, "no redis-server on PATH")
	}
	s := &server{t: t, dir: t.TempDir(), conf: conf, args: args}
	t.Cleanup(s.kill)
	var err error
	for range 5 { // another process may take the free port first
		var l net.Listener
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		s.addr = l.Addr().String()
		l.Close()
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("redis-server did not start: %v", err)
	return nil
}

// start starts redis-server on s.addr and waits until it answers PING.
func (s *server) start() error {
	_, port, _ := net.SplitHostPort(s.addr)
	args := append([]string{
		"--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"),
	}, s.args...)
	if s.conf != "" { // a configuration file first: Sentinel needs one to write to
		conf := filepath.Join(s.dir, "redis.conf")
		if err := os.WriteFile(conf, []byte(s.conf), 0o600); err != nil {
			return err
		}
		args = append([]string{conf}, args...)
	}
	s.cmd = exec.Command("redis-server", args...)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { s.cmd.Wait(); close(exited) }()
	c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	for range 200 {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server exited: %s", lastLines(string(log), 5))
		default:
		}
		if c.Ping(context.Background()).Err() == nil {
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.kill()
	return fmt.Errorf("redis-server on %s does not answer PING", s.addr)
}

// restart starts the server again, on its address, after kill.
func (s *server) restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("restarting redis-server: %v", err)
	}
}

// kill stops the server at once, as a crash would; its records are lost.
func (s *server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGCONT) // a frozen server dies too
		s.cmd.Process.Kill()
		for range 200 { // until the port is free again
			if err := s.cmd.Process.Signal(syscall.Signal(0)); err != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		s.cmd = nil
	}
}

// freeze stops the server's process (SIGSTOP): connections are still
// accepted by the kernel, and nothing is answered, until thaw.
func (s *server) freeze() { s.signal(syscall.SIGSTOP) }

// thaw undoes freeze.
func (s *server) thaw() { s.signal(syscall.SIGCONT) }

func (s *server) signal(sig syscall.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v: %v", sig, err)
	}
}

// startCluster starts a Redis Cluster of one node holding every slot,
// and returns a cluster client of it.
func startCluster(t testing.TB) *redis.ClusterClient {
	t.Helper()
	s := startServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	c := redis.NewClient(&redis.Options{Addr: s.addr})
	defer c.Close()
	ctx := context.Background()
	if err := c.Do(ctx, "cluster", "addslotsrange", 0, 16383).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	for i := 0; ; i++ {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		if i == 200 {
			t.Fatalf("cluster state not ok: %q, %v", info, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{s.addr}, ContextTimeoutEnabled: true})
	t.Cleanup(func() { cc.Close() })
	return cc
}

// startSentinel starts a Redis server and a Sentinel that monitors it
// under the name "primary", and returns a client that finds the server
// through the Sentinel (redis.NewFailoverClient).
func startSentinel(t testing.TB) *redis.Client {
	t.Helper()
	primary := startServer(t)
	host, port, _ := net.SplitHostPort(primary.addr)
	sentinel := startServerConf(t, fmt.Sprintf("sentinel monitor primary %s %s 1\n", host, port), "--sentinel")
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            "primary",
		SentinelAddrs:         []string{sentinel.addr},
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// commandStats returns the number of calls of each command (lower case)
// that the Redis of c has served, from INFO commandstats.
func commandStats(t testing.TB, c *redis.Client) map[string]int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	stats := make(map[string]int)
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, found := strings.CutPrefix(name, "cmdstat_")
		if !ok || !found {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, err := strconv.Atoi(calls)
		if err != nil {
			t.Fatalf("INFO commandstats line %q", line)
		}
		stats[name] = n
	}
	return stats
}

// countHook counts the commands and pipelines a client sends.
type countHook struct{ commands, pipelines *atomic.Int64 }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.commands.Add(1)
		return next(ctx, cmd)
	}
}

func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		return next(ctx, cmds)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startLossyProxy starts a TCP proxy on 127.0.0.1 to the Redis at target
// that loses one answer: the first connection to send a SET is closed as
// soon as Redis answers it, the answer not passed on. Redis has carried the
// command out; its client does not know, and go-redis sends it again on
// another connection. The proxy stops at the test's end.
func startLossyProxy(t testing.TB, target string) (addr string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		dropped atomic.Bool
		mu      sync.Mutex // guards conns
		conns   []net.Conn
	)
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			var armed atomic.Bool // a SET went to Redis on this connection
			go func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if !dropped.Load() && bytes.Contains(bytes.ToLower(buf[:n]), []byte("\r\nset\r\n")) {
							armed.Store(true)
						}
						s.Write(buf[:n])
					}
					if err != nil {
						s.Close()
						return
					}
				}
			}()
			go func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						if armed.Load() && dropped.CompareAndSwap(false, true) {
							c.Close()
							s.Close()
							return
						}
						c.Write(buf[:n])
					}
					if err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}
