package dpop_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// TestDiscoverFallback: a server without RFC 8414 metadata is read from
// OpenID Connect Discovery; a broken document, or an issuer that is not
// https or loopback http, is an error.
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

// FuzzDiscover serves arbitrary metadata documents to Discover: no
// panic, and a document it accepts names the issuer and has only https or
// loopback endpoints.
func FuzzDiscover(f *testing.F) {
	const issuer = "https://as.example"
	f.Add([]byte(`{"issuer":"https://as.example","token_endpoint":"https://as.example/token"}`))
	f.Add([]byte(`{"issuer":"https://as.example","token_endpoint":"http://127.0.0.1:8080/token","jwks_uri":"http://as.example/jwks"}`))
	f.Add([]byte(`{"issuer":"https://as.example","token_endpoint":"https://as.example/token","authorization_endpoint":"HTTP://localhost/a"}`))
	f.Add([]byte(`{"issuer":"https://as.example/","token_endpoint":"//as.example/token"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		ctx := withClient(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(bytes.NewReader(doc)), Request: r}, nil
		})})
		m, err := dpop.Discover(ctx, issuer)
		if err != nil {
			return
		}
		if m.Issuer != issuer || m.TokenEndpoint == "" {
			t.Fatalf("accepted issuer %q, token endpoint %q", m.Issuer, m.TokenEndpoint)
		}
		for _, e := range []string{m.AuthorizationEndpoint, m.TokenEndpoint, m.DeviceAuthorizationEndpoint,
			m.PushedAuthorizationRequestEndpoint, m.RevocationEndpoint, m.JWKSURI} {
			if e == "" {
				continue
			}
			u, err := url.Parse(e)
			if err != nil {
				t.Fatalf("accepted endpoint %q: %v", e, err)
			}
			host := u.Hostname()
			switch s := strings.ToLower(u.Scheme); {
			case s == "https" && host != "":
			case s == "http" && (strings.EqualFold(host, "localhost") || strings.HasPrefix(host, "127.") || host == "::1"):
			default:
				t.Fatalf("accepted endpoint %q: want https, or http on loopback", e)
			}
		}
	})
}

// TestDiscoverRefusesRedirects: a metadata request over https is not
// followed to plain http, nor to another https origin; a redirect within
// the origin is followed.
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
// the issuer's rule, https or loopback.
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
	for name, call := range map[string]func() error{
		"CheckSigner": func() error { return md.CheckSigner(newSigner(t)) },
		"VerifyAuthResponse": func() error {
			_, err := md.VerifyAuthResponse(url.Values{"code": {"c"}, "state": {"s"}}, "s")
			return err
		},
	} {
		var err error
		if r := noPanic(func() { err = call() }); r != nil || err == nil || !strings.Contains(err.Error(), "Metadata is nil") {
			t.Errorf("%s on a nil Metadata = %v (panic %v); want an error naming the nil Metadata", name, err, r)
		}
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
