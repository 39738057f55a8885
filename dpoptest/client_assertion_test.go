package dpoptest

import (
	"net/url"
	"testing"
	"time"
)

// TestFAPI2ClientAuth: private_key_jwt only, and each assertion rule of
// RFC 7523 §3 broken alone.
func TestFAPI2ClientAuth(t *testing.T) {
	cc := func(f *fapiClient, edit func(c map[string]any)) tokenResp {
		return f.post(f.s.Endpoint().TokenURL, func() url.Values { return f.form(edit, "grant_type", "client_credentials") })
	}
	cases := []struct {
		name string
		edit func(c map[string]any)
		rule string
	}{
		{"iss not the client", func(c map[string]any) { c["iss"] = "other" }, "iss"},
		{"sub not the client", func(c map[string]any) { c["sub"] = "other" }, "sub"},
		{"aud the token endpoint", func(c map[string]any) { c["aud"] = c["aud"].(string) + "/token" }, "aud"},
		{"aud an array", func(c map[string]any) { c["aud"] = []string{c["aud"].(string)} }, "aud"},
		{"exp missing", func(c map[string]any) { delete(c, "exp") }, "exp"},
		{"exp passed", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }, "exp"},
		{"exp far", func(c map[string]any) { c["exp"] = time.Now().Add(time.Hour).Unix() }, "exp"},
		{"jti missing", func(c map[string]any) { delete(c, "jti") }, "jti"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantRule(t, cc(newFAPI(t), c.edit), "invalid_client", c.rule)
		})
	}
	t.Run("signed by another key", func(t *testing.T) {
		f := newFAPI(t)
		tr := f.post(f.s.Endpoint().TokenURL, func() url.Values {
			v := f.form(nil, "grant_type", "client_credentials")
			v.Set("client_assertion", f.assertion(newClientKey(t, "ES256"), nil))
			return v
		})
		wantRule(t, tr, "invalid_client", "signature")
	})
	t.Run("assertion reused on the nonce retry", func(t *testing.T) {
		f := newFAPI(t)
		v := f.form(nil, "grant_type", "client_credentials")
		first := post(t, f.s.Endpoint().TokenURL, f.dpop, "", v)
		wantRule(t, first, "use_dpop_nonce", "nonce")
		tr := post(t, f.s.Endpoint().TokenURL, f.dpop, "", v, withNonce(first.header.Get("DPoP-Nonce")))
		wantRule(t, tr, "invalid_client", "jti")
	})
	t.Run("client_secret_basic", func(t *testing.T) {
		auth := newClientKey(t, "ES256")
		s := newTestServer(t, &Config{FAPI2: true, Clients: []Client{{ID: "both", Secret: "s", PublicKey: auth.priv.Public()}}})
		k := newClientKey(t, "ES256")
		tu := s.Endpoint().TokenURL
		cc := form("grant_type", "client_credentials")
		first := post(t, tu, k, basic("both", "s"), cc)
		tr := post(t, tu, k, basic("both", "s"), cc, withNonce(first.header.Get("DPoP-Nonce")))
		wantRule(t, tr, "invalid_client", "private_key_jwt")
	})
}

// TestPrivateKeyJWT: outside FAPI 2.0 mode, a client registered with a key
// authenticates with an assertion whose aud may also be the token endpoint
// (RFC 7523 §3), and cannot fall back to no authentication.
func TestPrivateKeyJWT(t *testing.T) {
	auth := newClientKey(t, "EdDSA")
	s := newTestServer(t, &Config{Clients: []Client{{ID: "fapi", PublicKey: auth.priv.Public()}}})
	f := &fapiClient{t: t, s: s, dpop: newClientKey(t, "ES384"), auth: auth}
	for _, aud := range []any{s.URL, s.Endpoint().TokenURL, []string{s.URL}} {
		tr := post(t, s.Endpoint().TokenURL, f.dpop, "", f.form(func(c map[string]any) { c["aud"] = aud }, "grant_type", "client_credentials"))
		if tr.status != 200 {
			t.Errorf("aud %v: %+v", aud, tr)
		}
	}
	recs := s.Requests()
	if got := recs[len(recs)-1].ClientAuth; got != PrivateKeyJWT {
		t.Errorf("ClientAuth = %q; want %q", got, PrivateKeyJWT)
	}
	wantOAuthError(t, post(t, s.Endpoint().TokenURL, f.dpop, "", form("grant_type", "client_credentials", "client_id", "fapi")), 401, "invalid_client")
	tr := post(t, s.Endpoint().TokenURL, f.dpop, "", f.form(func(c map[string]any) { c["aud"] = "https://elsewhere.example" }, "grant_type", "client_credentials"))
	wantRule(t, tr, "invalid_client", "aud")
}
