package dpop_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func newSigner(t testing.TB) *dpop.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newServer(t testing.TB, cfg *dpoptest.Config) *dpoptest.Server {
	t.Helper()
	srv := dpoptest.NewServer(cfg)
	t.Cleanup(srv.Close)
	return srv
}

// count returns how many recorded requests of kind ended with error code
// errCode ("" for successes).
func count(srv *dpoptest.Server, kind dpoptest.Kind, errCode string) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Kind == kind && r.Error == errCode {
			n++
		}
	}
	return n
}

// apiResult is what dpoptest's resource server answers.
type apiResult struct {
	Method     string `json:"method"`
	Path       string `json:"path"`
	Subject    string `json:"subject"`
	JKT        string `json:"jkt"`
	BodySHA256 string `json:"body_sha256"`
	BodyLen    int64  `json:"body_len"`
}

func getAPI(t *testing.T, c *http.Client, u string) apiResult {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s %s", u, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	var r apiResult
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestClientCredentials(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true})
	s := newSigner(t)
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{ClientID: "backend", ClientSecret: "backend-secret", TokenURL: srv.Endpoint().TokenURL},
		Signer: s,
	}
	ctx := context.Background()
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "DPoP" || tok.Type() != "DPoP" {
		t.Errorf("token type %q; want DPoP", tok.TokenType)
	}
	if n := count(srv, "token", "use_dpop_nonce"); n != 1 {
		t.Errorf("%d nonce challenges at the token endpoint; want 1", n)
	}
	checkClientAuth(t, srv, dpoptest.ClientSecretBasic)

	c := cc.Client(ctx)
	for range 3 {
		if got := getAPI(t, c, srv.URL+"/api/items"); got.JKT != s.Thumbprint() {
			t.Errorf("resource server saw jkt %q; want %q", got.JKT, s.Thumbprint())
		}
	}
	// One challenge per server, not one per request: the authorization
	// server's nonce and the resource server's live in different caches
	// though they share an origin.
	if _, err := cc.Token(ctx); err != nil {
		t.Fatal(err)
	}
	if n, m := count(srv, "token", "use_dpop_nonce"), count(srv, "resource", "use_dpop_nonce"); n != 1 || m != 1 {
		t.Errorf("nonce challenges: token %d, resource %d; want 1 and 1", n, m)
	}
}

// checkClientAuth checks that every token request that got as far as client
// authentication (a nonce challenge comes first) used want: the style is
// pinned, never x/oauth2's auto-detection, and a public client sends no
// secret.
func checkClientAuth(t *testing.T, srv *dpoptest.Server, want dpoptest.ClientAuth) {
	t.Helper()
	n := 0
	for _, r := range srv.Requests() {
		if r.Kind == "token" && r.ClientAuth != "" {
			n++
			if r.ClientAuth != want {
				t.Errorf("token request authenticated with %q; want %q", r.ClientAuth, want)
			}
		}
	}
	if n == 0 {
		t.Errorf("no token request got to client authentication")
	}
}

// headlessAuthorize gets authURL from dpoptest's auto-approving
// authorization endpoint and returns the redirect's query.
func headlessAuthorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query()
}

func publicConfig(srv *dpoptest.Server, s *dpop.Signer) *dpop.Config {
	return &dpop.Config{
		OAuth2: &oauth2.Config{
			ClientID:    "cli",
			Endpoint:    srv.Endpoint(),
			RedirectURL: "http://127.0.0.1:54321/callback",
			Scopes:      []string{"api:read"},
		},
		Signer: s,
		PARURL: srv.PARURL(),
	}
}

// login runs authorization code + PKCE with cfg and returns the token.
func login(t *testing.T, cfg *dpop.Config, exchangeCfg *dpop.Config) (*oauth2.Token, error) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	q := headlessAuthorize(t, cfg.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier)))
	if q.Get("state") != "st-1" || q.Get("code") == "" {
		t.Fatalf("authorize redirect query %v", q)
	}
	return exchangeCfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
}

func TestAuthCodePKCE(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true})
	s := newSigner(t)
	cfg := publicConfig(srv, s)
	if u := cfg.AuthCodeURL("x"); !strings.Contains(u, "dpop_jkt="+s.Thumbprint()) {
		t.Errorf("AuthCodeURL %q has no dpop_jkt=%s", u, s.Thumbprint())
	}
	tok, err := login(t, cfg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token")
	}
	checkClientAuth(t, srv, dpoptest.ClientAuthNone)
	got := getAPI(t, cfg.Client(context.Background(), tok), srv.URL+"/api/me")
	if got.Subject != "alice" || got.JKT != s.Thumbprint() {
		t.Errorf("resource server saw %+v; want alice bound to %s", got, s.Thumbprint())
	}

	t.Run("dpop_jkt enforced", func(t *testing.T) {
		other := publicConfig(srv, newSigner(t))
		_, err := login(t, cfg, other)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Fatalf("exchange with another key: %v; want invalid_grant", err)
		}
		if !strings.HasPrefix(err.Error(), "dpop: ") {
			t.Errorf("error %q lacks the dpop: prefix", err)
		}
	})
}

func TestRefresh(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true})
	s := newSigner(t)
	cfg := publicConfig(srv, s)
	tok, err := login(t, cfg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)

	t.Run("same key, one refresh for concurrent callers", func(t *testing.T) {
		ts := cfg.TokenSource(context.Background(), &expired)
		var wg sync.WaitGroup
		toks := make([]*oauth2.Token, 16)
		for i := range toks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tk, err := ts.Token()
				if err != nil {
					t.Error(err)
					return
				}
				toks[i] = tk
			}()
		}
		wg.Wait()
		for _, tk := range toks {
			if tk == nil || tk.AccessToken == tok.AccessToken || tk.AccessToken != toks[0].AccessToken {
				t.Fatalf("callers got different or stale tokens")
			}
		}
		n := 0
		for _, r := range srv.Requests() {
			if r.GrantType == "refresh_token" && r.Status == 200 {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d successful refreshes; want 1", n)
		}
		tok = toks[0]
	})
	t.Run("another key", func(t *testing.T) {
		expired := *tok
		expired.Expiry = time.Now().Add(-time.Minute)
		_, err := publicConfig(srv, newSigner(t)).TokenSource(context.Background(), &expired).Token()
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Errorf("refresh with another key: %v; want invalid_grant", err)
		}
	})
}

func TestDeviceGrant(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true})
	cfg := publicConfig(srv, newSigner(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		if err := srv.ApproveDevice(da.UserCode); err != nil {
			t.Error(err)
		}
	}()
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "DPoP" {
		t.Errorf("token_type %q; want DPoP", tok.TokenType)
	}
	for _, r := range srv.Requests() {
		if r.Kind == "token" && r.Proof == nil && r.Error != "use_dpop_nonce" {
			t.Errorf("device token poll without a valid proof: %+v", r)
		}
	}
}

func TestPAR(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true})
	s := newSigner(t)
	cfg := publicConfig(srv, s)
	verifier := oauth2.GenerateVerifier()
	authURL, err := cfg.PushAuthCodeURL(context.Background(), "st-2", oauth2.S256ChallengeOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(authURL, "request_uri=") || strings.Contains(authURL, "code_challenge") {
		t.Errorf("auth URL %q; want only client_id and request_uri", authURL)
	}
	q := headlessAuthorize(t, authURL)
	if _, err := publicConfig(srv, newSigner(t)).Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Error("exchange of a PAR-bound code with another key succeeded")
	}
	authURL, _ = cfg.PushAuthCodeURL(context.Background(), "st-3", oauth2.S256ChallengeOption(verifier))
	q = headlessAuthorize(t, authURL)
	if _, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Errorf("exchange with the PAR key: %v", err)
	}
	if n := count(srv, "par", "use_dpop_nonce"); n != 1 {
		t.Errorf("%d nonce challenges at PAR; want 1 (then the token endpoint reuses it)", n)
	}
}

func TestBearerDowngrade(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{TokenType: "Bearer"})
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{ClientID: "backend", ClientSecret: "backend-secret", TokenURL: srv.Endpoint().TokenURL},
		Signer: newSigner(t),
	}
	tok, err := cc.Token(context.Background())
	var te *dpop.TokenTypeError
	if !errors.As(err, &te) || !te.Downgrade() {
		t.Fatalf("Bearer answer: err = %v; want a *TokenTypeError downgrade", err)
	}
	if tok != nil {
		t.Error("a refused Bearer token was returned with the error")
	}
	cc.AllowBearer = true
	if tok, err := cc.Token(context.Background()); err != nil || tok.Type() != "Bearer" {
		t.Errorf("with AllowBearer: %v, %v; want the Bearer token", tok, err)
	}
}

// TestTokenResponseBadInput feeds x/oauth2 through Config answers a broken
// or hostile authorization server might give.
func TestTokenResponseBadInput(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		status                  int
		want                    string
	}{
		{"not JSON", "application/json", "<html>oops</html>", 200, "cannot parse json"},
		{"no access_token", "application/json", `{"token_type":"DPoP"}`, 200, "missing access_token"},
		{"negative expires_in", "application/json", `{"access_token":"a","token_type":"DPoP","expires_in":-5}`, 200, "negative expires_in"},
		{"unknown token_type", "application/json", `{"access_token":"a","token_type":"MAC"}`, 200, `token_type "MAC"`},
		{"empty token_type", "application/json", `{"access_token":"a"}`, 200, `token_type ""`},
		{"too large", "application/json", `{"access_token":"` + strings.Repeat("a", 256<<10) + `","token_type":"DPoP"}`, 200, "larger than"},
		{"error", "application/json", `{"error":"invalid_client"}`, 401, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			cc := &dpop.ClientCredentials{
				OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: srv.URL},
				Signer: newSigner(t),
			}
			_, err := cc.Token(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "dpop: ") {
				t.Errorf("err = %v; want a dpop: error mentioning %q", err, tt.want)
			}
		})
	}
}

// TestTokenNonceChallengedTwice: the retry is challenged again; the second
// answer is returned, not looped on.
func TestTokenNonceChallengedTwice(t *testing.T) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		w.Header().Set("DPoP-Nonce", "n"+strings.Repeat("x", n))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		io.WriteString(w, `{"error":"use_dpop_nonce"}`)
	}))
	defer srv.Close()
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: srv.URL},
		Signer: newSigner(t),
	}
	_, err := cc.Token(context.Background())
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "use_dpop_nonce" {
		t.Errorf("err = %v; want the second use_dpop_nonce as a RetrieveError", err)
	}
	if n != 2 {
		t.Errorf("%d requests; want 2", n)
	}
}

// TestDiscoverFallback: a server without RFC 8414 metadata is read from
// OpenID Connect Discovery; one whose metadata names another issuer, or
// that fails otherwise, is an error.
func TestNoRefreshToken(t *testing.T) {
	srv := newServer(t, nil)
	cfg := publicConfig(srv, newSigner(t))
	expired := &oauth2.Token{AccessToken: "a", TokenType: "DPoP", Expiry: time.Now().Add(-time.Minute)}
	if _, err := cfg.TokenSource(context.Background(), expired).Token(); !errors.Is(err, dpop.ErrNoRefreshToken) {
		t.Errorf("err = %v; want ErrNoRefreshToken", err)
	}
}

// TestNilContext: every call that takes a context refuses a nil one with
// an error naming it (net/http refuses it too), instead of panicking;
// the clients, which have no error result, fail their requests so, and
// send nothing.
func TestNilContext(t *testing.T) {
	as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"at","token_type":"DPoP","expires_in":60}`)
	})
	s := newSigner(t)
	cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{AuthURL: as.URL + "/auth",
		TokenURL: as.URL + "/token", DeviceAuthURL: as.URL + "/device"}}, Signer: s, PARURL: as.URL + "/par", RevocationURL: as.URL + "/revoke"}
	cc := &dpop.ClientCredentials{OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: as.URL + "/token"}, Signer: s}
	tok := &oauth2.Token{AccessToken: "at", TokenType: "DPoP", RefreshToken: "rt", Expiry: time.Now().Add(time.Hour)}
	var nilCtx context.Context
	get := func(c *http.Client) error {
		resp, err := c.Get(as.URL + "/api")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for _, tt := range []struct {
		name string
		call func() error
	}{
		{"Config.Exchange", func() error { _, err := cfg.Exchange(nilCtx, "code"); return err }},
		{"Config.PushAuthCodeURL", func() error { _, err := cfg.PushAuthCodeURL(nilCtx, "st"); return err }},
		{"Config.DeviceAuth", func() error { _, err := cfg.DeviceAuth(nilCtx); return err }},
		{"Config.DeviceAccessToken", func() error {
			_, err := cfg.DeviceAccessToken(nilCtx, &oauth2.DeviceAuthResponse{DeviceCode: "dc", Expiry: time.Now().Add(time.Minute)})
			return err
		}},
		{"Config.Revoke", func() error { return cfg.Revoke(nilCtx, "rt", "") }},
		{"Config.TokenSource", func() error { _, err := cfg.TokenSource(nilCtx, tok).Token(); return err }},
		{"Config.TokenSource's TokenContext", func() error {
			_, err := cfg.TokenSource(context.Background(), tok).TokenContext(nilCtx)
			return err
		}},
		{"Config.Client", func() error { return get(cfg.Client(nilCtx, tok)) }},
		{"ClientCredentials.Token", func() error { _, err := cc.Token(nilCtx); return err }},
		{"ClientCredentials.TokenSource", func() error { _, err := cc.TokenSource(nilCtx).Token(); return err }},
		{"ClientCredentials.Client", func() error { return get(cc.Client(nilCtx)) }},
		{"NewClient", func() error { return get(dpop.NewClient(nilCtx, oauth2.StaticTokenSource(tok), s)) }},
		{"Discover", func() error { _, err := dpop.Discover(nilCtx, as.URL); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := as.requests()
			var err error
			if r := noPanic(func() { err = tt.call() }); r != nil {
				t.Fatalf("panicked: %v", r)
			}
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), "nil context") && !strings.Contains(err.Error(), "context is nil") {
				t.Errorf("err = %v; want one naming the nil context", err)
			}
			if n := as.requests() - before; n != 0 {
				t.Errorf("%d requests sent; want 0", n)
			}
		})
	}
}
