package interop

// End-to-end tests of examples/cli-login against the real AS and RS: the
// CLI is built and run as a subprocess, and the headless browser plays the
// user.

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/keystore"
)

// cliRunTimeout bounds each run of the CLI; its own -timeout (the wait for
// the login) is shorter, so a login that never completes fails inside it.
const (
	cliRunTimeout   = 2 * time.Minute
	cliLoginTimeout = "90s"
)

// cliURLRe finds the URL the CLI asks the user to visit: the authorization
// URL ("To log in, visit: …") or the device verification_uri_complete
// ("Or visit: …").
var cliURLRe = regexp.MustCompile(`visit: (\S+)`)

// buildCLI builds examples/cli-login (its own module) into a temporary
// directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		t.Fatalf("go env GOMOD: %q, %v", out, err)
	}
	bin := filepath.Join(t.TempDir(), "cli-login")
	// examples/cli-login is a module of its own (it imports tpmkey and
	// github.com/cli/browser): build it from its directory.
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "examples", "cli-login")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/cli-login: %v\n%s", err, out)
	}
	return bin
}

// cliProc is one running CLI process.
type cliProc struct {
	t       *testing.T
	cancel  context.CancelFunc
	stdout  bytes.Buffer // written by exec until done
	urls    chan string  // URLs the CLI printed for the user
	done    chan struct{}
	waitErr error // set before done is closed

	mu     sync.Mutex // guards stderr
	stderr strings.Builder
}

// startCLI starts bin with args. If expectURL is false, a URL to visit on
// stderr (a login the test did not expect) kills the process at once, so the
// test fails fast rather than at the login timeout. The process is killed and
// reaped at the end of the test in any case.
func startCLI(t *testing.T, bin string, expectURL bool, args ...string) *cliProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliRunTimeout)
	p := &cliProc{t: t, cancel: cancel, urls: make(chan string, 4), done: make(chan struct{})}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 10 * time.Second
	cmd.Stdout = &p.stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		p.cancel()
		<-p.done
	})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			if m := cliURLRe.FindStringSubmatch(line); m != nil {
				if !expectURL {
					cancel()
				}
				select {
				case p.urls <- m[1]:
				default:
				}
			}
		}
		p.waitErr = cmd.Wait()
	}()
	return p
}

// url returns the first URL the CLI printed for the user, failing the test
// if it exits or times out first.
func (p *cliProc) url() string {
	p.t.Helper()
	select {
	case u := <-p.urls:
		return u
	case <-p.done:
		p.t.Fatalf("cli-login exited (%v) without printing a URL to visit; stderr:\n%s", p.waitErr, p.errText())
	case <-time.After(cliRunTimeout):
		p.t.Fatalf("cli-login printed no URL to visit; stderr:\n%s", p.errText())
	}
	return ""
}

// wait waits for the process to exit and fails the test unless it exited 0.
func (p *cliProc) wait() {
	p.t.Helper()
	<-p.done
	if p.waitErr != nil {
		p.t.Fatalf("cli-login: %v\nstdout:\n%s\nstderr:\n%s", p.waitErr, p.stdout.String(), p.errText())
	}
	p.t.Logf("cli-login stderr:\n%s", p.errText())
}

func (p *cliProc) errText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// cliWhoami is what the RS's /api/whoami answered, as the CLI printed it.
type cliWhoami struct {
	Sub      string `json:"sub"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	JKT      string `json:"jkt"`
}

// apiAnswer parses the CLI's stdout: the status line, then the body.
func (p *cliProc) apiAnswer() cliWhoami {
	p.t.Helper()
	status, body, _ := strings.Cut(p.stdout.String(), "\n")
	if status != "200 OK" {
		p.t.Fatalf("API status line %q; want 200 OK\nstdout:\n%s\nstderr:\n%s", status, p.stdout.String(), p.errText())
	}
	var w cliWhoami
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		p.t.Fatalf("API body is not JSON: %v\n%s", err, body)
	}
	return w
}

// cliStore is the CLI's file store, opened by the test itself.
type cliStore struct {
	t  *testing.T
	fs *keystore.FileStore
}

// entry returns the name of the single entry with the prefix ("dpop-key-"
// or "dpop-token-"), or "" when there is none.
func (s cliStore) entry(prefix string) string {
	s.t.Helper()
	m, err := filepath.Glob(filepath.Join(s.fs.Dir, prefix+"*"))
	if err != nil || len(m) > 1 {
		s.t.Fatalf("entries %s* in %s: %q, %v", prefix, s.fs.Dir, m, err)
	}
	if len(m) == 0 {
		return ""
	}
	return filepath.Base(m[0])
}

// jkt returns the RFC 7638 thumbprint of the stored key, computed with
// go-jose, not with the SDK.
func (s cliStore) jkt() string {
	s.t.Helper()
	name := s.entry("dpop-key-")
	if name == "" {
		s.t.Fatalf("no key stored in %s", s.fs.Dir)
	}
	key, err := keystore.LoadKey(s.fs, name)
	if err != nil {
		s.t.Fatal(err)
	}
	tp, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		s.t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

func (s cliStore) token(jkt string) (name string, tok *tokenCopy) {
	s.t.Helper()
	name = s.entry("dpop-token-")
	if name == "" {
		s.t.Fatalf("no token stored in %s", s.fs.Dir)
	}
	tk, err := keystore.LoadToken(s.fs, name, jkt)
	if err != nil {
		s.t.Fatalf("stored token: %v", err)
	}
	return name, &tokenCopy{tk.AccessToken, tk.RefreshToken, tk.Expiry}
}

type tokenCopy struct {
	access, refresh string
	expiry          time.Time
}

// cliBrowse runs headlessBrowse as the user's browser and reports its
// result on the returned channel.
func cliBrowse(authURL string) <-chan error {
	ch := make(chan error, 1)
	go func() {
		status, body, err := headlessBrowse(authURL)
		switch {
		case err != nil:
			ch <- err
		case status != 200 || !strings.Contains(body, `id="login-ok"`):
			ch <- fmt.Errorf("loopback page: HTTP %d:\n%s", status, snippet(body))
		default:
			ch <- nil
		}
	}()
	return ch
}

// TestCLILogin runs the CLI as a user would, with a file store: the first
// run logs in through the loopback redirect (PAR, PKCE, dpop_jkt) and calls
// the RS; the second reuses the stored token; the third finds it expired and
// refreshes it with the same key (the AS rotates the refresh token, and the
// new one must be saved); logout deletes token and key, so the next run logs
// in again, with a new key.
func TestCLILogin(t *testing.T) {
	issuer, rs := requireInterop(t)
	bin := buildCLI(t)
	dir := t.TempDir()
	store := cliStore{t, &keystore.FileStore{Dir: dir}}
	args := []string{
		"-store", "file", "-dir", dir, "-no-browser", "-timeout", cliLoginTimeout,
		"-issuer", issuer, "-client-id", publicClientID(t), "-scopes", "openid api:read",
		"-api", rs + "/api/whoami",
	}

	login := func(step string) (jkt string) {
		t.Helper()
		p := startCLI(t, bin, true, args...)
		authURL := p.url()
		if !strings.Contains(authURL, "request_uri=") {
			t.Errorf("%s: authorization URL %s; want a pushed request (request_uri), the AS offers PAR", step, authURL)
		}
		browsed := cliBrowse(authURL)
		p.wait()
		if err := <-browsed; err != nil {
			t.Fatalf("%s: browser: %v", step, err)
		}
		if !strings.Contains(p.errText(), "login required") {
			t.Errorf("%s: stderr does not say why a login was needed:\n%s", step, p.errText())
		}
		w := p.apiAnswer()
		jkt = store.jkt()
		if w.JKT != jkt || w.Sub != "alice" || w.ClientID != "cli" {
			t.Errorf("%s: API answered %+v; want sub alice, client_id cli, jkt %s", step, w, jkt)
		}
		return jkt
	}

	// 1. First run: no key, no token → login, key created, API 200.
	jkt := login("first run")
	tokenName, tok1 := store.token(jkt)

	// 2. Second run: the stored token is valid → no login, no refresh.
	p := startCLI(t, bin, false, args...)
	p.wait()
	if w := p.apiAnswer(); w.JKT != jkt {
		t.Errorf("second run: API jkt %q; want %q", w.JKT, jkt)
	}
	if _, tok2 := store.token(jkt); tok2.refresh != tok1.refresh || tok2.access != tok1.access {
		t.Errorf("second run changed the stored token; want it reused")
	}

	// 3. Mark the stored token expired: the CLI must refresh it with the
	// same key and save the rotated refresh token.
	tk, err := keystore.LoadToken(store.fs, tokenName, jkt)
	if err != nil {
		t.Fatal(err)
	}
	tk.Expiry = time.Now().Add(-time.Minute)
	if err := keystore.SaveToken(store.fs, tokenName, tk, jkt); err != nil {
		t.Fatal(err)
	}
	p = startCLI(t, bin, false, args...)
	p.wait()
	if w := p.apiAnswer(); w.JKT != jkt {
		t.Errorf("third run: API jkt %q; want %q", w.JKT, jkt)
	}
	if !strings.Contains(p.errText(), "token refreshed") {
		t.Errorf("third run: stderr does not say the token was refreshed:\n%s", p.errText())
	}
	_, tok3 := store.token(jkt)
	if tok3.refresh == "" || tok3.refresh == tok1.refresh {
		t.Errorf("third run: stored refresh token unchanged; want the rotated one saved")
	}
	if tok3.access == tok1.access || !tok3.expiry.After(time.Now()) {
		t.Errorf("third run: stored access token not refreshed (expiry %v)", tok3.expiry)
	}

	// 4. A fourth run uses the rotated refresh token, proving the saved one
	// is the newest (the AS revokes the grant when an old one is reused).
	tk, _ = keystore.LoadToken(store.fs, tokenName, jkt)
	tk.Expiry = time.Now().Add(-time.Minute)
	if err := keystore.SaveToken(store.fs, tokenName, tk, jkt); err != nil {
		t.Fatal(err)
	}
	p = startCLI(t, bin, false, args...)
	p.wait()
	p.apiAnswer()

	// 5. logout revokes the refresh token at the AS (the access token, a
	// JWT, oidc-provider cannot revoke), then deletes token and key.
	key, err := keystore.LoadKey(store.fs, store.entry("dpop-key-"))
	if err != nil {
		t.Fatal(err)
	}
	_, last := store.token(jkt)
	p = startCLI(t, bin, false, append(args, "logout")...)
	p.wait()
	if k, tn := store.entry("dpop-key-"), store.entry("dpop-token-"); k != "" || tn != "" {
		t.Fatalf("after logout: key %q, token %q still stored", k, tn)
	}
	for _, want := range []string{"revoked the refresh token at the server", "cannot revoke the access token", "deleted the token and the key"} {
		if !strings.Contains(p.errText(), want) {
			t.Errorf("logout: stderr does not say %q:\n%s", want, p.errText())
		}
	}
	if err := refreshWith(issuer, key, last.refresh); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("refresh with the logged-out refresh token and its key = %v; want invalid_grant", err)
	}

	// 6. The next run logs in again, with a new key.
	if jkt2 := login("after logout"); jkt2 == jkt {
		t.Errorf("after logout: same key %s; want a new one", jkt)
	}
}

// TestCLILoginDevice logs in with the device grant (-device): the CLI prints
// the verification_uri_complete, the test approves it as the user, and the
// CLI's poll gets a DPoP-bound token that the RS accepts.
func TestCLILoginDevice(t *testing.T) {
	issuer, rs := requireInterop(t)
	bin := buildCLI(t)
	dir := t.TempDir()
	store := cliStore{t, &keystore.FileStore{Dir: dir}}
	p := startCLI(t, bin, true,
		"-device", "-store", "file", "-dir", dir, "-timeout", cliLoginTimeout,
		"-issuer", issuer, "-client-id", publicClientID(t), "-scopes", "openid api:read",
		"-api", rs+"/api/whoami")
	uri := p.url()
	if !strings.Contains(p.errText(), "enter the code") {
		t.Errorf("stderr does not show the user code:\n%s", p.errText())
	}
	headlessApproveDevice(t, uri)
	p.wait()
	if !regexp.MustCompile(`poll \d+: approved`).MatchString(p.errText()) {
		t.Errorf("stderr does not show the polls' progress:\n%s", p.errText())
	}
	w := p.apiAnswer()
	if jkt := store.jkt(); w.JKT != jkt || w.Sub != "alice" {
		t.Errorf("API answered %+v; want sub alice, jkt %s", w, jkt)
	}
	store.token(w.JKT)
}

// refreshWith refreshes refreshToken with a proof of key, as the CLI would
// have, and returns the error.
func refreshWith(issuer string, key crypto.Signer, refreshToken string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := dpop.Discover(ctx, issuer)
	if err != nil {
		return err
	}
	s, err := dpop.NewSigner(key, nil)
	if err != nil {
		return err
	}
	cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "cli", Endpoint: md.Endpoint()}, Signer: s}
	_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	return err
}
