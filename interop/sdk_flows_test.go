package interop

// Interop tests of dpop.Config (authorization code + PKCE with dpop_jkt, PAR,
// refresh, device grant) against oidc-provider, with headless user
// interaction. Helpers are in sdk_test.go. These tests are parallel: see the
// note on concurrency there.

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dpopkit/dpop"
)

// sdkPublicConfig returns a dpop.Config for the public native client, with a
// new loopback redirect URI and the endpoints from discovery.
func sdkPublicConfig(t *testing.T, md *dpop.Metadata, s *dpop.Signer) *dpop.Config {
	t.Helper()
	if err := md.CheckSigner(s); err != nil {
		t.Fatalf("CheckSigner(%s): %v", s.Alg(), err)
	}
	return &dpop.Config{
		OAuth2: &oauth2.Config{
			ClientID:    publicClientID(t),
			Endpoint:    md.Endpoint(),
			RedirectURL: loopbackRedirect(t),
			Scopes:      []string{"openid", "api:read"},
		},
		Signer: s,
		PARURL: md.PushedAuthorizationRequestEndpoint,
	}
}

// withSigner returns a Config like cfg (same client and redirect URI) with
// another signer and its own nonce cache.
func withSigner(cfg *dpop.Config, s *dpop.Signer) *dpop.Config {
	oc := *cfg.OAuth2
	return &dpop.Config{OAuth2: &oc, Signer: s, PARURL: cfg.PARURL}
}

// sdkLogin runs AuthCodeURL (or PushAuthCodeURL when par) and the headless
// login, and returns the code and the PKCE verifier.
func sdkLogin(t *testing.T, ctx context.Context, cfg *dpop.Config, par bool) (code, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	state := oauth2.GenerateVerifier()[:16]
	var authURL string
	if par {
		var err error
		authURL, err = cfg.PushAuthCodeURL(ctx, state, oauth2.S256ChallengeOption(verifier))
		if err != nil {
			t.Fatalf("PushAuthCodeURL: %v", err)
		}
		u, err := url.Parse(authURL)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if q.Get("client_id") != cfg.OAuth2.ClientID || !strings.HasPrefix(q.Get("request_uri"), "urn:ietf:params:oauth:request_uri:") || len(q) != 2 {
			t.Errorf("PushAuthCodeURL = %q; want client_id=%s and a request_uri only", authURL, cfg.OAuth2.ClientID)
		}
	} else {
		authURL = cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
		u, err := url.Parse(authURL)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if got, want := q.Get("dpop_jkt"), cfg.Signer.Thumbprint(); got != want {
			t.Errorf("AuthCodeURL dpop_jkt = %q; want %q", got, want)
		}
		if got := q.Get("code_challenge_method"); got != "S256" {
			t.Errorf("AuthCodeURL code_challenge_method = %q; want S256", got)
		}
	}
	code, gotState := headlessLogin(t, authURL)
	if gotState != state {
		t.Fatalf("state = %q; want %q", gotState, state)
	}
	return code, verifier
}

// checkUserToken checks a token of the code/device grants.
func checkUserToken(t *testing.T, tok *oauth2.Token, s *dpop.Signer, rs string) {
	t.Helper()
	checkBoundToken(t, tok, s, rs)
	if tok.RefreshToken == "" {
		t.Errorf("no refresh_token")
	}
	if id, _ := tok.Extra("id_token").(string); id == "" {
		t.Errorf("no id_token")
	}
	if got := tok.Extra("scope"); got != "api:read" {
		t.Errorf("scope = %v; want api:read", got)
	}
}

// sdkCallAsUser calls the RS with cfg.Client(ctx, tok), a fresh client: one
// nonce challenge, then 200 for alice with the signer's jkt.
func sdkCallAsUser(t *testing.T, ctx context.Context, rec *sdkRecorder, cfg *dpop.Config, tok *oauth2.Token, rs, path string) {
	t.Helper()
	rec.take()
	a := sdkCallRS(t, cfg.Client(ctx, tok), "GET", rs+path, nil)
	if a.Sub != "alice" || a.JKT != cfg.Signer.Thumbprint() || a.Scope != "api:read" {
		t.Errorf("RS answer sub=%q jkt=%q scope=%q; want alice, %q, api:read", a.Sub, a.JKT, a.Scope, cfg.Signer.Thumbprint())
	}
	checkExchanges(t, "RS call", rec.take(), "GET "+path+" 401 use_dpop_nonce", "GET "+path+" 200")
}

// checkRetrieveError checks that err is a "dpop: "-prefixed error wrapping an
// *oauth2.RetrieveError, and returns that.
func checkRetrieveError(t *testing.T, what string, err error) *oauth2.RetrieveError {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: err = nil; want an error", what)
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("%s: err = %v (%T); want one wrapping *oauth2.RetrieveError", what, err, err)
	}
	if !strings.HasPrefix(err.Error(), "dpop: ") {
		t.Errorf("%s: err = %q; want the prefix \"dpop: \"", what, err)
	}
	t.Logf("%s: %v", what, err)
	return re
}

// sdkFlow is what each flow test starts from: the RS, the discovered
// metadata, a new ES256 signer with a public-client Config, and a context
// whose HTTP client records the exchanges.
type sdkFlow struct {
	rs    string
	md    *dpop.Metadata
	s     *dpop.Signer
	cfg   *dpop.Config
	ctx   context.Context
	rec   *sdkRecorder
	token string // the token endpoint's path, as checkExchanges shows it
}

func newSDKFlow(t *testing.T) *sdkFlow {
	t.Helper()
	issuer, rs := requireInterop(t)
	md := sdkDiscover(t, issuer)
	s := sdkSigner(t, "ES256")
	f := &sdkFlow{rs: rs, md: md, s: s, cfg: sdkPublicConfig(t, md, s), token: urlPath(t, md.TokenEndpoint)}
	f.ctx, f.rec = sdkContext(t)
	return f
}

// loginExchange logs in headlessly (without PAR) and exchanges the code.
func (f *sdkFlow) loginExchange(t *testing.T) *oauth2.Token {
	t.Helper()
	code, verifier := sdkLogin(t, f.ctx, f.cfg, false)
	tok, err := f.cfg.Exchange(f.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok
}

// checkOtherKeyRefused exchanges code with a new key: the server must refuse
// it with invalid_grant, and no token may come back.
func (f *sdkFlow) checkOtherKeyRefused(t *testing.T, what, code, verifier string) {
	t.Helper()
	other := withSigner(f.cfg, sdkSigner(t, "ES256"))
	tok, err := other.Exchange(f.ctx, code, oauth2.VerifierOption(verifier))
	if tok != nil {
		t.Errorf("%s returned a token", what)
	}
	if re := checkRetrieveError(t, what, err); re.ErrorCode != "invalid_grant" {
		t.Errorf("ErrorCode = %q; want invalid_grant", re.ErrorCode)
	}
}

// TestSDKAuthCode: code + PKCE with dpop_jkt, Exchange, then the RS.
func TestSDKAuthCode(t *testing.T) {
	t.Parallel()
	f := newSDKFlow(t)
	tok := f.loginExchange(t)
	checkExchanges(t, "Exchange", f.rec.take(), "POST "+f.token+" 400 use_dpop_nonce", "POST "+f.token+" 200")
	checkUserToken(t, tok, f.s, f.rs)
	sdkCallAsUser(t, f.ctx, f.rec, f.cfg, tok, f.rs, "/api/me")
}

// TestSDKAuthCodeOtherKey: the code is bound to dpop_jkt; exchanging it with
// another key fails.
func TestSDKAuthCodeOtherKey(t *testing.T) {
	t.Parallel()
	f := newSDKFlow(t)
	code, verifier := sdkLogin(t, f.ctx, f.cfg, false)
	f.checkOtherKeyRefused(t, "Exchange with another key", code, verifier)
}

// TestSDKRefresh: an expired token is refreshed with the same key (the new
// access token works at the RS); another key is refused with invalid_grant.
func TestSDKRefresh(t *testing.T) {
	t.Parallel()
	f := newSDKFlow(t)
	tok := f.loginExchange(t)
	f.rec.take()

	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	ts := f.cfg.TokenSource(f.ctx, &expired)
	tok2, err := ts.Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	// The Config's AS nonce is still fresh: no challenge.
	checkExchanges(t, "refresh", f.rec.take(), "POST "+f.token+" 200")
	checkBoundToken(t, tok2, f.s, f.rs)
	if tok2.AccessToken == tok.AccessToken {
		t.Errorf("refresh returned the old access token")
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
		t.Errorf("refresh token was not rotated")
	}
	if !tok2.Valid() {
		t.Errorf("refreshed token is not valid (expiry %v)", tok2.Expiry)
	}
	// The token source keeps the refreshed token.
	if tok3, err := ts.Token(); err != nil || tok3.AccessToken != tok2.AccessToken {
		t.Errorf("second Token() = %v, %v; want the refreshed token again", tok3, err)
	}
	sdkCallAsUser(t, f.ctx, f.rec, f.cfg, tok2, f.rs, "/api/refreshed")

	// Another key with the newest refresh token.
	other := withSigner(f.cfg, sdkSigner(t, "ES256"))
	stolen := *tok2
	stolen.Expiry = time.Now().Add(-time.Minute)
	_, err = other.TokenSource(f.ctx, &stolen).Token()
	if re := checkRetrieveError(t, "refresh with another key", err); re.ErrorCode != "invalid_grant" {
		t.Errorf("ErrorCode = %q; want invalid_grant", re.ErrorCode)
	}
}

// TestSDKRefreshThroughClient: Config.Client with an expired token refreshes
// it inside the RS call.
func TestSDKRefreshThroughClient(t *testing.T) {
	t.Parallel()
	f := newSDKFlow(t)
	tok := f.loginExchange(t)
	f.rec.take()
	tok.Expiry = time.Now().Add(-time.Minute)
	a := sdkCallRS(t, f.cfg.Client(f.ctx, tok), "GET", f.rs+"/api/auto", nil)
	if a.JKT != f.s.Thumbprint() || a.Sub != "alice" {
		t.Errorf("RS answer sub=%q jkt=%q; want alice, %q", a.Sub, a.JKT, f.s.Thumbprint())
	}
	checkExchanges(t, "RS call with an expired token", f.rec.take(),
		"POST "+f.token+" 200", "GET /api/auto 401 use_dpop_nonce", "GET /api/auto 200")
}

// TestSDKDevice: device authorization, approval by the headless user while
// DeviceAccessToken polls, then the RS.
func TestSDKDevice(t *testing.T) {
	t.Parallel()
	f := newSDKFlow(t)
	da, err := f.cfg.DeviceAuth(f.ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	if da.DeviceCode == "" || da.UserCode == "" || da.VerificationURIComplete == "" {
		t.Fatalf("DeviceAuth = %+v; want device_code, user_code and verification_uri_complete", da)
	}
	device := urlPath(t, f.md.DeviceAuthorizationEndpoint)
	checkExchanges(t, "DeviceAuth", f.rec.take(), "POST "+device+" 200")

	// Poll in a goroutine and approve on the test goroutine (the helpers
	// call t.Fatal, which must not run elsewhere).
	var r struct {
		tok *oauth2.Token
		err error
	}
	pollCtx, cancel := context.WithCancel(f.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.tok, r.err = f.cfg.DeviceAccessToken(pollCtx, da)
	}()
	defer func() { cancel(); <-done }() // also on t.Fatal below
	headlessApproveDevice(t, da.VerificationURIComplete)
	select {
	case <-done:
	case <-f.ctx.Done():
		t.Fatal("DeviceAccessToken: no token before the test's deadline")
	}
	if r.err != nil {
		t.Fatalf("DeviceAccessToken: %v", r.err)
	}
	checkUserToken(t, r.tok, f.s, f.rs)
	// Polls before the approval, if any, end with authorization_pending.
	ex := f.rec.take()
	if n := len(ex); n == 0 || ex[n-1].String() != "POST "+f.token+" 200" {
		t.Errorf("device polls = %v; want the last to be POST %s 200", ex, f.token)
	}
	for _, e := range ex[:max(len(ex)-1, 0)] {
		if e.code != "use_dpop_nonce" && e.code != "authorization_pending" {
			t.Errorf("device poll %v; want use_dpop_nonce or authorization_pending", e)
		}
	}
	sdkCallAsUser(t, f.ctx, f.rec, f.cfg, r.tok, f.rs, "/api/device")
}

// TestSDKPAR: PushAuthCodeURL with a proof, login with the request_uri,
// Exchange, then the RS.
func TestSDKPAR(t *testing.T) {
	t.Parallel()
	f := newSDKFlow(t)
	code, verifier := sdkLogin(t, f.ctx, f.cfg, true)
	par := urlPath(t, f.md.PushedAuthorizationRequestEndpoint)
	ex := f.rec.take()
	checkExchanges(t, "PushAuthCodeURL", ex, "POST "+par+" 400 use_dpop_nonce", "POST "+par+" 201")
	if len(ex) == 2 {
		checkNonceRetry(t, "PushAuthCodeURL", ex[0], ex[1])
	}
	tok, err := f.cfg.Exchange(f.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	// PAR and token endpoint share the AS origin: the nonce is reused.
	checkExchanges(t, "Exchange", f.rec.take(), "POST "+f.token+" 200")
	checkUserToken(t, tok, f.s, f.rs)
	sdkCallAsUser(t, f.ctx, f.rec, f.cfg, tok, f.rs, "/api/par")
}

// TestSDKPAROtherKey: PAR binds the code to the proof's key; exchanging it
// with another key fails.
func TestSDKPAROtherKey(t *testing.T) {
	t.Parallel()
	f := newSDKFlow(t)
	code, verifier := sdkLogin(t, f.ctx, f.cfg, true)
	f.checkOtherKeyRefused(t, "Exchange of a PAR code with another key", code, verifier)
}
