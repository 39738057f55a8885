package dpop_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/dpopkit/dpop"
)

// assertionClaims are the claims of a client assertion (RFC 7523 §3).
type assertionClaims struct {
	Iss, Sub, Jti string
	Aud           any // must be a string: decoded as any to catch an array
	Iat, Exp      int64
}

// verifyAssertion verifies a client assertion with go-jose against pub and
// returns its kid and claims.
func verifyAssertion(assertion string, pub crypto.PublicKey) (kid string, c assertionClaims, err error) {
	algs := []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.PS256, jose.RS256, jose.EdDSA}
	jws, err := jose.ParseSigned(assertion, algs)
	if err != nil {
		return "", c, err
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return "", c, err
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", c, err
	}
	return jws.Signatures[0].Header.KeyID, c, nil
}

// assertionServer is a token endpoint, PAR endpoint and device
// authorization endpoint on 127.0.0.1 that authenticates the client by
// private_key_jwt the way oidc-provider's FAPI 2.0 profile does: the
// assertion is checked (signature, aud = issuer as a string, exp, jti
// never seen) and its jti recorded before the DPoP proof is looked at.
// Its DPoP nonce rotates after every success and is never announced on
// one, so every request is challenged once.
type assertionServer struct {
	*httptest.Server
	pub crypto.PublicKey
	now func() time.Time // the server's clock, for exp; nil means time.Now

	mu       sync.Mutex          // guards the fields below
	nonce    string              // current DPoP nonce
	seen     map[string]bool     // assertion jtis used
	forms    []url.Values        // every request's form, in order
	auth     []string            // every request's Authorization header
	answered map[string][]string // endpoint path → error codes ("" for success)
}

func newAssertionServer(t *testing.T, pub crypto.PublicKey) *assertionServer {
	t.Helper()
	s := &assertionServer{pub: pub, seen: map[string]bool{}, answered: map[string][]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	s.nonce = "n-0"
	return s
}

func (s *assertionServer) answer(w http.ResponseWriter, path string, status int, body any) {
	code := ""
	if m, ok := body.(map[string]string); ok {
		code = m["error"]
	}
	s.answered[path] = append(s.answered[path], code)
	w.Header().Set("Content-Type", "application/json")
	if code == dpop.CodeUseNonce {
		w.Header().Set("DPoP-Nonce", s.nonce)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func (s *assertionServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.ParseForm()
	s.forms = append(s.forms, r.PostForm)
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	f := r.PostForm
	if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		s.answer(w, r.URL.Path, 401, map[string]string{"error": "invalid_client"})
		return
	}
	_, c, err := verifyAssertion(f.Get("client_assertion"), s.pub)
	now := time.Now().Unix()
	if s.now != nil {
		now = s.now().Unix()
	}
	if err != nil || c.Iss != "fapi" || c.Sub != "fapi" || c.Aud != s.URL || c.Exp < now || c.Jti == "" || s.seen[c.Jti] {
		s.answer(w, r.URL.Path, 401, map[string]string{"error": "invalid_client"})
		return
	}
	s.seen[c.Jti] = true // spent before the proof is looked at
	if r.URL.Path != "/device" {
		if claimNonce(r.Header.Get("DPoP")) != s.nonce {
			s.answer(w, r.URL.Path, 400, map[string]string{"error": dpop.CodeUseNonce})
			return
		}
		s.nonce = fmt.Sprintf("n-%d", len(s.forms)) // rotated, not announced
	}
	switch r.URL.Path {
	case "/par":
		s.answer(w, r.URL.Path, 201, map[string]any{"request_uri": "urn:ietf:params:oauth:request_uri:x", "expires_in": 60})
	case "/device":
		s.answer(w, r.URL.Path, 200, map[string]any{"device_code": "dc", "user_code": "UC", "verification_uri": s.URL + "/verify", "expires_in": 60, "interval": 1})
	default:
		s.answer(w, r.URL.Path, 200, map[string]any{"access_token": "at", "token_type": "DPoP", "refresh_token": "rt-" + c.Jti, "expires_in": 1})
	}
}

// claimNonce returns the nonce claim of a proof, unverified (the proofs
// themselves are verified by go-jose in the Transport tests).
func claimNonce(proof string) string {
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		return ""
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct{ Nonce string }
	json.Unmarshal(b, &c)
	return c.Nonce
}

func newAssertionSigner(t *testing.T, key crypto.Signer, kid string) *dpop.AssertionSigner {
	t.Helper()
	a, err := dpop.NewAssertionSigner(key, &dpop.SignerOptions{KeyID: kid})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAssertionSigner(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tt := range []struct {
		key      crypto.Signer
		kid, alg string
	}{
		{ec, "ec-1", "ES256"},
		{ed, "", "EdDSA"},
		{rk, "rsa-1", "PS256"},
	} {
		t.Run(tt.alg, func(t *testing.T) {
			a := newAssertionSigner(t, tt.key, tt.kid)
			if a.Alg() != tt.alg || a.KeyID() != tt.kid {
				t.Errorf("Alg, KeyID = %q, %q; want %q, %q", a.Alg(), a.KeyID(), tt.alg, tt.kid)
			}
			before := time.Now().Unix()
			jtis := map[string]bool{}
			for range 3 {
				s, err := a.Assertion("fapi", "https://as.example")
				if err != nil {
					t.Fatal(err)
				}
				kid, c, err := verifyAssertion(s, tt.key.Public())
				if err != nil {
					t.Fatalf("go-jose: %v", err)
				}
				if kid != tt.kid {
					t.Errorf("kid = %q; want %q", kid, tt.kid)
				}
				if c.Iss != "fapi" || c.Sub != "fapi" || c.Aud != "https://as.example" {
					t.Errorf("iss, sub, aud = %q, %q, %v; want fapi, fapi, the issuer as a string", c.Iss, c.Sub, c.Aud)
				}
				if c.Iat < before || c.Exp != c.Iat+60 {
					t.Errorf("iat, exp = %d, %d; want now, now+60", c.Iat, c.Exp)
				}
				if raw, _ := base64.RawURLEncoding.DecodeString(c.Jti); len(raw) < 16 || jtis[c.Jti] {
					t.Errorf("jti = %q; want 128 random bits, new each time", c.Jti)
				}
				jtis[c.Jti] = true
			}
		})
	}
}

func TestAssertionSignerErrors(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a := newAssertionSigner(t, ec, "")
	if _, err := a.Assertion("", "https://as.example"); err == nil {
		t.Error("Assertion with no client ID: no error")
	}
	if _, err := a.Assertion("fapi", ""); err == nil {
		t.Error("Assertion with no audience: no error")
	}
	if _, err := dpop.NewAssertionSigner(nil, nil); err == nil {
		t.Error("NewAssertionSigner(nil): no error")
	}
	if _, err := dpop.NewAssertionSigner(ec, &dpop.SignerOptions{Alg: "PS256"}); err == nil {
		t.Error("NewAssertionSigner(EC key, PS256): no error")
	}
}

// TestAssertionSignerPrint checks that printing an AssertionSigner shows
// no key material.
func TestAssertionSignerPrint(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	a := newAssertionSigner(t, ed, "k1")
	secret := fmt.Sprintf("%x", []byte(ed.Seed()))
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		got := fmt.Sprintf(f, a)
		if strings.Contains(got, secret) || strings.Contains(fmt.Sprintf("%x", got), secret) || strings.Contains(got, fmt.Sprint([]byte(ed.Seed()))) {
			t.Errorf("Sprintf(%q) shows the key: %s", f, got)
		}
	}
	if got, want := fmt.Sprint(a), `dpop.AssertionSigner{alg: "EdDSA", kid: "k1"}`; got != want {
		t.Errorf("Sprint = %s; want %s", got, want)
	}
}

// assertionConfig returns a Config for client "fapi" at srv, authenticated
// with private_key_jwt by a.
func assertionConfig(t *testing.T, srv *assertionServer, a *dpop.AssertionSigner) *dpop.Config {
	return &dpop.Config{
		OAuth2: &oauth2.Config{
			ClientID:    "fapi",
			RedirectURL: "http://127.0.0.1/callback",
			Endpoint:    oauth2.Endpoint{AuthURL: srv.URL + "/auth", TokenURL: srv.URL + "/token", DeviceAuthURL: srv.URL + "/device"},
		},
		Signer:          newSigner(t),
		ClientAssertion: a,
		Issuer:          srv.URL,
		PARURL:          srv.URL + "/par",
	}
}

// TestClientAssertionEveryAttempt sends every kind of request that
// authenticates the client to a server that spends the assertion before
// it challenges the proof's nonce, and checks that each succeeds and that
// every attempt on the wire carried a new assertion.
func TestClientAssertionEveryAttempt(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := newAssertionServer(t, ec.Public())
	clock := newBubbleClock()
	srv.now = clock.Now
	a := newAssertionSigner(t, ec, "k1")
	cfg := assertionConfig(t, srv, a)
	ctx := context.Background()
	verifier := oauth2.GenerateVerifier()

	if _, err := cfg.PushAuthCodeURL(ctx, "st", oauth2.S256ChallengeOption(verifier)); err != nil {
		t.Fatalf("PushAuthCodeURL: %v", err)
	}
	tok, err := cfg.Exchange(ctx, "code", oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	tok.Expiry = time.Now().Add(-time.Minute)
	if _, err := cfg.TokenSource(ctx, tok).Token(); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	// The first poll waits the interval, a second: on a fake clock, which
	// the server reads meanwhile (the assertion's exp is of that clock).
	if err := onFakeClock(t, ctx, func(ctx context.Context) error {
		clock.sync()
		defer clock.reset()
		_, err := cfg.DeviceAccessToken(ctx, da)
		return err
	}); err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	cc := &dpop.ClientCredentials{
		OAuth2:          &clientcredentials.Config{ClientID: "fapi", TokenURL: srv.URL + "/token"},
		Signer:          newSigner(t),
		ClientAssertion: a,
		Issuer:          srv.URL,
	}
	if _, err := cc.Token(ctx); err != nil {
		t.Fatalf("ClientCredentials.Token: %v", err)
	}

	srv.mu.Lock()
	defer srv.mu.Unlock()
	// PAR, exchange, refresh, device poll, client credentials: challenged
	// once each; device authorization carries no proof.
	const challenged = "use_dpop_nonce,"
	for path, want := range map[string]string{"/par": challenged, "/device": "", "/token": strings.TrimSuffix(strings.Repeat(challenged+",", 4), ",")} {
		if got := strings.Join(srv.answered[path], ","); got != want {
			t.Errorf("%s answers = %q; want %q", path, got, want)
		}
	}
	jtis := map[string]bool{}
	for i, f := range srv.forms {
		_, c, err := verifyAssertion(f.Get("client_assertion"), ec.Public())
		if err != nil {
			t.Fatalf("attempt %d: assertion: %v", i, err)
		}
		if jtis[c.Jti] {
			t.Errorf("attempt %d (%s): jti %q was sent before", i, f.Get("grant_type"), c.Jti)
		}
		jtis[c.Jti] = true
		if f.Get("client_id") != "fapi" || f.Has("client_secret") || srv.auth[i] != "" {
			t.Errorf("attempt %d: client_id %q, client_secret %v, Authorization %q; want fapi, none, none", i, f.Get("client_id"), f.Has("client_secret"), srv.auth[i])
		}
	}
	if got, want := len(jtis), 11; got != want {
		t.Errorf("%d distinct assertions on the wire; want %d", got, want)
	}
}

// TestClientAssertionNotInErrors checks that a refused request's error
// does not show the assertion that was sent.
func TestClientAssertionNotInErrors(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := newAssertionServer(t, other.Public()) // refuses ec's assertions
	cfg := assertionConfig(t, srv, newAssertionSigner(t, ec, ""))
	_, err := cfg.Exchange(context.Background(), "code", oauth2.VerifierOption("v"))
	if err == nil {
		t.Fatal("Exchange with an unregistered key: no error")
	}
	srv.mu.Lock()
	sent := srv.forms[0].Get("client_assertion")
	srv.mu.Unlock()
	for _, f := range []string{"%v", "%+v", "%#v"} {
		if got := fmt.Sprintf(f, err); strings.Contains(got, sent) || strings.Contains(got, sent[:20]) {
			t.Errorf("Sprintf(%q, err) shows the assertion: %s", f, got)
		}
	}
}

// TestClientAssertionConfigErrors checks that a Config whose client
// authentication cannot work fails before sending anything.
func TestClientAssertionConfigErrors(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := newAssertionServer(t, ec.Public())
	a := newAssertionSigner(t, ec, "")
	for _, tt := range []struct {
		name   string
		change func(*dpop.Config)
		want   string
	}{
		{"secret too", func(c *dpop.Config) { c.OAuth2.ClientSecret = "s" }, "both a ClientSecret and a ClientAssertion"},
		{"in header", func(c *dpop.Config) { c.OAuth2.Endpoint.AuthStyle = oauth2.AuthStyleInHeader }, "AuthStyleInHeader"},
		{"no issuer", func(c *dpop.Config) { c.Issuer = "" }, "Issuer is empty"},
		{"no client id", func(c *dpop.Config) { c.OAuth2.ClientID = "" }, "no ClientID"},
		{"zero ClientAssertion", func(c *dpop.Config) { c.ClientAssertion = new(dpop.AssertionSigner) }, "ClientAssertion has no key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := assertionConfig(t, srv, a)
			tt.change(cfg)
			_, err := cfg.Exchange(context.Background(), "code")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Exchange = %v; want an error containing %q", err, tt.want)
			}
			_, err = cfg.PushAuthCodeURL(context.Background(), "st")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PushAuthCodeURL = %v; want an error containing %q", err, tt.want)
			}
		})
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.forms) != 0 {
		t.Errorf("the server got %d requests; want 0", len(srv.forms))
	}
}

// TestAssertionSignerNil: the accessors of a nil or zero AssertionSigner
// return zero values, and Assertion an error naming NewAssertionSigner,
// instead of panicking; the zero value prints no pointer.
func TestAssertionSignerNil(t *testing.T) {
	for _, a := range []*dpop.AssertionSigner{nil, new(dpop.AssertionSigner)} {
		var err error
		if r := noPanic(func() {
			if a.Alg() != "" || a.KeyID() != "" || a.Public() != nil {
				t.Errorf("accessors of %v: %q %q %v; want zero values", a, a.Alg(), a.KeyID(), a.Public())
			}
			_, err = a.Assertion("c", "https://as")
		}); r != nil {
			t.Errorf("methods of %#v panicked: %v", a, r)
		}
		if err == nil || !strings.Contains(err.Error(), "NewAssertionSigner") {
			t.Errorf("Assertion of %#v = %v; want an error naming NewAssertionSigner", a, err)
		}
	}
	if got := fmt.Sprint(new(dpop.AssertionSigner)); strings.Contains(got, "0x") {
		t.Errorf("zero AssertionSigner prints %q", got)
	}
}
