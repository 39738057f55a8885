package dpoptest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

type tokenResp struct {
	status  int
	header  http.Header
	AT      string `json:"access_token"`
	Type    string `json:"token_type"`
	RT      string `json:"refresh_token"`
	Scope   string `json:"scope"`
	Expires int64  `json:"expires_in"`
	// RequestURI is the request_uri of a PAR response (RFC 9126 §2.2).
	RequestURI string `json:"request_uri"`
	Error      string `json:"error"`
	Desc       string `json:"error_description"`
}

// post sends a form to endpoint with a proof of k (none if k is nil) and
// the given Authorization header.
func post(t *testing.T, endpoint string, k *clientKey, authz string, f url.Values, opts ...proofOpts) tokenResp {
	t.Helper()
	hdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if k != nil {
		hdr["DPoP"] = k.proof("POST", endpoint, opts...)
	}
	if authz != "" {
		hdr["Authorization"] = authz
	}
	resp, b := send(t, "POST", endpoint, strings.NewReader(f.Encode()), hdr)
	var tr tokenResp
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatalf("%s: status %d, body %q: %v", endpoint, resp.StatusCode, b, err)
	}
	tr.status, tr.header = resp.StatusCode, resp.Header
	if tr.Error != "" && resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("error response without Cache-Control: no-store")
	}
	return tr
}

func wantOAuthError(t *testing.T, tr tokenResp, status int, code string) {
	t.Helper()
	if tr.status != status || tr.Error != code {
		t.Errorf("got %d %q (%s); want %d %q", tr.status, tr.Error, tr.Desc, status, code)
	}
}

func pkce() (verifier, challenge string) {
	verifier = randString(32)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorize runs the authorization endpoint and returns the code.
func authorize(t *testing.T, s *Server, q url.Values) (code string, back url.Values) {
	t.Helper()
	resp, b := send(t, "GET", s.URL+pathAuthorize+"?"+q.Encode(), nil, nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d: %s", resp.StatusCode, b)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query().Get("code"), loc.Query()
}

func TestClientCredentials(t *testing.T) {
	s := newTestServer(t, nil)
	k := newClientKey(t, "ES256")
	tu := s.Endpoint().TokenURL
	f := form("grant_type", "client_credentials", "scope", "read write")

	tr := post(t, tu, k, basic("backend", "backend-secret"), f)
	if tr.status != 200 || tr.Type != "DPoP" || tr.Scope != "read write" || tr.RT != "" || tr.Expires != 3600 {
		t.Fatalf("basic: %+v", tr)
	}
	if resp, _ := callAPI(t, k, "GET", s.URL+"/api/x", tr.AT, ""); resp.StatusCode != 200 {
		t.Errorf("token at RS: status %d", resp.StatusCode)
	}
	f2 := form("grant_type", "client_credentials", "client_id", "backend", "client_secret", "backend-secret")
	if tr := post(t, tu, k, "", f2); tr.status != 200 {
		t.Errorf("post: %+v", tr)
	}
	recs := s.Requests()
	if recs[0].ClientAuth != ClientSecretBasic || recs[0].GrantType != "client_credentials" || recs[0].Kind != KindToken || recs[0].Proof.Thumbprint != k.jkt {
		t.Errorf("record 0 = %+v", recs[0])
	}
	if recs[2].ClientAuth != ClientSecretPost {
		t.Errorf("record 2 ClientAuth = %q; want client_secret_post", recs[2].ClientAuth)
	}

	t.Run("wrong secret", func(t *testing.T) {
		tr := post(t, tu, k, basic("backend", "nope"), f)
		wantOAuthError(t, tr, 401, "invalid_client")
		if tr.header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 for Basic without WWW-Authenticate")
		}
	})
	t.Run("two auth methods", func(t *testing.T) {
		wantOAuthError(t, post(t, tu, k, basic("backend", "backend-secret"), f2), 400, "invalid_request")
	})
	t.Run("public client", func(t *testing.T) {
		wantOAuthError(t, post(t, tu, k, "", form("grant_type", "client_credentials", "client_id", "cli")), 400, "unauthorized_client")
	})
	t.Run("no proof", func(t *testing.T) {
		wantOAuthError(t, post(t, tu, nil, basic("backend", "backend-secret"), f), 400, "invalid_dpop_proof")
	})
	t.Run("ath on token request", func(t *testing.T) {
		wantOAuthError(t, post(t, tu, k, basic("backend", "backend-secret"), f, withToken("x")), 400, "invalid_dpop_proof")
	})
	t.Run("proof for other endpoint", func(t *testing.T) {
		hdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": basic("backend", "backend-secret"), "DPoP": k.proof("POST", s.PARURL())}
		resp, _ := send(t, "POST", tu, strings.NewReader(f.Encode()), hdr)
		if resp.StatusCode != 400 {
			t.Errorf("status %d; want 400", resp.StatusCode)
		}
	})
	t.Run("unknown grant", func(t *testing.T) {
		wantOAuthError(t, post(t, tu, k, basic("backend", "backend-secret"), form("grant_type", "password")), 400, "unsupported_grant_type")
	})
}

func TestTokenTypeBearer(t *testing.T) {
	s := newTestServer(t, &Config{TokenType: "Bearer", TokenTTL: time.Minute})
	k := newClientKey(t, "ES256")
	tr := post(t, s.Endpoint().TokenURL, k, basic("backend", "backend-secret"), form("grant_type", "client_credentials"))
	if tr.Type != "Bearer" || tr.Expires != 60 {
		t.Errorf("token_type, expires_in = %q, %d; want Bearer, 60", tr.Type, tr.Expires)
	}
}

func TestTokenNonce(t *testing.T) {
	s := newTestServer(t, &Config{RequireNonce: true})
	k := newClientKey(t, "ES256")
	tu := s.Endpoint().TokenURL
	f := form("grant_type", "client_credentials")
	tr := post(t, tu, k, basic("backend", "backend-secret"), f)
	wantOAuthError(t, tr, 400, "use_dpop_nonce")
	n := tr.header.Get("DPoP-Nonce")
	if n != s.ASNonce() || n == s.RSNonce() {
		t.Fatalf("DPoP-Nonce = %q; want AS nonce %q, not RS nonce %q", n, s.ASNonce(), s.RSNonce())
	}
	// The RS nonce is not accepted by the AS, nor the other way round.
	wantOAuthError(t, post(t, tu, k, basic("backend", "backend-secret"), f, withNonce(s.RSNonce())), 400, "use_dpop_nonce")
	tr = post(t, tu, k, basic("backend", "backend-secret"), f, withNonce(n))
	if tr.status != 200 || tr.header.Get("DPoP-Nonce") != n {
		t.Fatalf("with nonce: %+v", tr)
	}
	resp, _ := callAPI(t, k, "GET", s.URL+"/api/", tr.AT, n)
	wantChallenge(t, resp, "use_dpop_nonce")
	resp, _ = callAPI(t, k, "GET", s.URL+"/api/", tr.AT, resp.Header.Get("DPoP-Nonce"))
	if resp.StatusCode != 200 {
		t.Errorf("RS with RS nonce: status %d", resp.StatusCode)
	}
	recs := s.Requests()
	if len(recs) != 5 || recs[0].Error != "use_dpop_nonce" || recs[0].Proof == nil || recs[2].Nonce != n || recs[3].Error != "use_dpop_nonce" {
		t.Errorf("records = %+v", recs)
	}
}

func TestAuthorizationCode(t *testing.T) {
	s := newTestServer(t, nil)
	k := newClientKey(t, "ES256")
	tu := s.Endpoint().TokenURL
	redirect := "http://127.0.0.1:53127/callback"
	verifier, challenge := pkce()
	q := form("client_id", "cli", "response_type", "code", "redirect_uri", redirect, "scope", "openid read",
		"state", "st8", "code_challenge", challenge, "code_challenge_method", "S256", "dpop_jkt", k.jkt)
	code, back := authorize(t, s, q)
	if code == "" || back.Get("state") != "st8" {
		t.Fatalf("redirect query = %v", back)
	}
	f := form("grant_type", "authorization_code", "code", code, "redirect_uri", redirect, "code_verifier", verifier, "client_id", "cli")
	tr := post(t, tu, k, "", f)
	if tr.status != 200 || tr.RT == "" || tr.Scope != "openid read" {
		t.Fatalf("exchange: %+v", tr)
	}
	if resp, body := callAPI(t, k, "GET", s.URL+"/api/me", tr.AT, ""); !strings.Contains(string(body), `"subject":"alice"`) {
		t.Errorf("RS: %d %s", resp.StatusCode, body)
	}
	wantOAuthError(t, post(t, tu, k, "", f), 400, "invalid_grant") // code reused

	exchange := func(t *testing.T, k *clientKey, q url.Values, edit func(f url.Values)) tokenResp {
		t.Helper()
		code, _ := authorize(t, s, q)
		f := form("grant_type", "authorization_code", "code", code, "redirect_uri", q.Get("redirect_uri"), "code_verifier", verifier, "client_id", "cli")
		if edit != nil {
			edit(f)
		}
		return post(t, tu, k, "", f)
	}
	t.Run("dpop_jkt mismatch", func(t *testing.T) {
		wantOAuthError(t, exchange(t, newClientKey(t, "ES256"), q, nil), 400, "invalid_grant")
	})
	t.Run("wrong verifier", func(t *testing.T) {
		wantOAuthError(t, exchange(t, k, q, func(f url.Values) { f.Set("code_verifier", randString(32)) }), 400, "invalid_grant")
	})
	t.Run("wrong redirect_uri", func(t *testing.T) {
		wantOAuthError(t, exchange(t, k, q, func(f url.Values) { f.Set("redirect_uri", "http://127.0.0.1:1/callback") }), 400, "invalid_grant")
	})
	t.Run("public client with secret", func(t *testing.T) {
		wantOAuthError(t, exchange(t, k, q, func(f url.Values) { f.Set("client_secret", "x") }), 401, "invalid_client")
	})
	t.Run("public client basic without password", func(t *testing.T) {
		code, _ := authorize(t, s, q)
		f := form("grant_type", "authorization_code", "code", code, "redirect_uri", redirect, "code_verifier", verifier)
		if tr := post(t, tu, k, basic("cli", ""), f); tr.status != 200 {
			t.Errorf("exchange: %+v", tr)
		}
	})
	t.Run("no dpop_jkt binds nothing", func(t *testing.T) {
		q2 := url.Values{}
		for key, v := range q {
			q2[key] = v
		}
		q2.Del("dpop_jkt")
		if tr := exchange(t, newClientKey(t, "EdDSA"), q2, nil); tr.status != 200 {
			t.Errorf("exchange: %+v", tr)
		}
	})
	t.Run("authorize errors", func(t *testing.T) {
		bad := url.Values{}
		for key, v := range q {
			bad[key] = v
		}
		bad.Set("code_challenge_method", "plain")
		_, back := authorize(t, s, bad)
		if back.Get("error") != "invalid_request" || back.Get("state") != "st8" || back.Get("code") != "" {
			t.Errorf("plain PKCE: redirect query %v", back)
		}
		bad.Set("redirect_uri", "http://evil.example/callback")
		resp, _ := send(t, "GET", s.URL+pathAuthorize+"?"+bad.Encode(), nil, nil)
		if resp.StatusCode != 400 {
			t.Errorf("unregistered redirect_uri: status %d; want 400 without redirect", resp.StatusCode)
		}
	})
}

func TestRefresh(t *testing.T) {
	s := newTestServer(t, nil)
	k := newClientKey(t, "ES256")
	tu := s.Endpoint().TokenURL
	verifier, challenge := pkce()
	redirect := "http://127.0.0.1:9/callback"
	code, _ := authorize(t, s, form("client_id", "cli", "response_type", "code", "redirect_uri", redirect, "scope", "a b",
		"code_challenge", challenge, "code_challenge_method", "S256"))
	tr := post(t, tu, k, "", form("grant_type", "authorization_code", "code", code, "redirect_uri", redirect, "code_verifier", verifier, "client_id", "cli"))
	if tr.RT == "" {
		t.Fatalf("no refresh token: %+v", tr)
	}
	rf := func(rt string) url.Values {
		return form("grant_type", "refresh_token", "refresh_token", rt, "client_id", "cli")
	}

	wantOAuthError(t, post(t, tu, newClientKey(t, "ES256"), "", rf(tr.RT)), 400, "invalid_grant")
	tr2 := post(t, tu, k, "", rf(tr.RT))
	if tr2.status != 200 || tr2.RT == "" || tr2.RT == tr.RT || tr2.Scope != "a b" {
		t.Fatalf("refresh: %+v", tr2)
	}
	wantOAuthError(t, post(t, tu, k, "", rf(tr.RT)), 400, "invalid_grant") // rotated
	f := rf(tr2.RT)
	f.Set("scope", "a c")
	wantOAuthError(t, post(t, tu, k, "", f), 400, "invalid_scope")
	f.Set("scope", "b")
	if tr3 := post(t, tu, k, "", f); tr3.status != 200 || tr3.Scope != "b" {
		t.Errorf("narrowed refresh: %+v", tr3)
	}
}
