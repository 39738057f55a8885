package dpop_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"github.com/dpopkit/dpop/keystore"
	"golang.org/x/oauth2"
)

func TestChooseAlg(t *testing.T) {
	for _, tc := range []struct {
		name     string
		accepted [][]string
		want     string // "" means an error
	}{
		{"nothing said", nil, "ES256"},
		{"ES256 among others", [][]string{{"RS256", "PS256", "ES256", "EdDSA"}}, "ES256"},
		{"EdDSA before RSA", [][]string{{"RS256", "PS256", "EdDSA"}}, "EdDSA"},
		{"ES384 before RSA", [][]string{{"PS256", "ES384"}}, "ES384"},
		{"RS256 only", [][]string{{"RS256"}}, "RS256"},
		{"challenge narrows metadata", [][]string{{"ES256", "EdDSA", "PS256"}, {"EdDSA", "PS256"}}, "EdDSA"},
		{"empty challenge list", [][]string{{"PS256"}, nil}, "PS256"},
		{"unknown algs only", [][]string{{"ES256K", "Ed448", "HS256"}}, ""},
		{"disjoint lists", [][]string{{"ES256"}, {"EdDSA"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dpop.ChooseAlg(tc.accepted...)
			if tc.want == "" {
				if err == nil || !strings.HasPrefix(err.Error(), "dpop: ") {
					t.Errorf("ChooseAlg(%q) = %q, %v; want a dpop: error", tc.accepted, got, err)
				}
				return
			}
			if got != tc.want || err != nil {
				t.Errorf("ChooseAlg(%q) = %q, %v; want %q", tc.accepted, got, err, tc.want)
			}
		})
	}
}

// TestChooseAlgMakesKeys checks that every algorithm ChooseAlg can return
// gets a key from keystore.LoadOrCreate and a signer of that algorithm.
func TestChooseAlgMakesKeys(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "ES384", "ES512", "PS256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			got, err := dpop.ChooseAlg([]string{alg})
			if got != alg || err != nil {
				t.Fatalf("ChooseAlg([%s]) = %q, %v", alg, got, err)
			}
			key, err := keystore.LoadOrCreate(&keystore.MemoryStore{}, "k", &keystore.KeyOptions{Alg: got})
			if err != nil {
				t.Fatal(err)
			}
			s, err := dpop.NewSigner(key, &dpop.SignerOptions{Alg: got})
			if err != nil || s.Alg() != alg {
				t.Fatalf("NewSigner(key for %s) = %v; want alg %s", alg, err, alg)
			}
		})
	}
}

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

// TestChooseAlgServerStrings: the algs a server sent appear in the error
// escaped and cut short.
func TestChooseAlgServerStrings(t *testing.T) {
	_, err := dpop.ChooseAlg([]string{hostileText, "HS256"}, []string{"RS256\x1b[0m"})
	if err == nil {
		t.Fatal("ChooseAlg: no error")
	}
	checkCleanText(t, "error text", err.Error(), 2<<10)
}
