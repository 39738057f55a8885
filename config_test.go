package dpop_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func TestAuthCodePKCE(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true})
	s := newSigner(t)
	cfg := publicConfig(srv, s)
	if u := cfg.AuthCodeURL("x"); !strings.Contains(u, "dpop_jkt="+s.Thumbprint()) {
		t.Errorf("AuthCodeURL %q has no dpop_jkt=%s", u, s.Thumbprint())
	}
	tok, err := login(t, cfg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token")
	}
	checkClientAuth(t, srv, dpoptest.ClientAuthNone)
	got := getAPI(t, cfg.Client(context.Background(), tok), srv.URL+"/api/me")
	if got.Subject != "alice" || got.JKT != s.Thumbprint() {
		t.Errorf("resource server saw %+v; want alice bound to %s", got, s.Thumbprint())
	}

	t.Run("dpop_jkt enforced", func(t *testing.T) {
		other := publicConfig(srv, newSigner(t))
		_, err := login(t, cfg, other)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Fatalf("exchange with another key: %v; want invalid_grant", err)
		}
		if !strings.HasPrefix(err.Error(), "dpop: ") {
			t.Errorf("error %q lacks the dpop: prefix", err)
		}
	})
}

func TestRefresh(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true})
	s := newSigner(t)
	cfg := publicConfig(srv, s)
	tok, err := login(t, cfg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)

	t.Run("same key, one refresh for concurrent callers", func(t *testing.T) {
		ts := cfg.TokenSource(context.Background(), &expired)
		var wg sync.WaitGroup
		toks := make([]*oauth2.Token, 16)
		for i := range toks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tk, err := ts.Token()
				if err != nil {
					t.Error(err)
					return
				}
				toks[i] = tk
			}()
		}
		wg.Wait()
		for _, tk := range toks {
			if tk == nil || tk.AccessToken == tok.AccessToken || tk.AccessToken != toks[0].AccessToken {
				t.Fatalf("callers got different or stale tokens")
			}
		}
		n := 0
		for _, r := range srv.Requests() {
			if r.GrantType == "refresh_token" && r.Status == 200 {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d successful refreshes; want 1", n)
		}
		tok = toks[0]
	})
	t.Run("another key", func(t *testing.T) {
		expired := *tok
		expired.Expiry = time.Now().Add(-time.Minute)
		_, err := publicConfig(srv, newSigner(t)).TokenSource(context.Background(), &expired).Token()
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Errorf("refresh with another key: %v; want invalid_grant", err)
		}
	})
}

// TestConfigZeroSigner: Exchange with a Signer not made by NewSigner
// returns an error naming the Signer, and sends nothing.
func TestConfigZeroSigner(t *testing.T) {
	as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"at","token_type":"DPoP"}`)
	})
	cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: as.URL + "/token"}}, Signer: new(dpop.Signer)}
	var err error
	if p := noPanic(func() { _, err = cfg.Exchange(context.Background(), "code") }); p != nil {
		t.Fatalf("panic: %v", p)
	}
	if err == nil || !strings.Contains(err.Error(), "Signer") || as.requests() != 0 {
		t.Errorf("Exchange = %v after %d requests; want an error naming Signer after none", err, as.requests())
	}
}

// TestAuthCodeURLPanicNamesField: AuthCodeURL of a Config without OAuth2
// or without a usable Signer panics with a message naming the field, never
// with a nil dereference, and never sends an empty dpop_jkt.
func TestAuthCodeURLPanicNamesField(t *testing.T) {
	o := &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{AuthURL: "https://as.example/authorize"}}
	tests := []struct {
		name string
		cfg  *dpop.Config
		want string
	}{
		{"zero Config", &dpop.Config{}, "OAuth2"},
		{"no Signer", &dpop.Config{OAuth2: o}, "Signer"},
		{"zero Signer", &dpop.Config{OAuth2: o, Signer: new(dpop.Signer)}, "Signer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u string
			p := noPanic(func() { u = tt.cfg.AuthCodeURL("state") })
			msg := fmt.Sprint(p)
			if p == nil || !strings.Contains(msg, tt.want) || strings.Contains(msg, "nil pointer") {
				t.Errorf("AuthCodeURL = %q, panic %v; want a panic naming %s", u, p, tt.want)
			}
		})
	}
}

// TestNoRefreshToken: the source of an expired token that has no refresh
// token gives ErrNoRefreshToken.
func TestNoRefreshToken(t *testing.T) {
	srv := newServer(t, nil)
	cfg := publicConfig(srv, newSigner(t))
	expired := &oauth2.Token{AccessToken: "a", TokenType: "DPoP", Expiry: time.Now().Add(-time.Minute)}
	if _, err := cfg.TokenSource(context.Background(), expired).Token(); !errors.Is(err, dpop.ErrNoRefreshToken) {
		t.Errorf("err = %v; want ErrNoRefreshToken", err)
	}
}

// TestNilContext: every call that takes a context refuses a nil one with
// an error naming it (net/http refuses it too), instead of panicking;
// the clients, which have no error result, fail their requests so, and
// send nothing.
func TestNilContext(t *testing.T) {
	as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"at","token_type":"DPoP","expires_in":60}`)
	})
	s := newSigner(t)
	cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{AuthURL: as.URL + "/auth",
		TokenURL: as.URL + "/token", DeviceAuthURL: as.URL + "/device"}}, Signer: s, PARURL: as.URL + "/par", RevocationURL: as.URL + "/revoke"}
	cc := &dpop.ClientCredentials{OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: as.URL + "/token"}, Signer: s}
	tok := &oauth2.Token{AccessToken: "at", TokenType: "DPoP", RefreshToken: "rt", Expiry: time.Now().Add(time.Hour)}
	var nilCtx context.Context
	get := func(c *http.Client) error {
		resp, err := c.Get(as.URL + "/api")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for _, tt := range []struct {
		name string
		call func() error
	}{
		{"Config.Exchange", func() error { _, err := cfg.Exchange(nilCtx, "code"); return err }},
		{"Config.PushAuthCodeURL", func() error { _, err := cfg.PushAuthCodeURL(nilCtx, "st"); return err }},
		{"Config.DeviceAuth", func() error { _, err := cfg.DeviceAuth(nilCtx); return err }},
		{"Config.DeviceAccessToken", func() error {
			_, err := cfg.DeviceAccessToken(nilCtx, &oauth2.DeviceAuthResponse{DeviceCode: "dc", Expiry: time.Now().Add(time.Minute)})
			return err
		}},
		{"Config.Revoke", func() error { return cfg.Revoke(nilCtx, "rt", "") }},
		{"Config.TokenSource", func() error { _, err := cfg.TokenSource(nilCtx, tok).Token(); return err }},
		{"Config.TokenSource's TokenContext", func() error {
			_, err := cfg.TokenSource(context.Background(), tok).TokenContext(nilCtx)
			return err
		}},
		{"Config.Client", func() error { return get(cfg.Client(nilCtx, tok)) }},
		{"ClientCredentials.Token", func() error { _, err := cc.Token(nilCtx); return err }},
		{"ClientCredentials.TokenSource", func() error { _, err := cc.TokenSource(nilCtx).Token(); return err }},
		{"ClientCredentials.Client", func() error { return get(cc.Client(nilCtx)) }},
		{"NewClient", func() error { return get(dpop.NewClient(nilCtx, oauth2.StaticTokenSource(tok), s)) }},
		{"Discover", func() error { _, err := dpop.Discover(nilCtx, as.URL); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := as.requests()
			var err error
			if r := noPanic(func() { err = tt.call() }); r != nil {
				t.Fatalf("panicked: %v", r)
			}
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), "nil context") && !strings.Contains(err.Error(), "context is nil") {
				t.Errorf("err = %v; want one naming the nil context", err)
			}
			if n := as.requests() - before; n != 0 {
				t.Errorf("%d requests sent; want 0", n)
			}
		})
	}
}
