package dpop_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
)

func TestDiscover(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{Algs: []string{"ES256", "PS256"}})
	md, err := dpop.Discover(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if md.TokenEndpoint != srv.Endpoint().TokenURL || md.PushedAuthorizationRequestEndpoint != srv.PARURL() {
		t.Errorf("metadata %+v does not match the server", md)
	}
	if err := md.CheckSigner(newSigner(t)); err != nil {
		t.Errorf("CheckSigner(ES256) = %v", err)
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	es, _ := dpop.NewSigner(ed, nil)
	if err := md.CheckSigner(es); err == nil || !strings.Contains(err.Error(), `"EdDSA"`) {
		t.Errorf("CheckSigner(EdDSA) = %v; want an error naming EdDSA", err)
	}
	if _, err := dpop.Discover(context.Background(), srv.URL+"/other"); err == nil {
		t.Error("Discover with a wrong issuer succeeded")
	}
}

func TestDiscoverFallback(t *testing.T) {
	var issuer string
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": issuer, "token_endpoint": issuer + "/token", "dpop_signing_alg_values_supported": []string{"ES256"}})
	})
	mux.HandleFunc("/broken/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "{")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	issuer = srv.URL
	md, err := dpop.Discover(context.Background(), issuer)
	if err != nil {
		t.Fatal(err)
	}
	if md.TokenEndpoint != issuer+"/token" {
		t.Errorf("token endpoint %q; want %q", md.TokenEndpoint, issuer+"/token")
	}
	if _, err := dpop.Discover(context.Background(), issuer+"/broken"); err == nil || !strings.HasPrefix(err.Error(), "dpop: metadata") {
		t.Errorf("broken metadata: err = %v; want a dpop: metadata error", err)
	}
	if _, err := dpop.Discover(context.Background(), "ftp://x"); err == nil {
		t.Error("Discover(ftp://x) succeeded")
	}
}

func TestDiscoverRequiresHTTPS(t *testing.T) {
	_, err := dpop.Discover(context.Background(), "http://as.example.com")
	if err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("Discover(http non-loopback) = %v; want an error asking for https", err)
	}
}
