package dpop_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestTokenRequestsFollowNoRedirect: a token, PAR or device authorization
// endpoint that answers 307 to another port and scheme (https → http on
// the same host name, where net/http would resend the body and the Basic
// header) gets an error naming the Location, and the other server receives
// nothing (issue 10 #1, RFC 6749 §3.2).
func TestTokenRequestsFollowNoRedirect(t *testing.T) {
	target := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"a","token_type":"DPoP","device_code":"d","user_code":"u","verification_uri":"https://x/","request_uri":"urn:x"}`)
	})
	as := newHostile(t, true, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	ctx := withClient(as.Client())
	signer := newSigner(t)
	for styleName, style := range map[string]oauth2.AuthStyle{"Basic": oauth2.AuthStyleInHeader, "InParams": oauth2.AuthStyleInParams} {
		cfg := &dpop.Config{
			OAuth2: &oauth2.Config{ClientID: "c", ClientSecret: clientSecret, Endpoint: oauth2.Endpoint{
				AuthURL: as.URL + "/authorize", TokenURL: as.URL + "/token", DeviceAuthURL: as.URL + "/device", AuthStyle: style,
			}},
			Signer: signer,
			PARURL: as.URL + "/par",
		}
		cc := &dpop.ClientCredentials{
			OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: clientSecret, TokenURL: as.URL + "/token", AuthStyle: style},
			Signer: signer,
		}
		tests := []struct {
			name, path string
			call       func() error
		}{
			{"Exchange", "/token", func() error {
				_, err := cfg.Exchange(ctx, codeSecret, oauth2.VerifierOption(verifierSecret))
				return err
			}},
			{"refresh", "/token", func() error {
				expired := &oauth2.Token{AccessToken: accessSecret, RefreshToken: refreshSecret, Expiry: time.Now().Add(-time.Hour)}
				_, err := cfg.TokenSource(ctx, expired).Token()
				return err
			}},
			{"ClientCredentials", "/token", func() error { _, err := cc.Token(ctx); return err }},
			{"PushAuthCodeURL", "/par", func() error { _, err := cfg.PushAuthCodeURL(ctx, "state"); return err }},
			{"DeviceAuth", "/device", func() error { _, err := cfg.DeviceAuth(ctx); return err }},
			{"DeviceAccessToken", "/token", func() error {
				da := &oauth2.DeviceAuthResponse{DeviceCode: "d", Interval: 1, Expiry: time.Now().Add(time.Minute)}
				_, err := cfg.DeviceAccessToken(ctx, da)
				return err
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name+"/"+styleName, func(t *testing.T) {
				before := target.requests()
				err := tt.call()
				if got := target.requests() - before; got != 0 {
					t.Errorf("redirect target received %d requests; want 0", got)
				}
				if err == nil || !strings.Contains(err.Error(), target.URL+tt.path) {
					t.Errorf("err = %v; want an error naming the Location %s", err, target.URL+tt.path)
				}
			})
		}
	}
}

// TestDiscoverRefusesRedirects: a metadata request over https is not
// followed to plain http, nor to another https origin; a redirect within
// the origin is followed (issue 10 #2).
func TestDiscoverRefusesRedirects(t *testing.T) {
	var issuer string
	metadata := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"issuer":"`+issuer+`","token_endpoint":"`+issuer+`/token"}`)
	}
	plain := newHostile(t, false, metadata)
	other := newHostile(t, true, metadata)
	var location string
	as := newHostile(t, true, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			metadata(w, r)
			return
		}
		http.Redirect(w, r, location, http.StatusFound)
	})
	issuer = as.URL
	// One client trusts both TLS servers' certificates.
	hc := as.Client()
	hc.Transport.(*http.Transport).TLSClientConfig.RootCAs.AddCert(other.Certificate())
	ctx := withClient(hc)
	for _, tt := range []struct {
		name   string
		target *hostileServer
	}{
		{"https to http", plain},
		{"another https origin", other},
	} {
		t.Run(tt.name, func(t *testing.T) {
			location = tt.target.URL + "/.well-known/oauth-authorization-server"
			m, err := dpop.Discover(ctx, issuer)
			if err == nil || !strings.Contains(err.Error(), tt.target.URL) {
				t.Errorf("Discover = %+v, %v; want an error naming %s", m, err, tt.target.URL)
			}
			if n := tt.target.requests(); n != 0 {
				t.Errorf("redirect target received %d requests; want 0", n)
			}
		})
	}
	t.Run("same origin", func(t *testing.T) {
		location = as.URL + "/moved"
		if m, err := dpop.Discover(ctx, issuer); err != nil || m.TokenEndpoint != issuer+"/token" {
			t.Errorf("Discover = %+v, %v; want the document behind the redirect", m, err)
		}
	})
}

// TestDiscoverRefusesPlainEndpoints: every endpoint of the metadata keeps
// the issuer's rule, https or loopback (issue 10 #2).
func TestDiscoverRefusesPlainEndpoints(t *testing.T) {
	var doc string
	as := newHostile(t, true, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, doc)
	})
	ctx := withClient(as.Client())
	good := as.URL + "/x"
	for _, field := range []string{
		"token_endpoint", "pushed_authorization_request_endpoint", "device_authorization_endpoint",
		"revocation_endpoint", "jwks_uri", "authorization_endpoint",
	} {
		t.Run(field, func(t *testing.T) {
			members := map[string]string{"token_endpoint": good}
			members[field] = "http://as.example/" + field
			var b strings.Builder
			b.WriteString(`{"issuer":"` + as.URL + `"`)
			for k, v := range members {
				b.WriteString(`,"` + k + `":"` + v + `"`)
			}
			b.WriteString("}")
			doc = b.String()
			m, err := dpop.Discover(ctx, as.URL)
			if err == nil || !strings.Contains(err.Error(), field) {
				t.Errorf("Discover = %+v, %v; want an error naming %s", m, err, field)
			}
		})
	}
}

// TestRedirectBetweenZones: two IPv6 link-local addresses in different
// zones are different servers, so a redirect from one to the other does
// not carry the access token (issue 10 #5). The Base records requests
// instead of dialing link-local addresses.
func TestRedirectBetweenZones(t *testing.T) {
	var mu sync.Mutex
	var seen []*http.Request
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		resp := &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}
		if r.URL.Path == "/start" {
			resp.StatusCode = http.StatusTemporaryRedirect
			resp.Header.Set("Location", "http://[fe80::1%25b]:8080/next")
		}
		return resp, nil
	})
	hc := &http.Client{Transport: &dpop.Transport{
		Base:   base,
		Signer: newSigner(t),
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessSecret, TokenType: "DPoP"}),
	}}
	resp, err := hc.Get("http://[fe80::1%25a]:8080/start")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(seen) != 2 {
		t.Fatalf("Base saw %d requests; want 2", len(seen))
	}
	if got := seen[0].Header.Get("Authorization"); got != "DPoP "+accessSecret {
		t.Errorf("first hop Authorization = %q; want the token", got)
	}
	if got := seen[1].Header.Get("Authorization"); got != "" {
		t.Errorf("hop to another zone carries Authorization %q; want none", got)
	}
}
