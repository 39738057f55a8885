package interop

// The FAPI 2.0 flow through the SDK's public API against oidc-provider's
// FAPI 2.0 profile: PAR, headless login, the authorization response check,
// code exchange, refresh, resource calls, client credentials; every
// request authenticated with private_key_jwt, nonces required.

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

// formRecorder records the form body of every request it sends: the
// attempts as they left the SDK, below its DPoP Transport.
type formRecorder struct {
	base  http.RoundTripper
	mu    sync.Mutex
	forms []recordedForm
}

type recordedForm struct {
	path string
	form url.Values
}

func (r *formRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		f, _ := url.ParseQuery(string(b))
		r.mu.Lock()
		r.forms = append(r.forms, recordedForm{req.URL.Path, f})
		r.mu.Unlock()
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	return r.base.RoundTrip(req)
}

func (r *formRecorder) take() []recordedForm {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.forms
	r.forms = nil
	return f
}

// fapiFlow is what each FAPI 2.0 flow test starts from.
type fapiFlow struct {
	s     *fapiServer
	md    *dpop.Metadata
	ctx   context.Context
	rec   *sdkRecorder
	forms *formRecorder
}

func newFAPIFlow(t *testing.T) *fapiFlow {
	t.Helper()
	s := requireFAPI(t)
	f := &fapiFlow{s: s, md: sdkDiscover(t, s.issuer)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	f.rec = &sdkRecorder{base: http.DefaultTransport}
	f.forms = &formRecorder{base: f.rec}
	f.ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: f.forms})
	return f
}

// assertionSigner returns an AssertionSigner for the client's registered
// key of alg, with its kid.
func (f *fapiFlow) assertionSigner(t *testing.T, alg string) *dpop.AssertionSigner {
	t.Helper()
	k := f.s.keys[alg]
	a, err := dpop.NewAssertionSigner(k.Key.(crypto.Signer), &dpop.SignerOptions{KeyID: k.KeyID})
	if err != nil {
		t.Fatal(err)
	}
	if a.Alg() != alg {
		t.Fatalf("assertion alg = %s; want %s", a.Alg(), alg)
	}
	return a
}

// config returns a FAPI 2.0 Config for the client "fapi", with proofs
// signed by a new key of proofAlg and assertions by the registered key of
// assertionAlg.
func (f *fapiFlow) config(t *testing.T, proofAlg, assertionAlg string) *dpop.Config {
	t.Helper()
	s := sdkSigner(t, proofAlg)
	if err := f.md.CheckSigner(s); err != nil {
		t.Fatal(err)
	}
	return &dpop.Config{
		OAuth2: &oauth2.Config{
			ClientID:    f.s.clientID,
			Endpoint:    f.md.Endpoint(),
			RedirectURL: loopbackRedirect(t),
			Scopes:      []string{"openid", "api:read"},
		},
		Signer:          s,
		ClientAssertion: f.assertionSigner(t, assertionAlg),
		Issuer:          f.md.Issuer,
		PARURL:          f.md.PushedAuthorizationRequestEndpoint,
		FAPI2:           true,
	}
}

// checkAssertions verifies, with go-jose and the registered key, the
// client assertion of every recorded attempt, and that no jti repeats
// (within forms and against seen).
func (f *fapiFlow) checkAssertions(t *testing.T, forms []recordedForm, alg string, seen map[string]bool) {
	t.Helper()
	k := f.s.keys[alg]
	for i, r := range forms {
		if got := r.form.Get("client_assertion_type"); got != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			t.Errorf("%s attempt %d: client_assertion_type = %q", r.path, i, got)
		}
		if r.form.Has("client_secret") {
			t.Errorf("%s attempt %d: client_secret sent", r.path, i)
		}
		jws, err := jose.ParseSigned(r.form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
		if err != nil {
			t.Fatalf("%s attempt %d: assertion: %v", r.path, i, err)
		}
		payload, err := jws.Verify(k.Public())
		if err != nil {
			t.Fatalf("%s attempt %d: assertion: %v", r.path, i, err)
		}
		var c struct {
			Iss, Sub, Jti string
			Aud           any
			Iat, Exp      int64
		}
		json.Unmarshal(payload, &c)
		if c.Iss != f.s.clientID || c.Sub != f.s.clientID || c.Aud != f.s.issuer || c.Exp-c.Iat != 60 || jws.Signatures[0].Header.KeyID != k.KeyID {
			t.Errorf("%s attempt %d: iss %q sub %q aud %v exp-iat %d kid %q; want %s, %s, %q, 60, %q",
				r.path, i, c.Iss, c.Sub, c.Aud, c.Exp-c.Iat, jws.Signatures[0].Header.KeyID, f.s.clientID, f.s.clientID, f.s.issuer, k.KeyID)
		}
		if seen[c.Jti] {
			t.Errorf("%s attempt %d: jti %q was sent before", r.path, i, c.Jti)
		}
		seen[c.Jti] = true
	}
}

// TestFAPI2AuthCode runs the whole authorization code flow of a FAPI 2.0
// client for each algorithm pair: PAR (challenged for a nonce, answered
// with a new assertion), headless login, Config.VerifyAuthResponse on the redirect
// (state and iss), exchange, a resource call, a refresh, another resource
// call with the refreshed token.
func TestFAPI2AuthCode(t *testing.T) {
	for _, algs := range [][2]string{{"ES256", "ES256"}, {"PS256", "EdDSA"}, {"EdDSA", "PS256"}} {
		t.Run(algs[0]+"-proofs-"+algs[1]+"-assertions", func(t *testing.T) {
			f := newFAPIFlow(t)
			cfg := f.config(t, algs[0], algs[1])
			seen := map[string]bool{}
			par := urlPath(t, cfg.PARURL)
			token := urlPath(t, f.md.TokenEndpoint)

			verifier := oauth2.GenerateVerifier()
			state := oauth2.GenerateVerifier()[:16]
			authURL, err := cfg.PushAuthCodeURL(f.ctx, state, oauth2.S256ChallengeOption(verifier))
			if err != nil {
				t.Fatalf("PushAuthCodeURL: %v", err)
			}
			// A new nonce cache: the first attempt has no nonce, spends its
			// assertion and is challenged; the retry carries a new one.
			checkExchanges(t, "PAR", f.rec.take(), "POST "+par+" 400 use_dpop_nonce", "POST "+par+" 201")
			forms := f.forms.take()
			if len(forms) != 2 || forms[0].form.Get("dpop_jkt") != cfg.Signer.Thumbprint() || forms[0].form.Get("code_challenge_method") != "S256" {
				t.Errorf("PAR forms = %v; want two attempts with dpop_jkt and S256", forms)
			}
			f.checkAssertions(t, forms, algs[1], seen)

			q := headlessAuthorize(t, authURL)
			code, err := cfg.VerifyAuthResponse(q, state)
			if err != nil {
				t.Fatalf("VerifyAuthResponse(%v): %v", q, err)
			}
			if _, err := cfg.VerifyAuthResponse(q, "another-state"); err == nil {
				t.Error("VerifyAuthResponse with another state: no error")
			}
			tok, err := cfg.Exchange(f.ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			f.rec.take()
			f.checkAssertions(t, f.forms.take(), algs[1], seen)
			checkUserToken(t, tok, cfg.Signer, f.s.rs)
			fapiCallRS(t, f, cfg, tok)

			tok.Expiry = time.Now().Add(-time.Minute)
			tok2, err := cfg.TokenSource(f.ctx, tok).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if tok2.AccessToken == tok.AccessToken || tok2.RefreshToken == tok.RefreshToken {
				t.Error("refresh returned the old tokens")
			}
			for _, e := range f.rec.take() {
				if e.path == token && e.status != 200 && e.code != dpop.CodeUseNonce {
					t.Errorf("refresh: %v", e)
				}
			}
			f.checkAssertions(t, f.forms.take(), algs[1], seen)
			checkBoundToken(t, tok2, cfg.Signer, f.s.rs)
			fapiCallRS(t, f, cfg, tok2)

			// Revocation authenticates the client with its own assertion;
			// the revoked refresh token then refreshes nothing.
			cfg.RevocationURL = f.md.RevocationEndpoint
			if err := cfg.Revoke(f.ctx, tok2.RefreshToken, "refresh_token"); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			f.rec.take()
			f.checkAssertions(t, f.forms.take(), algs[1], seen)
			tok2.Expiry = time.Now().Add(-time.Minute)
			if _, err := cfg.TokenSource(f.ctx, tok2).Token(); err == nil {
				t.Error("refresh with the revoked refresh token succeeded")
			}
			f.rec.take()
			f.forms.take()
		})
	}
}

// fapiCallRS calls the RS with cfg.Client and checks the answer.
func fapiCallRS(t *testing.T, f *fapiFlow, cfg *dpop.Config, tok *oauth2.Token) {
	t.Helper()
	a := sdkCallRS(t, cfg.Client(f.ctx, tok), "GET", f.s.rs+"/api/fapi", nil)
	if a.Sub != "alice" || a.ClientID != f.s.clientID || a.JKT != cfg.Signer.Thumbprint() {
		t.Errorf("RS answer sub=%q client_id=%q jkt=%q; want alice, %s, %q", a.Sub, a.ClientID, a.JKT, f.s.clientID, cfg.Signer.Thumbprint())
	}
	f.rec.take()
	f.forms.take()
}

// TestFAPI2NonceRetryNewAssertion forces a nonce challenge at the token
// endpoint (a new nonce cache for the exchange) and checks on the wire
// that the retry carried a new assertion (a new jti) and succeeded:
// oidc-provider spends the assertion of the challenged attempt.
func TestFAPI2NonceRetryNewAssertion(t *testing.T) {
	f := newFAPIFlow(t)
	cfg := f.config(t, "ES256", "ES256")
	verifier := oauth2.GenerateVerifier()
	authURL, err := cfg.PushAuthCodeURL(f.ctx, "st-1", oauth2.S256ChallengeOption(verifier))
	if err != nil {
		t.Fatalf("PushAuthCodeURL: %v", err)
	}
	code, err := cfg.VerifyAuthResponse(headlessAuthorize(t, authURL), "st-1")
	if err != nil {
		t.Fatal(err)
	}
	f.rec.take()
	seen := map[string]bool{}
	f.checkAssertions(t, f.forms.take(), "ES256", seen)

	fresh := *cfg
	fresh.Nonces = dpop.NewNonceCache(0) // knows no nonce: the exchange is challenged
	if _, err := fresh.Exchange(f.ctx, code, oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	token := urlPath(t, f.md.TokenEndpoint)
	got := f.rec.take()
	checkExchanges(t, "Exchange", got, "POST "+token+" 400 use_dpop_nonce", "POST "+token+" 200")
	if len(got) == 2 {
		checkNonceRetry(t, "Exchange", got[0], got[1])
	}
	forms := f.forms.take()
	if len(forms) != 2 {
		t.Fatalf("%d attempts on the wire; want 2", len(forms))
	}
	f.checkAssertions(t, forms, "ES256", seen)
	if forms[0].form.Get("client_assertion") == forms[1].form.Get("client_assertion") {
		t.Error("the retry resent the first attempt's assertion")
	}
}

// TestFAPI2ClientCredentials gets a token with the client credentials
// grant in FAPI 2.0 mode and calls the RS with it.
func TestFAPI2ClientCredentials(t *testing.T) {
	f := newFAPIFlow(t)
	s := sdkSigner(t, "PS256")
	cc := &dpop.ClientCredentials{
		OAuth2:          &clientcredentials.Config{ClientID: f.s.clientID, TokenURL: f.md.TokenEndpoint, Scopes: []string{"api:read"}},
		Signer:          s,
		ClientAssertion: f.assertionSigner(t, "EdDSA"),
		Issuer:          f.md.Issuer,
		FAPI2:           true,
	}
	tok, err := cc.Token(f.ctx)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	token := urlPath(t, f.md.TokenEndpoint)
	checkExchanges(t, "client credentials", f.rec.take(), "POST "+token+" 400 use_dpop_nonce", "POST "+token+" 200")
	f.checkAssertions(t, f.forms.take(), "EdDSA", map[string]bool{})
	checkBoundToken(t, tok, s, f.s.rs)
	a := sdkCallRS(t, cc.Client(f.ctx), "GET", f.s.rs+"/api/cc", nil)
	if a.ClientID != f.s.clientID || a.JKT != s.Thumbprint() {
		t.Errorf("RS answer client_id=%q jkt=%q; want %s, %q", a.ClientID, a.JKT, f.s.clientID, s.Thumbprint())
	}
}

// TestFAPI2ParRequired checks that the SDK refuses, before any request,
// what the FAPI 2.0 AS would refuse: an authorization URL without PAR,
// PAR without PKCE, and a DPoP key the profile does not allow.
func TestFAPI2ParRequired(t *testing.T) {
	f := newFAPIFlow(t)
	cfg := f.config(t, "ES256", "ES256")
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "PushAuthCodeURL") {
				t.Errorf("AuthCodeURL under FAPI2: recovered %v; want a panic naming PushAuthCodeURL", r)
			}
		}()
		cfg.AuthCodeURL("st")
	}()
	if _, err := cfg.PushAuthCodeURL(f.ctx, "st"); err == nil {
		t.Error("PushAuthCodeURL without PKCE: no error")
	}
	cfg.Signer = sdkSigner(t, "ES384")
	if _, err := cfg.PushAuthCodeURL(f.ctx, "st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())); err == nil {
		t.Error("PushAuthCodeURL with an ES384 signer: no error")
	}
	if got := f.rec.take(); len(got) != 0 {
		t.Errorf("requests sent: %v; want none", got)
	}
}
