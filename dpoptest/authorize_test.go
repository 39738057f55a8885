package dpoptest

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

func TestPAR(t *testing.T) {
	s := newTestServer(t, &Config{RequireNonce: true})
	k := newClientKey(t, "ES256")
	verifier, challenge := pkce()
	redirect := "http://127.0.0.1/callback"
	pf := form("response_type", "code", "redirect_uri", redirect, "code_challenge", challenge, "code_challenge_method", "S256", "state", "s1")

	// The PAR endpoint applies the AS nonce policy to a proof.
	tr := post(t, s.PARURL(), k, basic("backend", "backend-secret"), pf)
	wantOAuthError(t, tr, 400, "use_dpop_nonce")
	nonce := tr.header.Get("DPoP-Nonce")
	bad := form("dpop_jkt", newClientKey(t, "ES256").jkt)
	for key, v := range pf {
		bad[key] = v
	}
	wantOAuthError(t, post(t, s.PARURL(), k, basic("backend", "backend-secret"), bad, withNonce(nonce)), 400, "invalid_dpop_proof")

	var par struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int    `json:"expires_in"`
	}
	hdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": basic("backend", "backend-secret"),
		"DPoP": k.proof("POST", s.PARURL(), withNonce(nonce))}
	resp, b := send(t, "POST", s.PARURL(), strings.NewReader(pf.Encode()), hdr)
	json.Unmarshal(b, &par)
	if resp.StatusCode != 201 || !strings.HasPrefix(par.RequestURI, "urn:ietf:params:oauth:request_uri:") || par.ExpiresIn != 60 {
		t.Fatalf("PAR: %d %s", resp.StatusCode, b)
	}
	code, back := authorize(t, s, form("client_id", "backend", "request_uri", par.RequestURI))
	if back.Get("state") != "s1" {
		t.Errorf("state = %q; want s1", back.Get("state"))
	}
	if resp, _ := send(t, "GET", s.URL+pathAuthorize+"?"+form("client_id", "backend", "request_uri", par.RequestURI).Encode(), nil, nil); resp.StatusCode != 400 {
		t.Errorf("request_uri reused: status %d; want 400", resp.StatusCode)
	}
	f := form("grant_type", "authorization_code", "code", code, "redirect_uri", redirect, "code_verifier", verifier)
	// Another key may not redeem a code bound through the PAR proof.
	other := newClientKey(t, "ES256")
	wantOAuthError(t, post(t, s.Endpoint().TokenURL, other, basic("backend", "backend-secret"), f, withNonce(nonce)), 400, "invalid_grant")

	code, _ = func() (string, url.Values) {
		hdr["DPoP"] = k.proof("POST", s.PARURL(), withNonce(nonce))
		_, b := send(t, "POST", s.PARURL(), strings.NewReader(pf.Encode()), hdr)
		json.Unmarshal(b, &par)
		return authorize(t, s, form("client_id", "backend", "request_uri", par.RequestURI))
	}()
	f.Set("code", code)
	tr = post(t, s.Endpoint().TokenURL, k, basic("backend", "backend-secret"), f, withNonce(nonce))
	if tr.status != 200 || tr.RT == "" {
		t.Fatalf("exchange: %+v", tr)
	}
	// A confidential client's refresh token is bound to the client, not the key.
	rf := form("grant_type", "refresh_token", "refresh_token", tr.RT)
	if tr := post(t, s.Endpoint().TokenURL, other, basic("backend", "backend-secret"), rf, withNonce(nonce)); tr.status != 200 {
		t.Errorf("confidential refresh with a new key: %+v", tr)
	}
}
