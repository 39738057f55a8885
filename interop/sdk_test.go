package interop

// Interop tests of the SDK (github.com/dpopkit/dpop, public API only) against
// oidc-provider (as.mjs) and the jose resource server (rs.mjs). No proof here
// is made by hand: every DPoP header comes from the SDK.
//
// The wire is observed by sdkRecorder, installed as the Base transport through
// the context's oauth2.HTTPClient; it knows nothing of the SDK.
//
// Concurrency: the RS rotates its nonce after every 5 accepted requests and
// accepts the current and the previous one, and POST /_rs/rotate-nonce
// invalidates every client's nonce. Tests that assert the exact exchanges of a
// client reusing a nonce, or that rotate (sdk_rs_test.go), are therefore not
// parallel. The flow tests (sdk_flows_test.go) are: each RS call there comes
// from a fresh client, whose one retry carries the nonce just answered; it
// would take at least 6 accepted requests of others between that answer and
// the retry to retire it (two rotations).

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/dpopkit/dpop"
)

// sdkAlgs are the proof algorithms the SDK signs with.
var sdkAlgs = []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256"}

// sdkExchange is one request/response pair seen by sdkRecorder.
type sdkExchange struct {
	method, path string
	status       int
	code         string // JSON "error" of a 4xx body, else the error= of a DPoP WWW-Authenticate
	proofAlg     string // alg of the DPoP proof's JWS header
	proofNonce   string // nonce claim of the proof
	respNonce    string // DPoP-Nonce of the response
}

// String is the form the tests compare: "POST /token 400 use_dpop_nonce".
func (e sdkExchange) String() string {
	s := fmt.Sprintf("%s %s %d", e.method, e.path, e.status)
	if e.code != "" {
		s += " " + e.code
	}
	return s
}

// sdkRecorder is an http.RoundTripper that records every exchange. Response
// bodies (small JSON from both servers) are read and restored.
type sdkRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	log  []sdkExchange
}

var wwwAuthErrorRe = regexp.MustCompile(`\berror="([^"]*)"`)

func (r *sdkRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	e := sdkExchange{method: req.Method, path: req.URL.Path}
	e.proofAlg, e.proofNonce = proofParts(req.Header.Get("DPoP"))
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	e.status = resp.StatusCode
	e.respNonce = resp.Header.Get("DPoP-Nonce")
	if resp.StatusCode >= 400 {
		var j struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &j) == nil {
			e.code = j.Error
		}
		if m := wwwAuthErrorRe.FindStringSubmatch(resp.Header.Get("WWW-Authenticate")); m != nil {
			e.code = m[1]
		}
	}
	r.mu.Lock()
	r.log = append(r.log, e)
	r.mu.Unlock()
	return resp, nil
}

// take returns the exchanges recorded since the last take.
func (r *sdkRecorder) take() []sdkExchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.log
	r.log = nil
	return l
}

// proofParts decodes (without verifying: the servers verify) the alg and the
// nonce of a DPoP proof.
func proofParts(proof string) (alg, nonce string) {
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		return "", ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	var c struct {
		Nonce string `json:"nonce"`
	}
	if b, err := base64.RawURLEncoding.DecodeString(parts[0]); err == nil {
		json.Unmarshal(b, &h)
	}
	if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
		json.Unmarshal(b, &c)
	}
	return h.Alg, c.Nonce
}

// sdkContext returns a context (cancelled at the end of the test) whose
// oauth2.HTTPClient sends through a new recorder.
func sdkContext(t *testing.T) (context.Context, *sdkRecorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	rec := &sdkRecorder{base: http.DefaultTransport}
	return context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: rec}), rec
}

// checkExchanges compares the recorded exchanges with want.
func checkExchanges(t *testing.T, what string, got []sdkExchange, want ...string) {
	t.Helper()
	gs := make([]string, len(got))
	for i, e := range got {
		gs[i] = e.String()
	}
	if !slices.Equal(gs, want) {
		t.Errorf("%s: exchanges = %q; want %q", what, gs, want)
	}
}

// checkNonceRetry checks that a challenge's retry carried the nonce the
// challenge answered, and that the first proof did not carry it.
func checkNonceRetry(t *testing.T, what string, challenge, retry sdkExchange) {
	t.Helper()
	if challenge.respNonce == "" {
		t.Fatalf("%s: challenge without DPoP-Nonce", what)
	}
	if challenge.proofNonce == challenge.respNonce {
		t.Errorf("%s: challenged proof already had nonce %q", what, challenge.proofNonce)
	}
	if retry.proofNonce != challenge.respNonce {
		t.Errorf("%s: retry proof nonce = %q; want %q", what, retry.proofNonce, challenge.respNonce)
	}
}

func urlPath(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

// sdkSigner returns a signer with a new key for alg (RSA keys: 2048 bits).
func sdkSigner(t *testing.T, alg string) *dpop.Signer {
	t.Helper()
	var (
		key  crypto.Signer
		err  error
		opts *dpop.SignerOptions
	)
	switch alg {
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case "PS256":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "RS256":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		opts = &dpop.SignerOptions{Alg: "RS256"}
	default:
		t.Fatalf("sdkSigner: unknown alg %q", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(key, opts)
	if err != nil {
		t.Fatalf("NewSigner(%s key): %v", alg, err)
	}
	if got := s.Alg(); got != alg {
		t.Fatalf("Signer.Alg() = %q; want %q", got, alg)
	}
	return s
}

// sdkDiscover runs dpop.Discover against the AS, without a recorder.
func sdkDiscover(t *testing.T, issuer string) *dpop.Metadata {
	t.Helper()
	md, err := dpop.Discover(context.Background(), issuer)
	if err != nil {
		t.Fatalf("Discover(%q): %v", issuer, err)
	}
	return md
}

// sdkBackend returns a dpop.ClientCredentials for the confidential client.
func sdkBackend(t *testing.T, md *dpop.Metadata, s *dpop.Signer, scopes ...string) *dpop.ClientCredentials {
	t.Helper()
	id, secret := backendClient(t)
	if err := md.CheckSigner(s); err != nil {
		t.Fatalf("CheckSigner(%s): %v", s.Alg(), err)
	}
	return &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: md.TokenEndpoint, Scopes: scopes},
		Signer: s,
	}
}

// checkBoundToken checks token_type DPoP and the access token's cnf.jkt and aud.
func checkBoundToken(t *testing.T, tok *oauth2.Token, s *dpop.Signer, rs string) {
	t.Helper()
	if tok.TokenType != "DPoP" {
		t.Errorf("token_type = %q; want DPoP", tok.TokenType)
	}
	c := jwtClaims(t, tok.AccessToken)
	cnf, _ := c["cnf"].(map[string]any)
	if got, want := cnf["jkt"], s.Thumbprint(); got != want {
		t.Errorf("access token cnf.jkt = %v; want %q", got, want)
	}
	if got := c["aud"]; got != rs {
		t.Errorf("access token aud = %v; want %q", got, rs)
	}
}

// rsAnswer is the RS's 200 JSON.
type rsAnswer struct {
	Method     string `json:"method"`
	Path       string `json:"path"`
	Sub        string `json:"sub"`
	ClientID   string `json:"client_id"`
	Scope      string `json:"scope"`
	JKT        string `json:"jkt"`
	BodySHA256 string `json:"body_sha256"`
	BodyLen    int64  `json:"body_len"`
}

// sdkCallRS sends method to rawURL with c (body, when not nil, rewindable),
// and fails the test unless the RS answers 200 for that method and path.
func sdkCallRS(t *testing.T, c *http.Client, method, rawURL string, body []byte) rsAnswer {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d (WWW-Authenticate %q): %s; CheckResponse: %v",
			method, rawURL, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), raw, dpop.CheckResponse(resp))
	}
	var a rsAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("%s %s: %v in %q", method, rawURL, err, raw)
	}
	if want := urlPath(t, rawURL); a.Method != method || a.Path != want {
		t.Errorf("RS saw %s %s; want %s %s", a.Method, a.Path, method, want)
	}
	return a
}

// checkBody checks the RS's digest of a request body.
func checkBody(t *testing.T, a rsAnswer, body []byte) {
	t.Helper()
	sum := sha256.Sum256(body)
	if got, want := a.BodySHA256, hex.EncodeToString(sum[:]); got != want {
		t.Errorf("RS body_sha256 = %s; want %s", got, want)
	}
	if got, want := a.BodyLen, int64(len(body)); got != want {
		t.Errorf("RS body_len = %d; want %d", got, want)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func rotateRSNonce(t *testing.T, rs string) {
	t.Helper()
	resp, err := http.Post(rs+"/_rs/rotate-nonce", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /_rs/rotate-nonce: HTTP %d", resp.StatusCode)
	}
}

// TestSDKDiscover: Discover finds oidc-provider's metadata, and CheckSigner
// admits every SDK alg.
func TestSDKDiscover(t *testing.T) {
	issuer, _ := requireInterop(t)
	ctx, rec := sdkContext(t)
	md, err := dpop.Discover(ctx, issuer)
	if err != nil {
		t.Fatalf("Discover(%q): %v", issuer, err)
	}
	// oidc-provider 9.13.3 serves the RFC 8414 document too (same issuer),
	// so Discover stops at its first location.
	checkExchanges(t, "Discover", rec.take(), "GET /.well-known/oauth-authorization-server 200")

	if md.Issuer != issuer {
		t.Errorf("Issuer = %q; want %q", md.Issuer, issuer)
	}
	ep := md.Endpoint()
	for name, v := range map[string]string{
		"AuthURL":                               ep.AuthURL,
		"TokenURL":                              ep.TokenURL,
		"DeviceAuthURL":                         ep.DeviceAuthURL,
		"pushed_authorization_request_endpoint": md.PushedAuthorizationRequestEndpoint,
		"jwks_uri":                              md.JWKSURI,
	} {
		if !strings.HasPrefix(v, issuer+"/") {
			t.Errorf("%s = %q; want a URL under %s", name, v, issuer)
		}
	}
	if ep.AuthStyle != oauth2.AuthStyleAutoDetect {
		t.Errorf("Endpoint().AuthStyle = %v; want AuthStyleAutoDetect", ep.AuthStyle)
	}
	if md.RequirePushedAuthorizationRequests {
		t.Errorf("RequirePushedAuthorizationRequests = true; want false")
	}
	if !slices.Contains(md.CodeChallengeMethodsSupported, "S256") {
		t.Errorf("CodeChallengeMethodsSupported = %q; want S256 in it", md.CodeChallengeMethodsSupported)
	}
	t.Logf("dpop_signing_alg_values_supported = %q", md.DPoPSigningAlgValuesSupported)
	for _, alg := range sdkAlgs {
		if err := md.CheckSigner(sdkSigner(t, alg)); err != nil {
			t.Errorf("CheckSigner(%s) = %v; want nil", alg, err)
		}
	}
}

// TestSDKClientCredentialsNonce: the first token request meets the AS's
// use_dpop_nonce challenge and is retried once with the nonce; the second
// reuses the cached nonce and is not challenged.
func TestSDKClientCredentialsNonce(t *testing.T) {
	issuer, rs := requireInterop(t)
	md := sdkDiscover(t, issuer)
	s := sdkSigner(t, "ES256")
	cc := sdkBackend(t, md, s, "api:read")
	ctx, rec := sdkContext(t)
	token := urlPath(t, md.TokenEndpoint)

	tok1, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("first Token: %v", err)
	}
	ex := rec.take()
	checkExchanges(t, "first token request", ex, "POST "+token+" 400 use_dpop_nonce", "POST "+token+" 200")
	if len(ex) == 2 {
		checkNonceRetry(t, "first token request", ex[0], ex[1])
	}
	checkBoundToken(t, tok1, s, rs)
	if got := tok1.Extra("scope"); got != "api:read" {
		t.Errorf("scope = %v; want api:read", got)
	}

	tok2, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("second Token: %v", err)
	}
	ex = rec.take()
	checkExchanges(t, "second token request", ex, "POST "+token+" 200")
	if len(ex) == 1 && ex[0].proofNonce == "" {
		t.Errorf("second token request: proof without nonce")
	}
	checkBoundToken(t, tok2, s, rs)
	if tok2.AccessToken == tok1.AccessToken {
		t.Errorf("second Token returned the first access token again")
	}
}

// TestSDKAlgs: each alg end to end: a client credentials token bound to the
// key, and an RS call verified with that alg.
func TestSDKAlgs(t *testing.T) {
	issuer, rs := requireInterop(t)
	md := sdkDiscover(t, issuer)
	for _, alg := range sdkAlgs {
		t.Run(alg, func(t *testing.T) {
			// Parallel among themselves only (the parent is not parallel):
			// each client's retry could meet at most 5 accepted requests
			// of the others, fewer than the 6 that could retire its nonce.
			t.Parallel()
			s := sdkSigner(t, alg)
			cc := sdkBackend(t, md, s, "api:read")
			ctx, rec := sdkContext(t)
			tok, err := cc.Token(ctx)
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			checkBoundToken(t, tok, s, rs)
			ex := rec.take()
			for _, e := range ex {
				if e.proofAlg != alg {
					t.Errorf("%v: proof alg = %q; want %q", e, e.proofAlg, alg)
				}
			}
			c := &http.Client{Transport: &dpop.Transport{
				Base:   rec,
				Source: oauth2.StaticTokenSource(tok),
				Signer: s,
			}}
			a := sdkCallRS(t, c, http.MethodGet, rs+"/api/"+alg, nil)
			if a.JKT != s.Thumbprint() {
				t.Errorf("RS jkt = %q; want %q", a.JKT, s.Thumbprint())
			}
			if a.Scope != "api:read" {
				t.Errorf("RS scope = %q; want api:read", a.Scope)
			}
			ex = rec.take()
			checkExchanges(t, "RS GET", ex, "GET /api/"+alg+" 401 use_dpop_nonce", "GET /api/"+alg+" 200")
			for _, e := range ex {
				if e.proofAlg != alg {
					t.Errorf("%v: proof alg = %q; want %q", e, e.proofAlg, alg)
				}
			}
		})
	}
}
