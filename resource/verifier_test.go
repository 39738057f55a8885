package resource

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"golang.org/x/oauth2"
)

func TestCheckAccepts(t *testing.T) {
	for _, alg := range []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			s := newSetup(t, alg, nil)
			at, err := s.v.Check(s.request(s.validProof(t)))
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if at.Subject != "alice" || at.JKT != s.key.jkt {
				t.Errorf("Check = %+v; want alice's token bound to %s", at, s.key.jkt)
			}
		})
	}
}

// TestCheckRootSigner checks the proofs of this module's client.
func TestCheckRootSigner(t *testing.T) {
	k := newTestKey(t, "ES256")
	signer, err := dpop.NewSigner(k.priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newSetup(t, "ES256", func(c *Config) { c.Now = nil })
	s.store.now = nil
	s.token = s.tokens.issue(signer.Thumbprint())
	for _, u := range []string{testURL, testURL + "?q=1#f", "HTTPS://API.example.com:443/items"} {
		p, err := signer.Proof("GET", u, &dpop.ProofOptions{AccessToken: s.token})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.v.Check(s.request(p)); err != nil {
			t.Errorf("proof for %s: %v", u, err)
		}
	}
}

// TestCheckRefuses holds every check: each subtest breaks one thing of a
// valid request and fails if the check that refuses it is removed (the
// request would pass, or be refused for another reason).
func TestCheckRefuses(t *testing.T) {
	type mutation struct {
		name   string
		header func(h map[string]any)
		claims func(c map[string]any)
		raw    func(s *setup, proof string) string // applied to the signed proof
		req    func(r *http.Request)
		reason Reason
		code   ErrorCode
		status int
	}
	other := newTestKey(t, "ES256")
	tests := []mutation{
		{name: "no Authorization", req: func(r *http.Request) { r.Header.Del("Authorization") }, reason: ReasonMissingToken, status: 401},
		{name: "Basic scheme", req: func(r *http.Request) { r.Header.Set("Authorization", "Basic YTpi") }, reason: ReasonScheme, status: 401},
		{name: "Bearer scheme", req: func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+strings.TrimPrefix(r.Header.Get("Authorization"), "DPoP "))
		}, reason: ReasonScheme, status: 401},
		{name: "two Authorization", req: func(r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) }, reason: ReasonMalformed, code: ErrorInvalidRequest, status: 400},
		{name: "token not token68", req: func(r *http.Request) { r.Header.Set("Authorization", "DPoP a b") }, reason: ReasonMalformed, code: ErrorInvalidRequest, status: 400},
		{name: "empty token", req: func(r *http.Request) { r.Header.Set("Authorization", "DPoP ") }, reason: ReasonMalformed, code: ErrorInvalidRequest, status: 400},
		{name: "huge Authorization", req: func(r *http.Request) { r.Header.Set("Authorization", "DPoP "+strings.Repeat("a", 1<<20)) }, reason: ReasonTooLarge, code: ErrorInvalidRequest, status: 400},
		{name: "no DPoP", req: func(r *http.Request) { r.Header.Del("DPoP") }, reason: ReasonMissingProof, code: ErrorInvalidProof, status: 401},
		{name: "two DPoP", req: func(r *http.Request) { r.Header.Add("DPoP", r.Header.Get("DPoP")) }, reason: ReasonMalformed, code: ErrorInvalidRequest, status: 400},
		{name: "huge DPoP", raw: func(_ *setup, p string) string { return p + strings.Repeat("A", maxProofLen) }, reason: ReasonTooLarge, code: ErrorInvalidProof, status: 401},
		{name: "huge header", header: func(h map[string]any) { h["x"] = strings.Repeat("a", maxHeaderLen) }, reason: ReasonTooLarge, code: ErrorInvalidProof, status: 401},
		{name: "two parts", raw: func(_ *setup, p string) string { return p[:strings.LastIndexByte(p, '.')] }, reason: ReasonProofSyntax},
		{name: "four parts", raw: func(_ *setup, p string) string { return p + ".AA" }, reason: ReasonProofSyntax},
		{name: "padding", raw: func(_ *setup, p string) string { return p + "==" }, reason: ReasonProofSyntax},
		{name: "newline", raw: func(_ *setup, p string) string { return p[:10] + "\n" + p[10:] }, reason: ReasonProofSyntax},
		{name: "header not JSON", raw: func(_ *setup, p string) string { return "bm90IGpzb24" + p[strings.IndexByte(p, '.'):] }, reason: ReasonProofSyntax},
		{name: "typ missing", header: func(h map[string]any) { delete(h, "typ") }, reason: ReasonProofHeader},
		{name: "typ JWT", header: func(h map[string]any) { h["typ"] = "JWT" }, reason: ReasonProofHeader},
		{name: "typ not a string", header: func(h map[string]any) { h["typ"] = 1 }, reason: ReasonProofHeader},
		{name: "alg missing", header: func(h map[string]any) { delete(h, "alg") }, reason: ReasonProofAlg},
		{name: "alg none", header: func(h map[string]any) { h["alg"] = "none" }, reason: ReasonProofAlg},
		{name: "alg HS256", header: func(h map[string]any) { h["alg"] = "HS256" }, reason: ReasonProofAlg},
		{name: "alg of another key type", header: func(h map[string]any) { h["alg"] = "RS256" }, reason: ReasonProofKey},
		{name: "alg of another curve", header: func(h map[string]any) { h["alg"] = "ES384" }, reason: ReasonProofKey},
		{name: "alg lower case", header: func(h map[string]any) { h["alg"] = "es256" }, reason: ReasonProofAlg},
		{name: "jwk missing", header: func(h map[string]any) { delete(h, "jwk") }, reason: ReasonProofHeader},
		{name: "kid only", header: func(h map[string]any) { delete(h, "jwk"); h["kid"] = "k1" }, reason: ReasonProofHeader},
		{name: "jwk not an object", header: func(h map[string]any) { h["jwk"] = "x" }, reason: ReasonProofHeader},
		{name: "jwk private", header: func(h map[string]any) { h["jwk"] = with(h["jwk"], "d", "AAAA") }, reason: ReasonProofKey},
		{name: "jwk symmetric", header: func(h map[string]any) { h["jwk"] = with(h["jwk"], "k", "AAAA") }, reason: ReasonProofKey},
		{name: "jwk x5c", header: func(h map[string]any) { h["jwk"] = with(h["jwk"], "x5c", []string{"AAAA"}) }, reason: ReasonProofKey},
		{name: "jwk use enc", header: func(h map[string]any) { h["jwk"] = with(h["jwk"], "use", "enc") }, reason: ReasonProofKey},
		{name: "jwk alg other", header: func(h map[string]any) { h["jwk"] = with(h["jwk"], "alg", "ES384") }, reason: ReasonProofKey},
		{name: "jwk short x", header: func(h map[string]any) { h["jwk"] = with(h["jwk"], "x", "AAAA") }, reason: ReasonProofKey},
		{name: "jwk point off curve", header: func(h map[string]any) {
			h["jwk"] = with(h["jwk"], "x", base64.RawURLEncoding.EncodeToString(make([]byte, 32)))
		}, reason: ReasonProofKey},
		{name: "jwk of another key", header: func(h map[string]any) { h["jwk"] = other.jwk }, reason: ReasonProofSignature},
		{name: "crit", header: func(h map[string]any) { h["crit"] = []string{"exp"}; h["exp"] = 1 }, reason: ReasonProofHeader},
		{name: "b64", header: func(h map[string]any) { h["b64"] = false; h["crit"] = []string{"b64"} }, reason: ReasonProofHeader},
		{name: "jku", header: func(h map[string]any) { h["jku"] = "https://attacker.example/jwks" }, reason: ReasonProofHeader},
		{name: "x5u", header: func(h map[string]any) { h["x5u"] = "https://attacker.example/cert" }, reason: ReasonProofHeader},
		{name: "x5c", header: func(h map[string]any) { h["x5c"] = []string{"AAAA"} }, reason: ReasonProofHeader},
		{name: "signature flipped", raw: func(_ *setup, p string) string { return flipLast(p) }, reason: ReasonProofSignature},
		{name: "signature of another proof", raw: func(s *setup, p string) string {
			q := s.validProof(t)
			return p[:strings.LastIndexByte(p, '.')] + q[strings.LastIndexByte(q, '.'):]
		}, reason: ReasonProofSignature},
		{name: "claims not an object", raw: func(s *setup, p string) string {
			h, _ := json.Marshal(s.key.header())
			return s.key.signRaw(t, h, []byte(`[1]`))
		}, reason: ReasonProofSyntax},
		{name: "claims duplicate", raw: func(s *setup, p string) string {
			h, _ := json.Marshal(s.key.header())
			c, _ := json.Marshal(claims(s.token))
			return s.key.signRaw(t, h, append(c[:len(c)-1], `,"htm":"POST"}`...))
		}, reason: ReasonProofSyntax},
		{name: "jti missing", claims: func(c map[string]any) { delete(c, "jti") }, reason: ReasonJTI},
		{name: "jti empty", claims: func(c map[string]any) { c["jti"] = "" }, reason: ReasonJTI},
		{name: "jti a number", claims: func(c map[string]any) { c["jti"] = 5 }, reason: ReasonProofSyntax},
		{name: "htm missing", claims: func(c map[string]any) { delete(c, "htm") }, reason: ReasonHTM},
		{name: "htm POST", claims: func(c map[string]any) { c["htm"] = "POST" }, reason: ReasonHTM},
		{name: "htm lower case", claims: func(c map[string]any) { c["htm"] = "get" }, reason: ReasonHTM},
		{name: "htu missing", claims: func(c map[string]any) { delete(c, "htu") }, reason: ReasonHTU},
		{name: "htu other path", claims: func(c map[string]any) { c["htu"] = testBase + "/other" }, reason: ReasonHTU},
		{name: "htu other host", claims: func(c map[string]any) { c["htu"] = "https://evil.example/items" }, reason: ReasonHTU},
		{name: "htu http", claims: func(c map[string]any) { c["htu"] = "http://api.example.com/items" }, reason: ReasonHTU},
		{name: "htu relative", claims: func(c map[string]any) { c["htu"] = "/items" }, reason: ReasonHTU},
		{name: "iat missing", claims: func(c map[string]any) { delete(c, "iat") }, reason: ReasonIAT},
		{name: "iat a string", claims: func(c map[string]any) { c["iat"] = "1800000000" }, reason: ReasonIAT},
		{name: "iat an hour ago", claims: func(c map[string]any) { c["iat"] = testNow.Add(-time.Hour).Unix() }, reason: ReasonIAT},
		{name: "iat just too old", claims: func(c map[string]any) { c["iat"] = testNow.Add(-defaultMaxAge - time.Second).Unix() }, reason: ReasonIAT},
		{name: "iat in the future", claims: func(c map[string]any) { c["iat"] = testNow.Add(defaultMaxFuture + time.Second).Unix() }, reason: ReasonIAT},
		{name: "iat negative", claims: func(c map[string]any) { c["iat"] = -1 }, reason: ReasonIAT},
		{name: "ath missing", claims: func(c map[string]any) { delete(c, "ath") }, reason: ReasonATH},
		{name: "ath of another token", claims: func(c map[string]any) { c["ath"] = athOf("other") }, reason: ReasonATH},
		{name: "unknown token", req: func(r *http.Request) {}, raw: func(s *setup, p string) string {
			s.token = "tok.not-issued-" + randB64(8)
			return s.validProof(t)
		}, reason: ReasonToken, code: ErrorInvalidToken},
		{name: "token bound to another key", raw: func(s *setup, p string) string {
			s.token = s.tokens.issue(other.jkt)
			return s.validProof(t)
		}, reason: ReasonJKT, code: ErrorInvalidToken},
		{name: "unbound token", raw: func(s *setup, p string) string {
			s.token = s.tokens.issue("")
			return s.validProof(t)
		}, reason: ReasonUnbound, code: ErrorInvalidToken},
		{name: "replay", raw: func(s *setup, p string) string {
			if _, err := s.v.Check(s.request(p)); err != nil {
				t.Fatalf("first use: %v", err)
			}
			return p
		}, reason: ReasonReplay},
		{name: "OPTIONS *", req: func(r *http.Request) { r.RequestURI = "*" }, reason: ReasonURL, code: ErrorInvalidRequest, status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t, "ES256", nil)
			h, c := s.key.header(), claims(s.token)
			if tt.header != nil {
				tt.header(h)
			}
			if tt.claims != nil {
				tt.claims(c)
			}
			p := s.key.proof(t, h, c)
			if tt.raw != nil {
				p = tt.raw(s, p)
			}
			r := s.request(p)
			if tt.req != nil {
				tt.req(r)
			}
			_, err := s.v.Check(r)
			if got := reasonOf(err); got != tt.reason {
				t.Fatalf("Check: reason %q (%v); want %q", got, err, tt.reason)
			}
			var e *Error
			errors.As(err, &e)
			code := tt.code
			if code == "" && tt.status == 0 {
				code = ErrorInvalidProof
			}
			status := tt.status
			if status == 0 {
				status = 401
			}
			if e.Code != code || e.Status() != status {
				t.Errorf("Code, Status = %q, %d; want %q, %d", e.Code, e.Status(), code, status)
			}
			if msg := err.Error(); strings.Contains(msg, s.token) || strings.Contains(msg, p[:20]) {
				t.Errorf("error text %q holds the token or the proof", msg)
			}
			// The next legitimate request succeeds.
			s.token = s.tokens.issue(s.key.jkt)
			if _, err := s.v.Check(s.request(s.validProof(t))); err != nil {
				t.Errorf("next valid request: %v", err)
			}
		})
	}
}

// with returns a copy of the JWK jwk with name set to value.
func with(jwk any, name string, value any) map[string]any {
	m := map[string]any{}
	for k, v := range jwk.(map[string]any) {
		m[k] = v
	}
	m[name] = value
	return m
}

// flipLast changes the last signature character to another one that
// keeps the encoding canonical.
func flipLast(p string) string {
	sig, _ := base64.RawURLEncoding.DecodeString(p[strings.LastIndexByte(p, '.')+1:])
	sig[0] ^= 1
	return p[:strings.LastIndexByte(p, '.')+1] + base64.RawURLEncoding.EncodeToString(sig)
}

func TestCheckAcceptsVariants(t *testing.T) {
	tests := []struct {
		name   string
		header func(h map[string]any)
		claims func(c map[string]any)
	}{
		{name: "typ upper case", header: func(h map[string]any) { h["typ"] = "DPoP+JWT" }},
		{name: "typ with application/", header: func(h map[string]any) { h["typ"] = "application/dpop+jwt" }},
		{name: "extra header member", header: func(h map[string]any) { h["kid"] = "k1"; h["x-extra"] = map[string]any{"a": []int{1}} }},
		{name: "jwk kid and use sig", header: func(h map[string]any) { h["jwk"] = with(with(h["jwk"], "kid", "1"), "use", "sig") }},
		{name: "htu with query and fragment", claims: func(c map[string]any) { c["htu"] = testURL + "?x=1#y" }},
		{name: "htu not normal", claims: func(c map[string]any) { c["htu"] = "HTTPS://API.EXAMPLE.COM:443/./x/../%69tems" }},
		{name: "extra claims", claims: func(c map[string]any) { c["x"] = []any{1, "a", map[string]any{}} }},
		{name: "iat fractional", claims: func(c map[string]any) { c["iat"] = float64(testNow.Unix()) + 0.5 }},
		{name: "iat at the oldest", claims: func(c map[string]any) { c["iat"] = testNow.Add(-defaultMaxAge).Unix() }},
		{name: "iat at the newest", claims: func(c map[string]any) { c["iat"] = testNow.Add(defaultMaxFuture).Unix() }},
		{name: "nonce without issuer", claims: func(c map[string]any) { c["nonce"] = "whatever" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t, "ES256", nil)
			h, c := s.key.header(), claims(s.token)
			if tt.header != nil {
				tt.header(h)
			}
			if tt.claims != nil {
				tt.claims(c)
			}
			r := s.request(s.key.proof(t, h, c))
			if _, err := s.v.Check(r); err != nil {
				t.Fatalf("Check: %v", err)
			}
		})
	}
}

func TestVerifyRequest(t *testing.T) {
	s := newSetup(t, "EdDSA", nil)
	for _, u := range []string{testURL, "/items", "https://other.example/items?x"} {
		_, err := s.v.Verify(context.Background(), &Request{
			Method: "GET", URL: u, Authorization: []string{"DPoP " + s.token}, DPoP: []string{s.validProof(t)},
		})
		if err != nil {
			t.Errorf("Verify(URL %q): %v", u, err)
		}
	}
	// Without PublicURLs the URL's own origin counts.
	s = newSetup(t, "EdDSA", func(c *Config) { c.PublicURLs = nil })
	for _, tt := range []struct {
		url string
		ok  bool
	}{{testURL, true}, {"HTTPS://api.example.com:443/items?x", true}, {"https://other.example/items", false}, {"/items", false}} {
		_, err := s.v.Verify(context.Background(), &Request{
			Method: "GET", URL: tt.url, Authorization: []string{"DPoP " + s.token}, DPoP: []string{s.validProof(t)},
		})
		if (err == nil) != tt.ok {
			t.Errorf("Verify(URL %q) = %v; want ok %v", tt.url, err, tt.ok)
		}
	}
}

func TestHandler(t *testing.T) {
	s := newSetup(t, "ES256", nil)
	h := s.v.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at, ok := FromContext(r.Context())
		if !ok {
			t.Error("FromContext: no token")
		}
		w.Write([]byte(at.Subject))
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, s.request(s.validProof(t)))
	if w.Code != 200 || w.Body.String() != "alice" {
		t.Errorf("valid request: %d %q", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, s.request(""))
	if got, want := w.Header().Get("WWW-Authenticate"), `DPoP error="invalid_dpop_proof", error_description="a DPoP proof is required", algs="ES256 ES384 ES512 EdDSA PS256 RS256"`; w.Code != 401 || got != want {
		t.Errorf("no proof: %d %q; want 401 %q", w.Code, got, want)
	}
	if _, ok := FromContext(context.Background()); ok {
		t.Error("FromContext(Background) = ok")
	}
}

func TestNewVerifierErrors(t *testing.T) {
	tokens := &tokenTable{}
	n, _ := NewNonceIssuer(make([]byte, 32), 0)
	for _, tt := range []struct {
		name string
		c    Config
		want string
	}{
		{"no tokens", Config{}, "Config.Tokens"},
		{"both", Config{Tokens: tokens, PublicURLs: []string{testBase}, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "PublicURLs and Config.TrustedProxies"},
		{"empty PublicURLs", Config{Tokens: tokens, PublicURLs: []string{}}, "PublicURLs is empty"},
		{"relative PublicURL", Config{Tokens: tokens, PublicURLs: []string{"/api"}}, "Config.PublicURLs"},
		{"PublicURL with query", Config{Tokens: tokens, PublicURLs: []string{testBase + "?x"}}, "Config.PublicURLs"},
		{"PublicURL with userinfo", Config{Tokens: tokens, PublicURLs: []string{"https://u@api.example.com"}}, "Config.PublicURLs"},
		{"bad proxy", Config{Tokens: tokens, TrustedProxies: []netip.Prefix{{}}}, "Config.TrustedProxies"},
		{"alg none", Config{Tokens: tokens, Algs: []string{"none"}}, "Config.Algs"},
		{"alg HS256", Config{Tokens: tokens, Algs: []string{"ES256", "HS256"}}, "Config.Algs"},
		{"no algs", Config{Tokens: tokens, Algs: []string{}}, "Config.Algs"},
		{"negative MaxAge", Config{Tokens: tokens, MaxAge: -1}, "Config.MaxAge"},
		{"zero NonceIssuer", Config{Tokens: tokens, Nonces: &NonceIssuer{}}, "Config.Nonces"},
		{"RequireNonce without Nonces", Config{Tokens: tokens, RequireNonce: func(*http.Request) bool { return true }}, "Config.RequireNonce"},
		{"metadata with quote", Config{Tokens: tokens, ResourceMetadata: `https://x/"`}, "Config.ResourceMetadata"},
		{"metadata relative", Config{Tokens: tokens, ResourceMetadata: `/x`}, "Config.ResourceMetadata"},
	} {
		_, err := NewVerifier(tt.c)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "dpop: ") {
			t.Errorf("%s: NewVerifier: %v; want an error naming %s", tt.name, err, tt.want)
		}
	}
	if _, err := NewVerifier(Config{Tokens: tokens, Nonces: n, Algs: []string{"PS512", "RS384"}}); err != nil {
		t.Errorf("NewVerifier: %v", err)
	}
}

// TestHandlerWithDPoPClient runs this module's client against the
// middleware on a real server, with JWT access tokens of a dpoptest
// authorization server: the client meets a nonce challenge once,
// retries with the nonce, and then learns each new nonce from DPoP-Nonce
// on the successes (RFC 9449 §8.2) without another challenge.
func TestHandlerWithDPoPClient(t *testing.T) {
	k := newTestKey(t, "EdDSA")
	signer, err := dpop.NewSigner(k.priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The tokens: JWT access tokens of a dpoptest authorization server.
	as := newJWTIssuer(t)
	defer as.Close()
	tokens, err := NewJWTVerifier(context.Background(), as.URL, as.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	token := as.IssueToken(signer.Thumbprint(), "alice", "read")
	n := newIssuer(t, testKeyBytes(5), time.Minute)
	var challenges atomic.Int32
	var v *Verifier
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			at, _ := FromContext(r.Context())
			w.Write([]byte(at.JKT))
		})).ServeHTTP(w, r)
	}))
	defer srv.Close()
	v, err = NewVerifier(Config{
		Tokens: tokens, PublicURLs: []string{srv.URL}, Nonces: n,
		Trace: &Trace{NonceChallenged: func(NonceChallengeInfo) { challenges.Add(1) }},
	})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &dpop.Transport{
		Signer: signer,
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token, TokenType: "DPoP"}),
	}}
	for i, req := range []struct{ method, path, body string }{
		{"GET", "/items?x=1", ""}, {"POST", "/items", "a body"}, {"GET", "/a/%2F/b#frag", ""},
	} {
		r, _ := http.NewRequest(req.method, srv.URL+req.path, strings.NewReader(req.body))
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body := make([]byte, 100)
		nb, _ := resp.Body.Read(body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body[:nb]) != signer.Thumbprint() {
			t.Errorf("request %d: %d %q", i, resp.StatusCode, body[:nb])
		}
	}
	if n := challenges.Load(); n != 1 {
		t.Errorf("%d nonce challenges; want 1 (the first request)", n)
	}

	// The header names in any case, as some clients send them.
	p, _ := signer.Proof("GET", srv.URL+"/items", &dpop.ProofOptions{AccessToken: token, Nonce: n.Nonce()})
	r, _ := http.NewRequest("GET", srv.URL+"/items", nil)
	r.Header["dpop"] = []string{p}
	r.Header["authorization"] = []string{"dpop " + token}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("lower-case header names and scheme: %d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestReplayQuota checks that a client over its share of the replay store
// is refused with a 401, and that the others are not affected.
func TestReplayQuota(t *testing.T) {
	s := newSetup(t, "ES256", nil)
	s.store.MaxPerKey = 2
	for i := range 2 {
		if _, err := s.v.Check(s.request(s.validProof(t))); err != nil {
			t.Fatalf("proof %d: %v", i, err)
		}
	}
	_, err := s.v.Check(s.request(s.validProof(t)))
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonReplayQuota || e.Status() != 401 || e.Code != ErrorInvalidProof {
		t.Fatalf("proof over the key's quota: %v; want a 401 %s", err, ReasonReplayQuota)
	}
	other := newTestKey(t, "EdDSA")
	token := s.tokens.issue(other.jkt)
	r := s.request(other.proof(t, other.header(), claims(token)))
	r.Header.Set("Authorization", "DPoP "+token)
	if _, err := s.v.Check(r); err != nil {
		t.Errorf("another client: %v", err)
	}
}

// TestTokenVerifierErrors checks how TokenVerifier failures are answered.
func TestTokenVerifierErrors(t *testing.T) {
	s := newSetup(t, "ES256", nil)
	for _, tt := range []struct {
		err    error
		reason Reason
		status int
	}{
		{errors.New("dpop: expired"), ReasonToken, 401},
		{errors.Join(errors.New("dpop: key set unreachable"), ErrUnavailable), ReasonTokenUnavailable, 503},
		{&IssuerError{URL: "https://as.example/jwks", StatusCode: 502}, ReasonTokenUnavailable, 503},
		{&TokenError{Claim: "exp", Err: errors.New("expired")}, ReasonToken, 401},
	} {
		s.tokens.err = tt.err
		_, err := s.v.Check(s.request(s.validProof(t)))
		var e *Error
		if !errors.As(err, &e) || e.Reason != tt.reason || e.Status() != tt.status || !errors.Is(err, tt.err) {
			t.Errorf("TokenVerifier error %v: Check = %v; want %s, %d, wrapping it", tt.err, err, tt.reason, tt.status)
		}
	}
	s.tokens.err = nil
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := s.request(s.validProof(t)).WithContext(ctx)
	s.tokens.err = context.Canceled
	if _, err := s.v.Check(r); reasonOf(err) != ReasonCanceled {
		t.Errorf("cancelled request: %v; want %s", err, ReasonCanceled)
	}
}

// failingStore is a ReplayStore that cannot answer.
type failingStore struct{}

func (failingStore) Claim(context.Context, string, string, time.Time) error {
	return errors.New("dpop: connection refused")
}

func TestReplayStoreDown(t *testing.T) {
	s := newSetup(t, "ES256", func(c *Config) { c.Replay = failingStore{} })
	h := s.v.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("handler reached") }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, s.request(s.validProof(t)))
	if w.Code != 503 || w.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("store down: %d %q; want 503 without a challenge (fail closed)", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	// A bad proof is still a 401: the store is asked only for good ones.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, s.request(strings.Repeat("x", 10)))
	if w.Code != 401 {
		t.Errorf("bad proof with the store down: %d; want 401", w.Code)
	}
}

// TestCheckAcceptsEd25519 checks proofs whose alg is RFC 9864's
// fully-specified "Ed25519", as oauth4webapi 3.8 signs with an Ed25519 key,
// when the Verifier is configured to accept it; and that an Ed25519 alg
// over another key type is still refused.
func TestCheckAcceptsEd25519(t *testing.T) {
	s := newSetup(t, "EdDSA", func(c *Config) { c.Algs = []string{"EdDSA", "Ed25519"} })
	h := s.key.header()
	h["alg"] = "Ed25519"
	at, err := s.v.Check(s.request(s.key.proof(t, h, claims(s.token))))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if at.JKT != s.key.jkt {
		t.Errorf("JKT %s, want %s", at.JKT, s.key.jkt)
	}
	ec := newSetup(t, "ES256", func(c *Config) { c.Algs = []string{"ES256", "Ed25519"} })
	h = ec.key.header()
	h["alg"] = "Ed25519"
	var e *Error
	if _, err := ec.v.Check(ec.request(ec.key.proof(t, h, claims(ec.token)))); !errors.As(err, &e) || e.Reason != ReasonProofKey {
		t.Errorf("Ed25519 alg over a P-256 key: %v, want %s", err, ReasonProofKey)
	}
}

// TestVerifyPathHTU checks the lenient mode for gRPC clients that sign the
// bare procedure path as htu: refused by default, accepted with PathHTU,
// and even then only the request's own path.
func TestVerifyPathHTU(t *testing.T) {
	s := newSetup(t, "EdDSA", nil)
	verify := func(htu string, lenient bool) error {
		c := claims(s.token)
		c["htm"] = "POST"
		c["htu"] = htu
		_, err := s.v.Verify(context.Background(), &Request{
			Method: "POST", URL: "/pkg.Service/Method", PathHTU: lenient,
			Authorization: []string{"DPoP " + s.token}, DPoP: []string{s.key.proof(t, s.key.header(), c)},
		})
		return err
	}
	if err := verify("/pkg.Service/Method", false); reasonOf(err) != ReasonHTU {
		t.Errorf("path-only htu by default: %v; want an htu refusal", err)
	}
	if err := verify("/pkg.Service/Method", true); err != nil {
		t.Errorf("path-only htu with PathHTU: %v; want nil", err)
	}
	if err := verify("/pkg.Service/Other", true); reasonOf(err) != ReasonHTU {
		t.Errorf("another path with PathHTU: %v; want an htu refusal", err)
	}
	if err := verify(testBase+"/pkg.Service/Method", true); err != nil {
		t.Errorf("full htu with PathHTU: %v; want nil", err)
	}
}
