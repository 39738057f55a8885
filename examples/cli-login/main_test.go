package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"github.com/dpopkit/dpop/keystore"
)

func TestParseArgs(t *testing.T) {
	env := map[string]string{
		"DPOP_ISSUER":    "https://as.example",
		"DPOP_CLIENT_ID": "env-client",
		"DPOP_SCOPES":    "openid,api:read  api:write",
		"DPOP_API":       "https://api.example/me",
	}
	getenv := func(k string) string { return env[k] }

	o, err := parseArgs(nil, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.issuer != "https://as.example" || o.clientID != "env-client" || o.api != "https://api.example/me" || o.command != "" {
		t.Errorf("from env: %+v", o)
	}
	if want := []string{"openid", "api:read", "api:write"}; !slices.Equal(o.scopes, want) {
		t.Errorf("scopes = %q; want %q", o.scopes, want)
	}
	if o.store != "keychain" || o.service != "dpop-cli-login" || o.timeout != 5*time.Minute || o.device || o.noBrowser {
		t.Errorf("defaults: %+v", o)
	}

	o, err = parseArgs([]string{"-client-id", "flag-client", "-scopes", "a b", "-store", "file", "-device", "logout"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.clientID != "flag-client" || !slices.Equal(o.scopes, []string{"a", "b"}) || o.store != "file" || !o.device || o.command != "logout" {
		t.Errorf("flags over env: %+v", o)
	}
	if o, err := parseArgs([]string{"logout", "-no-browser"}, getenv, io.Discard); err != nil || o.command != "logout" || !o.noBrowser {
		t.Errorf("command before flags: %+v, %v", o, err)
	}

	for _, args := range [][]string{
		{"frobnicate"},
		{"logout", "logout"},
		{"-store", "vault"},
		{"-timeout", "0s"},
		{"-api", "/relative"},
		{"-api", "ftp://x/y"},
	} {
		if _, err := parseArgs(args, getenv, io.Discard); err == nil {
			t.Errorf("parseArgs(%q) = nil error; want one", args)
		}
	}
	if _, err := parseArgs(nil, func(string) string { return "" }, io.Discard); err == nil || !strings.HasPrefix(err.Error(), "cli-login: ") {
		t.Errorf("no issuer: err = %v; want a cli-login: error", err)
	}
}

func TestEntryNames(t *testing.T) {
	k1, t1 := entryNames("https://a.example", "cli")
	k2, t2 := entryNames("https://b.example", "cli")
	k3, _ := entryNames("https://a.example", "cli")
	if k1 == k2 || t1 == t2 || k1 != k3 || !strings.HasPrefix(k1, "dpop-key-") || !strings.HasPrefix(t1, "dpop-token-") {
		t.Errorf("entryNames: %q %q %q %q %q", k1, t1, k2, t2, k3)
	}
	// Names must be valid in every store.
	var m keystore.MemoryStore
	if err := m.Put(t1, []byte("x")); err != nil {
		t.Errorf("token name %q: %v", t1, err)
	}
}

// TestNewSigner checks the signer made for a stored key: the server's best
// algorithm when the key allows it (RS256 for an RSA key at a server without
// PS256), else the key's own if the server accepts it, else an error.
func TestNewSigner(t *testing.T) {
	for _, tc := range []struct {
		keyAlg    string
		supported []string
		want      string // "" means an error
	}{
		{"ES256", []string{"RS256", "ES256"}, "ES256"},
		{"EdDSA", []string{"ES256", "EdDSA"}, "EdDSA"}, // made when the server preferred it
		{"RS256", []string{"RS256", "ES384"}, "RS256"},
		{"PS256", []string{"PS256", "RS256"}, "PS256"},
		{"ES256", []string{"EdDSA"}, ""},
	} {
		key, err := keystore.LoadOrCreate(&keystore.MemoryStore{}, "k", &keystore.KeyOptions{Alg: tc.keyAlg})
		if err != nil {
			t.Fatal(err)
		}
		s, err := newSigner(key, &dpop.Metadata{DPoPSigningAlgValuesSupported: tc.supported})
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("newSigner(%s key, %q) = %s; want an error", tc.keyAlg, tc.supported, s.Alg())
		case tc.want != "" && (err != nil || s.Alg() != tc.want):
			t.Errorf("newSigner(%s key, %q) = %v; want %s", tc.keyAlg, tc.supported, err, tc.want)
		}
	}
}

// fakeBrowser replaces openBrowser with a client that follows every
// redirect (dpoptest approves without a page) into the loopback listener.
func fakeBrowser(t *testing.T) (opened func() []string) {
	t.Helper()
	var mu sync.Mutex
	var urls []string
	var wg sync.WaitGroup
	orig := openBrowser
	openBrowser = func(u string) error {
		mu.Lock()
		urls = append(urls, u)
		mu.Unlock()
		wg.Go(func() {
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(u)
			if err != nil {
				t.Errorf("browser: %v", err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `id="login-ok"`) {
				t.Errorf("browser: HTTP %d %s", resp.StatusCode, body)
			}
		})
		return nil
	}
	t.Cleanup(func() {
		wg.Wait()
		openBrowser = orig
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(urls)
	}
}

func TestRunWithTestServer(t *testing.T) {
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	opened := fakeBrowser(t)
	dir := t.TempDir()
	args := []string{"-store", "file", "-dir", dir, "-issuer", srv.URL, "-client-id", "cli", "-api", srv.URL + "/api/me", "-timeout", "30s"}
	ctx := context.Background()

	var stdout, stderr bytes.Buffer
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("first run: %v\n%s", err, stderr.String())
	}
	if u := opened(); len(u) != 1 || !strings.Contains(u[0], "request_uri=") {
		t.Fatalf("browser opened %q; want one pushed authorization request URL", u)
	}
	if !strings.Contains(stderr.String(), "If the browser does not open, visit: "+opened()[0]) {
		t.Errorf("stderr does not print the URL:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "stored in files under "+dir) {
		t.Errorf("stderr does not say where the files are:\n%s", stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "200 OK\n") || !strings.Contains(stdout.String(), `"subject":"alice"`) {
		t.Errorf("stdout = %q; want 200 and alice", stdout.String())
	}

	// The second run logs in no more.
	stdout.Reset()
	stderr.Reset()
	srv.ResetRequests()
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("second run: %v\n%s", err, stderr.String())
	}
	if len(opened()) != 1 || strings.Contains(stderr.String(), "login required") {
		t.Errorf("second run logged in again:\n%s", stderr.String())
	}
	for _, r := range srv.Requests() {
		if r.Kind == "token" || r.Kind == "par" {
			t.Errorf("second run: unexpected %s request", r.Kind)
		}
	}

	// A token bound to another key is not used: log in again, saying why.
	keyName, tokenName := entryNames(srv.URL, "cli")
	fs := &keystore.FileStore{Dir: dir}
	tok, err := keystore.LoadToken(fs, tokenName, jktOf(t, fs, keyName))
	if err != nil {
		t.Fatal(err)
	}
	if err := keystore.SaveToken(fs, tokenName, tok, "another-key"); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if err := run(ctx, args, io.Discard, &stderr); err != nil {
		t.Fatalf("third run: %v\n%s", err, stderr.String())
	}
	if len(opened()) != 2 || !strings.Contains(stderr.String(), "bound to key another-key") {
		t.Errorf("third run: opened %d URLs; stderr:\n%s", len(opened()), stderr.String())
	}

	// logout deletes both entries.
	stderr.Reset()
	if err := run(ctx, append(args, "logout"), io.Discard, &stderr); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "dpop-*")); len(m) != 0 {
		t.Errorf("after logout: %q remain", m)
	}
	for _, want := range []string{"revoked the refresh token at the server", "revoked the access token at the server"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("logout does not say %q:\n%s", want, stderr.String())
		}
	}
	var revoked int
	for _, r := range srv.Requests() {
		if r.Kind == dpoptest.KindRevoke && r.Status == http.StatusOK {
			revoked++
		}
	}
	if revoked != 2 {
		t.Errorf("logout made %d successful revocation requests; want 2 (refresh and access token)", revoked)
	}
	if err := run(ctx, append(args, "logout"), io.Discard, &stderr); err != nil || !strings.Contains(stderr.String(), "nothing to delete") {
		t.Errorf("second logout: %v\n%s", err, stderr.String())
	}
}

func jktOf(t *testing.T, s keystore.Store, name string) string {
	t.Helper()
	key, err := keystore.LoadKey(s, name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := dpop.NewSigner(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return signer.Thumbprint()
}

// approver is the stderr of a -device run: it approves the user code the
// CLI prints, as the user would.
type approver struct {
	srv *dpoptest.Server
	t   *testing.T
	mu  sync.Mutex
	buf bytes.Buffer
}

var userCodeRe = regexp.MustCompile(`enter the code (\S+)`)

func (a *approver) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.buf.Write(p)
	if m := userCodeRe.FindSubmatch(p); m != nil {
		if err := a.srv.ApproveDevice(string(m[1])); err != nil {
			a.t.Errorf("ApproveDevice(%s): %v", m[1], err)
		}
	}
	return len(p), nil
}

func TestRunDevice(t *testing.T) {
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	orig := openBrowser
	openBrowser = func(string) error { t.Error("the device flow opened a browser"); return nil }
	defer func() { openBrowser = orig }()
	var stdout bytes.Buffer
	stderr := &approver{srv: srv, t: t}
	err := run(context.Background(), []string{"-device", "-store", "file", "-dir", t.TempDir(), "-issuer", srv.URL, "-client-id", "cli", "-api", srv.URL + "/api/me", "-timeout", "30s"}, &stdout, stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.buf.String())
	}
	if !strings.Contains(stderr.buf.String(), "Or visit: "+srv.URL) || !strings.Contains(stderr.buf.String(), "poll 1: approved") ||
		!strings.HasPrefix(stdout.String(), "200 OK\n") {
		t.Errorf("stdout %q, stderr:\n%s", stdout.String(), stderr.buf.String())
	}
}

func TestRunChallenge(t *testing.T) {
	// The API is another server, which did not mint the token: 401
	// invalid_token, explained from the DPoP challenge.
	as := dpoptest.NewServer(nil)
	defer as.Close()
	rs := dpoptest.NewServer(nil)
	defer rs.Close()
	fakeBrowser(t)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-store", "file", "-dir", t.TempDir(), "-issuer", as.URL, "-client-id", "cli", "-api", rs.URL + "/api/me"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("run = %v; want the API's 401", err)
	}
	if !strings.HasPrefix(stdout.String(), "401 Unauthorized\n") || !strings.Contains(stderr.String(), `DPoP challenge: status 401, error "invalid_token"`) {
		t.Errorf("stdout %q, stderr:\n%s", stdout.String(), stderr.String())
	}
}

func TestMain(m *testing.M) {
	// Never open a real browser from a test.
	openBrowser = func(string) error { return errors.New("no browser in tests") }
	os.Exit(m.Run())
}

func TestRunLoginTimeout(t *testing.T) {
	srv := dpoptest.NewServer(nil)
	defer srv.Close()
	var stderr bytes.Buffer
	start := time.Now()
	// Nobody logs in: TestMain's openBrowser fails, the URL is printed.
	err := run(context.Background(), []string{"-store", "file", "-dir", t.TempDir(), "-issuer", srv.URL, "-client-id", "cli", "-timeout", "300ms"}, io.Discard, &stderr)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no login within 300ms") {
		t.Fatalf("run = %v; want no login within 300ms", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("run took %v", d)
	}
	if !strings.Contains(stderr.String(), "cannot open a browser") || !strings.Contains(stderr.String(), "If the browser does not open, visit: "+srv.URL) {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}
