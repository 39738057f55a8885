package dpop_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"github.com/dpopkit/dpop/keystore"
	"golang.org/x/oauth2"
)

// TestNewClient loads a token as a program would, from a store, and calls
// dpoptest's resource server with NewClient: the token and a proof of the
// same key go out, and the server's nonce challenge is answered.
func TestNewClient(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true})
	s := newSigner(t)
	cfg := publicConfig(srv, s)
	tok, err := login(t, cfg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := &keystore.MemoryStore{}
	if err := keystore.SaveToken(store, "tok", tok, s.Thumbprint()); err != nil {
		t.Fatal(err)
	}
	loaded, err := keystore.LoadToken(store, "tok", s.Thumbprint())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: 10 * time.Second})
	src := keystore.SavingTokenSource(store, "tok", s.Thumbprint(), cfg.TokenSource(ctx, loaded))
	got := getAPI(t, dpop.NewClient(ctx, src, s), srv.URL+"/api/me")
	if got.Subject != "alice" || got.JKT != s.Thumbprint() {
		t.Errorf("resource server saw %+v; want alice bound to %s", got, s.Thumbprint())
	}

	t.Run("another key", func(t *testing.T) {
		c := dpop.NewClient(ctx, src, newSigner(t))
		resp, err := c.Get(srv.URL + "/api/me")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d with a proof of another key; want 401", resp.StatusCode)
		}
	})
}
