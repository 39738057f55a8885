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
	"time"

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

// TestDiscoverNotMetadata: a web page where the metadata should be (a
// wrong issuer, a proxy's page) is named as such in the error.
func TestDiscoverNotMetadata(t *testing.T) {
	srv := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>Welcome</html>")
	})
	_, err := dpop.Discover(context.Background(), srv.URL)
	if err == nil || !strings.Contains(err.Error(), "text/html") || !strings.Contains(err.Error(), "not") {
		t.Errorf("Discover = %v; want an error saying the answer is a text/html page, not metadata", err)
	}
}

// TestDiscoverNotFoundBody: a 404 at the RFC 8414 location is not read:
// its body, however slow, does not hold discovery from the OpenID
// location.
func TestDiscoverNotFoundBody(t *testing.T) {
	stop := make(chan struct{})
	var as *httptest.Server
	as = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/openid-configuration" {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"issuer": as.URL, "token_endpoint": as.URL + "/token"})
			return
		}
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "<html>")
		w.(http.Flusher).Flush()
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(as.Close)
	t.Cleanup(func() { close(stop) }) // before the server closes
	errc := make(chan error, 1)
	go func() {
		_, err := dpop.Discover(context.Background(), as.URL)
		errc <- err
	}()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Discover = %v", err)
		}
	case <-time.After(maxWait):
		t.Fatalf("Discover did not return within %v", maxWait)
	}
}

// TestMetadataNil: the methods of a nil *Metadata that have an error
// result return one naming it.
func TestMetadataNil(t *testing.T) {
	var md *dpop.Metadata
	var err error
	if r := noPanic(func() { err = md.CheckSigner(newSigner(t)) }); r != nil || err == nil || !strings.Contains(err.Error(), "Metadata is nil") {
		t.Errorf("CheckSigner on a nil Metadata = %v (panic %v); want an error naming the nil Metadata", err, r)
	}
}

// TestDiscoverShownEndpoints: an endpoint a person may be shown (the
// authorization endpoint starts the URL a CLI prints) with a bidirectional
// control or another non-printing character is refused, naming it.
func TestDiscoverShownEndpoints(t *testing.T) {
	for _, tt := range []struct{ member, path string }{
		{"authorization_endpoint", "/\u202eauth"},
		{"token_endpoint", "/tok\u200ben"},
		{"revocation_endpoint", "/" + strings.Repeat("r", 4096)},
	} {
		t.Run(tt.member, func(t *testing.T) {
			var issuer string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				m := map[string]string{"issuer": issuer, "token_endpoint": issuer + "/token"}
				m[tt.member] = issuer + tt.path
				json.NewEncoder(w).Encode(m)
			}))
			defer srv.Close()
			issuer = srv.URL
			_, err := dpop.Discover(context.Background(), issuer)
			if err == nil || !strings.Contains(err.Error(), tt.member) || strings.ContainsAny(err.Error(), "\u202e\u200b") {
				t.Errorf("Discover = %v; want an escaped error naming %s", err, tt.member)
			}
		})
	}
}
