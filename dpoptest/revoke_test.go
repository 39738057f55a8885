package dpoptest

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// codeTokens runs the authorization code grant for the confidential client
// "backend" and returns the token response, with a refresh token.
func codeTokens(t *testing.T, s *Server, k *clientKey, nonce string) tokenResp {
	t.Helper()
	verifier, challenge := pkce()
	redirect := "http://127.0.0.1/callback"
	code, _ := authorize(t, s, form("client_id", "backend", "response_type", "code", "redirect_uri", redirect,
		"code_challenge", challenge, "code_challenge_method", "S256"))
	tr := post(t, s.Endpoint().TokenURL, k, basic("backend", "backend-secret"),
		form("grant_type", "authorization_code", "code", code, "redirect_uri", redirect, "code_verifier", verifier), withNonce(nonce))
	if tr.status != 200 || tr.RT == "" {
		t.Fatalf("code exchange: %+v", tr)
	}
	return tr
}

// postRevoke sends a revocation request (RFC 7009 §2.1), with a proof of k
// unless k is nil.
func postRevoke(t *testing.T, s *Server, k *clientKey, authz string, f url.Values, opts ...proofOpts) (int, []byte, string) {
	t.Helper()
	hdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if k != nil {
		hdr["DPoP"] = k.proof("POST", s.RevocationURL(), opts...)
	}
	if authz != "" {
		hdr["Authorization"] = authz
	}
	resp, b := send(t, "POST", s.RevocationURL(), strings.NewReader(f.Encode()), hdr)
	return resp.StatusCode, b, resp.Header.Get("DPoP-Nonce")
}

func refreshForm(rt string) url.Values {
	return form("grant_type", "refresh_token", "refresh_token", rt)
}

// TestRevokeMethod: Server.Revoke makes the resource server refuse an
// access token with invalid_token and the token endpoint a refresh token.
func TestRevokeMethod(t *testing.T) {
	s := newTestServer(t, nil)
	k := newClientKey(t, "ES256")
	tr := codeTokens(t, s, k, "")
	other := codeTokens(t, s, k, "")
	if resp, _ := callAPI(t, k, "GET", s.URL+"/api/x", tr.AT, ""); resp.StatusCode != 200 {
		t.Fatalf("before Revoke: status %d", resp.StatusCode)
	}
	s.Revoke(tr.AT)
	resp, _ := callAPI(t, k, "GET", s.URL+"/api/x", tr.AT, "")
	wantChallenge(t, resp, "invalid_token")
	if h := resp.Header.Get("WWW-Authenticate"); !strings.Contains(h, "revoked") {
		t.Errorf("WWW-Authenticate = %q; want it to say revoked", h)
	}
	if resp, _ := callAPI(t, k, "GET", s.URL+"/api/x", other.AT, ""); resp.StatusCode != 200 {
		t.Errorf("another token after Revoke: status %d; want 200", resp.StatusCode)
	}
	s.Revoke(tr.RT)
	wantOAuthError(t, post(t, s.Endpoint().TokenURL, k, basic("backend", "backend-secret"), refreshForm(tr.RT)), 400, "invalid_grant")
	s.Revoke("not a token") // ignored
	if tr := post(t, s.Endpoint().TokenURL, k, basic("backend", "backend-secret"), refreshForm(other.RT)); tr.status != 200 {
		t.Errorf("another refresh token after Revoke: %+v", tr)
	}
}

func TestRevocationEndpoint(t *testing.T) {
	s := newTestServer(t, nil)
	k := newClientKey(t, "ES256")
	auth := basic("backend", "backend-secret")

	tr := codeTokens(t, s, k, "")
	for _, f := range []url.Values{
		form("token", tr.AT, "token_type_hint", "access_token"),
		form("token", tr.RT, "token_type_hint", "access_token"), // a wrong hint: the server searches on (§2.1)
	} {
		if status, b, _ := postRevoke(t, s, nil, auth, f); status != 200 || len(b) != 0 {
			t.Errorf("revoke %s: %d %q; want 200 and no body", f.Get("token_type_hint"), status, b)
		}
	}
	resp, _ := callAPI(t, k, "GET", s.URL+"/api/x", tr.AT, "")
	wantChallenge(t, resp, "invalid_token")
	wantOAuthError(t, post(t, s.Endpoint().TokenURL, k, auth, refreshForm(tr.RT)), 400, "invalid_grant")

	tr = codeTokens(t, s, k, "")
	cases := []struct {
		name   string
		k      *clientKey
		authz  string
		f      url.Values
		opts   []proofOpts
		status int
		code   string
	}{
		{"unknown token", nil, auth, form("token", "nope"), nil, 200, ""},
		{"no token", nil, auth, form(), nil, 400, "invalid_request"},
		{"no client authentication", nil, "", form("token", tr.RT), nil, 401, "invalid_client"},
		{"wrong secret", nil, basic("backend", "x"), form("token", tr.RT), nil, 401, "invalid_client"},
		{"another client's refresh token", nil, "", form("token", tr.RT, "client_id", "cli"), nil, 400, "unauthorized_client"},
		{"another client's access token", nil, "", form("token", tr.AT, "client_id", "cli"), nil, 400, "unauthorized_client"},
		{"invalid proof", k, auth, form("token", tr.RT), []proofOpts{withToken(tr.AT)}, 400, "invalid_dpop_proof"},
		{"valid proof", k, auth, form("token", tr.RT, "token_type_hint", "refresh_token"), nil, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, b, _ := postRevoke(t, s, c.k, c.authz, c.f, c.opts...)
			var e struct{ Error string }
			json.Unmarshal(b, &e)
			if status != c.status || e.Error != c.code {
				t.Errorf("got %d %q (%s); want %d %q", status, e.Error, b, c.status, c.code)
			}
		})
	}
	wantOAuthError(t, post(t, s.Endpoint().TokenURL, k, auth, refreshForm(tr.RT)), 400, "invalid_grant")
	if resp, _ := callAPI(t, k, "GET", s.URL+"/api/x", tr.AT, ""); resp.StatusCode != 200 {
		t.Errorf("access token after its refresh token was revoked: status %d; want 200 (RFC 7009 §2.1 leaves it open)", resp.StatusCode)
	}
	for _, r := range s.Requests() {
		if r.Path == "/revoke" && r.Kind != KindRevoke {
			t.Errorf("record of %s: kind %q; want %q", r.Path, r.Kind, KindRevoke)
		}
	}
}

// TestRevocationNonce: the revocation endpoint applies the authorization
// server's nonce policy to a proof, and needs none without a proof.
func TestRevocationNonce(t *testing.T) {
	s := newTestServer(t, &Config{RequireNonce: true})
	k := newClientKey(t, "ES256")
	auth := basic("backend", "backend-secret")
	tr := codeTokens(t, s, k, s.ASNonce())
	status, _, nonce := postRevoke(t, s, k, auth, form("token", tr.AT))
	if status != 400 || nonce == "" {
		t.Fatalf("proof without nonce: %d, DPoP-Nonce %q; want 400 with a nonce", status, nonce)
	}
	if status, b, _ := postRevoke(t, s, k, auth, form("token", tr.AT), withNonce(nonce)); status != 200 {
		t.Errorf("proof with nonce: %d %s", status, b)
	}
	if status, b, _ := postRevoke(t, s, nil, auth, form("token", tr.RT)); status != 200 {
		t.Errorf("without proof: %d %s", status, b)
	}
}
