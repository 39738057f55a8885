package dpoptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

// fapiClient is a FAPI 2.0 client made of go-jose parts: a DPoP key and a
// private_key_jwt key registered with the server.
type fapiClient struct {
	t    *testing.T
	s    *Server
	dpop *clientKey
	auth *clientKey
}

const fapiRedirect = "https://client.example/cb"

func newFAPI(t *testing.T) *fapiClient {
	t.Helper()
	auth := newClientKey(t, "PS256")
	s := newTestServer(t, &Config{FAPI2: true, Clients: []Client{
		{ID: "fapi", PublicKey: auth.priv.Public(), RedirectURIs: []string{fapiRedirect}},
	}})
	return &fapiClient{t: t, s: s, dpop: newClientKey(t, "ES256"), auth: auth}
}

// assertion signs a client assertion (RFC 7523 §3) with edit applied.
func (f *fapiClient) assertion(k *clientKey, edit func(c map[string]any)) string {
	f.t.Helper()
	c := map[string]any{"iss": "fapi", "sub": "fapi", "aud": f.s.URL, "jti": randString(16),
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()}
	if edit != nil {
		edit(c)
	}
	return k.sign(c)
}

// form returns kv with a fresh client assertion of the registered key.
func (f *fapiClient) form(edit func(c map[string]any), kv ...string) url.Values {
	v := form(kv...)
	v.Set("client_assertion_type", assertionType)
	v.Set("client_assertion", f.assertion(f.auth, edit))
	return v
}

// post sends f to endpoint the FAPI way: a first attempt without a nonce
// must be challenged, the retry with a new assertion carries the nonce.
func (f *fapiClient) post(endpoint string, build func() url.Values, opts ...proofOpts) tokenResp {
	f.t.Helper()
	first := post(f.t, endpoint, f.dpop, "", build(), opts...)
	if first.Error != "use_dpop_nonce" {
		return first
	}
	return post(f.t, endpoint, f.dpop, "", build(), append(opts, withNonce(first.header.Get("DPoP-Nonce")))...)
}

// par pushes an authorization request and returns its request_uri.
func (f *fapiClient) par(challenge string, extra ...string) tokenResp {
	f.t.Helper()
	kv := append([]string{"response_type", "code", "redirect_uri", fapiRedirect, "code_challenge", challenge, "code_challenge_method", "S256"}, extra...)
	return f.post(f.s.PARURL(), func() url.Values { return f.form(nil, kv...) })
}

// login runs PAR, the authorization endpoint and the code exchange.
func (f *fapiClient) login() tokenResp {
	f.t.Helper()
	verifier, challenge := pkce()
	pr := f.par(challenge)
	if pr.status != 201 {
		f.t.Fatalf("PAR: %+v", pr)
	}
	code, back := authorize(f.t, f.s, form("client_id", "fapi", "request_uri", pr.RequestURI))
	if back.Get("iss") != f.s.URL {
		f.t.Errorf("authorization response iss = %q; want %q (RFC 9207)", back.Get("iss"), f.s.URL)
	}
	tr := f.post(f.s.Endpoint().TokenURL, func() url.Values {
		return f.form(nil, "grant_type", "authorization_code", "code", code, "redirect_uri", fapiRedirect, "code_verifier", verifier)
	})
	if tr.status != 200 {
		f.t.Fatalf("code exchange: %+v", tr)
	}
	return tr
}

// wantRule checks that tr is the refusal code whose description names rule.
func wantRule(t *testing.T, tr tokenResp, code, rule string) {
	t.Helper()
	if tr.Error != code || !strings.Contains(tr.Desc, rule) {
		t.Errorf("got %d %q (%s); want %q naming %q", tr.status, tr.Error, tr.Desc, code, rule)
	}
}

// TestFAPI2Flow: a client that follows every rule gets through, each
// request challenged once for its nonce and never told one on a 2xx.
func TestFAPI2Flow(t *testing.T) {
	f := newFAPI(t)
	tr := f.login()
	if tr.header.Get("DPoP-Nonce") != "" {
		t.Errorf("token 200 carries DPoP-Nonce; FAPI 2.0 mode never announces one on a 2xx")
	}
	api := f.s.URL + "/api/x"
	resp, _ := callAPI(t, f.dpop, "GET", api, tr.AT, "")
	if h := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.HasPrefix(h, "dPoP ") || !strings.Contains(h, "use_dpop_nonce") {
		t.Fatalf("first resource request: %d %q; want a 401 use_dpop_nonce challenge spelt dPoP", resp.StatusCode, h)
	}
	nonce := resp.Header.Get("DPoP-Nonce")
	resp, _ = callAPI(t, f.dpop, "GET", api, tr.AT, nonce)
	if resp.StatusCode != 200 || resp.Header.Get("DPoP-Nonce") != "" {
		t.Fatalf("retry: %d, DPoP-Nonce %q; want 200 without a nonce", resp.StatusCode, resp.Header.Get("DPoP-Nonce"))
	}
	resp, _ = callAPI(t, f.dpop, "GET", api, tr.AT, nonce)
	if resp.StatusCode != 401 || resp.Header.Get("DPoP-Nonce") == nonce {
		t.Errorf("nonce reused after a success: %d; want a new use_dpop_nonce challenge (rotated)", resp.StatusCode)
	}
	rt := f.post(f.s.Endpoint().TokenURL, func() url.Values { return f.form(nil, "grant_type", "refresh_token", "refresh_token", tr.RT) })
	if rt.status != 200 {
		t.Errorf("refresh: %+v", rt)
	}
	for _, r := range f.s.Requests() {
		if (r.Kind == KindToken || r.Kind == KindPAR) && r.ClientAuth != "" && r.ClientAuth != PrivateKeyJWT {
			t.Errorf("%s request authenticated with %q", r.Kind, r.ClientAuth)
		}
	}
}

// TestFAPI2ProofRules: each proof rule, broken alone at the token endpoint.
func TestFAPI2ProofRules(t *testing.T) {
	cases := []struct {
		name string
		key  string // DPoP key alg; "" = ES256
		opt  proofOpts
		rule string
	}{
		{"typ", "", proofOpts{typ: "jwt"}, "typ"},
		{"alg ES384 not in FAPI 2.0", "ES384", proofOpts{}, "alg"},
		{"alg RS256 not in FAPI 2.0", "RS256", proofOpts{}, "alg"},
		{"htm not exact", "", withClaims(func(c map[string]any) { c["htm"] = "post" }), "htm"},
		{"htu with query", "", withClaims(func(c map[string]any) { c["htu"] = c["htu"].(string) + "?x=1" }), "htu"},
		{"htu upper-case scheme", "", withClaims(func(c map[string]any) { c["htu"] = "HTTP" + strings.TrimPrefix(c["htu"].(string), "http") }), "htu"},
		{"iat 6 minutes old", "", withClaims(func(c map[string]any) { c["iat"] = time.Now().Add(-6 * time.Minute).Unix() }), "iat"},
		{"ath at the token endpoint", "", withToken("some-token"), "ath"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFAPI(t)
			if c.key != "" {
				f.dpop = newClientKey(t, c.key)
			}
			tr := f.post(f.s.Endpoint().TokenURL, func() url.Values { return f.form(nil, "grant_type", "client_credentials") }, c.opt)
			wantRule(t, tr, "invalid_dpop_proof", c.rule)
		})
	}
	t.Run("iat 4 minutes old accepted", func(t *testing.T) {
		f := newFAPI(t)
		old := withClaims(func(c map[string]any) { c["iat"] = time.Now().Add(-4 * time.Minute).Unix() })
		if tr := f.post(f.s.Endpoint().TokenURL, func() url.Values { return f.form(nil, "grant_type", "client_credentials") }, old); tr.status != 200 {
			t.Errorf("got %+v; want 200 (FAPI 2.0 allows iat within 5 minutes)", tr)
		}
	})
	t.Run("private jwk", func(t *testing.T) {
		f := newFAPI(t)
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		proof := rawES256(t, priv, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": ecJWK(priv, true)},
			map[string]any{"jti": randString(16), "htm": "POST", "htu": f.s.Endpoint().TokenURL, "iat": time.Now().Unix()})
		hdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "DPoP": proof}
		resp, b := send(t, "POST", f.s.Endpoint().TokenURL, strings.NewReader(f.form(nil, "grant_type", "client_credentials").Encode()), hdr)
		if resp.StatusCode != 400 || !strings.Contains(string(b), "invalid_dpop_proof") || !strings.Contains(string(b), "jwk") {
			t.Errorf("got %d %s; want invalid_dpop_proof naming jwk", resp.StatusCode, b)
		}
	})
	t.Run("jti reused", func(t *testing.T) {
		f := newFAPI(t)
		tu := f.s.Endpoint().TokenURL
		nonce := post(t, tu, f.dpop, "", f.form(nil, "grant_type", "client_credentials")).header.Get("DPoP-Nonce")
		proof := f.dpop.proof("POST", tu, withNonce(nonce))
		hdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "DPoP": proof}
		if resp, b := send(t, "POST", tu, strings.NewReader(f.form(nil, "grant_type", "client_credentials").Encode()), hdr); resp.StatusCode != 200 {
			t.Fatalf("first use: %d %s", resp.StatusCode, b)
		}
		resp, b := send(t, "POST", tu, strings.NewReader(f.form(nil, "grant_type", "client_credentials").Encode()), hdr)
		if resp.StatusCode != 400 || !strings.Contains(string(b), "jti") {
			t.Errorf("replayed proof: %d %s; want 400 naming jti", resp.StatusCode, b)
		}
	})
}

// TestFAPI2ATH: ath is forbidden at PAR and required at the resource
// server.
func TestFAPI2ATH(t *testing.T) {
	f := newFAPI(t)
	_, challenge := pkce()
	kv := []string{"response_type", "code", "redirect_uri", fapiRedirect, "code_challenge", challenge, "code_challenge_method", "S256"}
	tr := f.post(f.s.PARURL(), func() url.Values { return f.form(nil, kv...) }, withToken("x"))
	wantRule(t, tr, "invalid_dpop_proof", "ath")

	at := f.login().AT
	api := f.s.URL + "/api/x"
	resp, _ := callAPI(t, f.dpop, "GET", api, at, "")
	nonce := resp.Header.Get("DPoP-Nonce")
	hdr := map[string]string{"Authorization": "DPoP " + at, "DPoP": f.dpop.proof("GET", api, withNonce(nonce))}
	resp, _ = send(t, "GET", api, nil, hdr)
	if h := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.Contains(h, "invalid_dpop_proof") || !strings.Contains(h, "ath") {
		t.Errorf("resource request without ath: %d %q; want invalid_dpop_proof naming ath", resp.StatusCode, h)
	}
}

// TestFAPI2AuthorizationRules: PAR, PKCE S256, dpop_jkt and the code's
// key binding, each broken alone.
func TestFAPI2AuthorizationRules(t *testing.T) {
	t.Run("authorization request without PAR", func(t *testing.T) {
		f := newFAPI(t)
		_, challenge := pkce()
		q := form("client_id", "fapi", "response_type", "code", "redirect_uri", fapiRedirect, "code_challenge", challenge, "code_challenge_method", "S256")
		resp, b := send(t, "GET", f.s.Endpoint().AuthURL+"?"+q.Encode(), nil, nil)
		if resp.StatusCode != 400 || !strings.Contains(string(b), "pushed authorization request") {
			t.Errorf("got %d %s; want 400 naming the pushed authorization request", resp.StatusCode, b)
		}
	})
	t.Run("PKCE plain", func(t *testing.T) {
		f := newFAPI(t)
		_, challenge := pkce()
		tr := f.post(f.s.PARURL(), func() url.Values {
			return f.form(nil, "response_type", "code", "redirect_uri", fapiRedirect, "code_challenge", challenge, "code_challenge_method", "plain")
		})
		wantRule(t, tr, "invalid_request", "S256")
	})
	t.Run("dpop_jkt of another key", func(t *testing.T) {
		f := newFAPI(t)
		_, challenge := pkce()
		wantRule(t, f.par(challenge, "dpop_jkt", newClientKey(t, "ES256").jkt), "invalid_dpop_proof", "dpop_jkt")
	})
	t.Run("code redeemed with another key", func(t *testing.T) {
		f := newFAPI(t)
		verifier, challenge := pkce()
		pr := f.par(challenge)
		code, _ := authorize(t, f.s, form("client_id", "fapi", "request_uri", pr.RequestURI))
		f.dpop = newClientKey(t, "EdDSA")
		tr := f.post(f.s.Endpoint().TokenURL, func() url.Values {
			return f.form(nil, "grant_type", "authorization_code", "code", code, "redirect_uri", fapiRedirect, "code_verifier", verifier)
		})
		wantRule(t, tr, "invalid_grant", "dpop_jkt")
	})
}

func TestFAPI2Metadata(t *testing.T) {
	f := newFAPI(t)
	_, b := send(t, "GET", f.s.URL+pathMetadata, nil, nil)
	var md struct {
		Auth     []string `json:"token_endpoint_auth_methods_supported"`
		Algs     []string `json:"dpop_signing_alg_values_supported"`
		Iss      bool     `json:"authorization_response_iss_parameter_supported"`
		PAR      bool     `json:"require_pushed_authorization_requests"`
		Revocate string   `json:"revocation_endpoint"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		t.Fatal(err)
	}
	if strings.Join(md.Auth, " ") != "private_key_jwt" || strings.Join(md.Algs, " ") != "PS256 ES256 EdDSA" || !md.Iss || !md.PAR || md.Revocate != f.s.RevocationURL() {
		t.Errorf("metadata = %s", b)
	}
}
