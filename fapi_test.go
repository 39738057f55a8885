package dpop_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/dpopkit/dpop"
)

func fapiConfig(t *testing.T, srv *assertionServer, key crypto.Signer) *dpop.Config {
	t.Helper()
	cfg := assertionConfig(t, srv, newAssertionSigner(t, key, "k1"))
	cfg.FAPI2 = true
	return cfg
}

func signerFor(t *testing.T, key crypto.Signer) *dpop.Signer {
	t.Helper()
	s, err := dpop.NewSigner(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFAPI2ConfigErrors checks that a FAPI 2.0 Config that cannot meet the
// profile fails before its first request, naming what is wrong.
func TestFAPI2ConfigErrors(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	srv := newAssertionServer(t, ec.Public())
	for _, tt := range []struct {
		name   string
		change func(*dpop.Config)
		want   []string
	}{
		{"ES384 proofs", func(c *dpop.Config) { c.Signer = signerFor(t, p384) }, []string{"Signer's alg is ES384"}},
		{"ES384 assertions", func(c *dpop.Config) { c.ClientAssertion = newAssertionSigner(t, p384, "") }, []string{"ClientAssertion's alg is ES384"}},
		{"client secret", func(c *dpop.Config) { c.ClientAssertion, c.OAuth2.ClientSecret = nil, "s" }, []string{"ClientAssertion is nil"}},
		{"bearer", func(c *dpop.Config) { c.AllowBearer = true }, []string{"AllowBearer"}},
		{"http token endpoint", func(c *dpop.Config) { c.OAuth2.Endpoint.TokenURL = "http://as.example/token" }, []string{"TokenURL", "not https"}},
		{"no PAR", func(c *dpop.Config) { c.PARURL = "" }, []string{"PARURL: empty"}},
		{"http issuer", func(c *dpop.Config) { c.Issuer = "http://as.example" }, []string{"Issuer", "not https"}},
		{"several", func(c *dpop.Config) {
			c.Signer = signerFor(t, p384)
			c.OAuth2.Endpoint.AuthURL = "http://10.0.0.1/auth"
		}, []string{"Signer's alg is ES384", "AuthURL"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fapiConfig(t, srv, ec)
			tt.change(cfg)
			for name, call := range map[string]func() error{
				"Exchange": func() error {
					_, err := cfg.Exchange(context.Background(), "code", oauth2.VerifierOption("v"))
					return err
				},
				"PushAuthCodeURL": func() error {
					_, err := cfg.PushAuthCodeURL(context.Background(), "st", oauth2.S256ChallengeOption("v"))
					return err
				},
			} {
				err := call()
				if err == nil || !strings.Contains(err.Error(), "does not meet FAPI 2.0") {
					t.Fatalf("%s = %v; want an error naming FAPI 2.0", name, err)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s = %v; want it to name %q", name, err, w)
					}
				}
			}
		})
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.forms) != 0 {
		t.Errorf("the server got %d requests; want 0", len(srv.forms))
	}
}

// TestFAPI2Requests checks the per-request rules of FAPI 2.0 mode: no
// front-channel authorization URL, PKCE S256 and a redirect URI on PAR, a
// code verifier on the exchange; each refused before it is sent.
func TestFAPI2Requests(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	srv := newAssertionServer(t, ed.Public())
	cfg := fapiConfig(t, srv, ed)
	ctx := context.Background()
	verifier := oauth2.GenerateVerifier()

	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "PushAuthCodeURL") {
				t.Errorf("AuthCodeURL with FAPI2: recovered %v; want a panic naming PushAuthCodeURL", r)
			}
		}()
		cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))
	}()
	for _, tt := range []struct {
		name string
		call func() error
		want string
	}{
		{"PAR without PKCE", func() error { _, err := cfg.PushAuthCodeURL(ctx, "st"); return err }, "PKCE with S256"},
		{"PAR with plain PKCE", func() error {
			_, err := cfg.PushAuthCodeURL(ctx, "st", oauth2.SetAuthURLParam("code_challenge", verifier), oauth2.SetAuthURLParam("code_challenge_method", "plain"))
			return err
		}, "PKCE with S256"},
		{"PAR without redirect URI", func() error {
			c := *cfg
			o := *cfg.OAuth2
			o.RedirectURL = ""
			c.OAuth2 = &o
			_, err := c.PushAuthCodeURL(ctx, "st", oauth2.S256ChallengeOption(verifier))
			return err
		}, "redirect_uri"},
		{"exchange without verifier", func() error { _, err := cfg.Exchange(ctx, "code"); return err }, "code_verifier"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v; want an error containing %q", err, tt.want)
			}
		})
	}
	srv.mu.Lock()
	n := len(srv.forms)
	srv.mu.Unlock()
	if n != 0 {
		t.Errorf("the server got %d requests; want 0", n)
	}

	// The same Config with what the profile asks for: loopback http
	// endpoints, Ed25519 keys, PKCE.
	authURL, err := cfg.PushAuthCodeURL(ctx, "st", oauth2.S256ChallengeOption(verifier))
	if err != nil {
		t.Fatalf("PushAuthCodeURL: %v", err)
	}
	if !strings.HasPrefix(authURL, srv.URL+"/auth?") || !strings.Contains(authURL, "request_uri=") {
		t.Errorf("PushAuthCodeURL = %q; want the authorization endpoint with a request_uri", authURL)
	}
	if _, err := cfg.Exchange(ctx, "code", oauth2.VerifierOption(verifier)); err != nil {
		t.Errorf("Exchange: %v", err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	par := srv.forms[0]
	for k, want := range map[string]string{"code_challenge_method": "S256", "dpop_jkt": cfg.Signer.Thumbprint(), "redirect_uri": "http://127.0.0.1/callback"} {
		if got := par.Get(k); got != want {
			t.Errorf("PAR %s = %q; want %q", k, got, want)
		}
	}
}

// TestFAPI2ClientCredentials checks the FAPI 2.0 mode of ClientCredentials.
func TestFAPI2ClientCredentials(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := newAssertionServer(t, ec.Public())
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{ClientID: "fapi", TokenURL: srv.URL + "/token"},
		Signer: newSigner(t),
		Issuer: srv.URL,
		FAPI2:  true,
	}
	if _, err := cc.Token(context.Background()); err == nil || !strings.Contains(err.Error(), "ClientAssertion is nil") {
		t.Errorf("Token without ClientAssertion = %v; want an error naming ClientAssertion", err)
	}
	cc.ClientAssertion = newAssertionSigner(t, ec, "")
	if _, err := cc.Token(context.Background()); err != nil {
		t.Errorf("Token: %v", err)
	}
}

func TestSecureURLRule(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := newAssertionServer(t, ec.Public())
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"https://as.example/token", true},
		{"http://127.0.0.1:8080/token", true},
		{"http://127.5.6.7/token", true},
		{"http://[::1]:9/token", true},
		{"http://localhost/token", true},
		{"http://as.example/token", false},
		{"http://10.0.0.1/token", false},
		{"/token", false},
		{"ftp://as.example/token", false},
	} {
		cfg := fapiConfig(t, srv, ec)
		cfg.OAuth2.Endpoint.DeviceAuthURL = tt.url
		_, err := cfg.DeviceAuth(context.Background())
		if isFAPI := err != nil && strings.Contains(err.Error(), "FAPI 2.0"); isFAPI == tt.ok {
			t.Errorf("DeviceAuthURL %q: err = %v; want accepted %v", tt.url, err, tt.ok)
		}
	}
}

// TestFAPI2EveryMethod calls every method that sends a request, of a FAPI
// 2.0 Config and ClientCredentials whose configuration the profile
// forbids, a stored token's client included: each refuses with an error
// naming FAPI 2.0 (AuthCodeURL, which has no error result, panics), and
// nothing reaches the server, so neither a Bearer token nor an RS256
// proof is ever sent. (Config.AuthCode sends nothing: it reads a redirect
// with the Issuer alone.)
func TestFAPI2EveryMethod(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs256, err := dpop.NewSigner(rsaKey, &dpop.SignerOptions{Alg: "RS256"})
	if err != nil {
		t.Fatal(err)
	}
	srv := newAssertionServer(t, ec.Public())
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		tokenType string // of the stored token
		change    func(c *dpop.Config, cc *dpop.ClientCredentials)
	}{
		{"RS256 proofs", "DPoP", func(c *dpop.Config, cc *dpop.ClientCredentials) { c.Signer, cc.Signer = rs256, rs256 }},
		{"AllowBearer", "Bearer", func(c *dpop.Config, cc *dpop.ClientCredentials) { c.AllowBearer, cc.AllowBearer = true, true }},
		{"http revocation endpoint", "DPoP", func(c *dpop.Config, cc *dpop.ClientCredentials) {
			c.RevocationURL, cc.OAuth2.TokenURL = "http://as.example/revoke", "http://as.example/token"
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fapiConfig(t, srv, ec)
			cfg.RevocationURL = srv.URL + "/revoke"
			cc := &dpop.ClientCredentials{OAuth2: &clientcredentials.Config{ClientID: "fapi", TokenURL: srv.URL + "/token"},
				Signer: cfg.Signer, ClientAssertion: cfg.ClientAssertion, Issuer: srv.URL, FAPI2: true}
			tt.change(cfg, cc)
			tok := &oauth2.Token{AccessToken: "at", TokenType: tt.tokenType, RefreshToken: "rt", Expiry: time.Now().Add(time.Hour)}
			verifier := oauth2.GenerateVerifier()
			get := func(c *http.Client) error {
				resp, err := c.Get(srv.URL + "/api")
				if err == nil {
					resp.Body.Close()
				}
				return err
			}
			for _, m := range []struct {
				name string
				call func() error
			}{
				{"AuthCodeURL", func() (err error) {
					defer func() { err = fmt.Errorf("%v", recover()) }()
					cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))
					return nil
				}},
				{"PushAuthCodeURL", func() error {
					_, err := cfg.PushAuthCodeURL(ctx, "st", oauth2.S256ChallengeOption(verifier))
					return err
				}},
				{"Exchange", func() error { _, err := cfg.Exchange(ctx, "code", oauth2.VerifierOption(verifier)); return err }},
				{"DeviceAuth", func() error { _, err := cfg.DeviceAuth(ctx); return err }},
				{"DeviceAccessToken", func() error {
					_, err := cfg.DeviceAccessToken(ctx, &oauth2.DeviceAuthResponse{DeviceCode: "dc", Expiry: time.Now().Add(time.Minute)})
					return err
				}},
				{"Revoke", func() error { return cfg.Revoke(ctx, "rt", "refresh_token") }},
				{"TokenSource", func() error { _, err := cfg.TokenSource(ctx, tok).Token(); return err }},
				{"Client", func() error { return get(cfg.Client(ctx, tok)) }},
				{"ClientCredentials.Token", func() error { _, err := cc.Token(ctx); return err }},
				{"ClientCredentials.TokenSource", func() error { _, err := cc.TokenSource(ctx).Token(); return err }},
				{"ClientCredentials.Client", func() error { return get(cc.Client(ctx)) }},
			} {
				before := srv.requests()
				err := m.call()
				if err == nil || !strings.Contains(err.Error(), "FAPI 2.0") {
					t.Errorf("%s = %v; want an error naming FAPI 2.0", m.name, err)
				}
				if n := srv.requests() - before; n != 0 {
					t.Errorf("%s sent %d requests; want 0", m.name, n)
				}
			}
		})
	}
}

// requests returns how many requests s received.
func (s *assertionServer) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.forms)
}
