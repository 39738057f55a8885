package resource_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"github.com/dpopkit/dpop/resource"
)

// serveResource starts an API on 127.0.0.1 whose RFC 9728 metadata,
// served by package resource, names as its authorization server; the
// resource identifier is the server's URL followed by path.
func serveResource(t testing.TB, path string, as string) (resourceURL string) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	meta := &resource.ProtectedResourceMetadata{
		Resource:                      srv.URL + path,
		AuthorizationServers:          []string{as},
		BearerMethodsSupported:        []string{"header"},
		DPoPSigningAlgValuesSupported: []string{"ES256", "EdDSA"},
		DPoPBoundAccessTokensRequired: true,
	}
	u, err := meta.WellKnownURL()
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("GET "+u.Path, meta)
	return meta.Resource
}

// TestFetchMetadata goes from an API's URL to its authorization
// server's token endpoint: RFC 9728, then RFC 8414.
func TestFetchMetadata(t *testing.T) {
	as := dpoptest.NewServer(nil)
	t.Cleanup(as.Close)
	for _, path := range []string{"", "/", "/api", "/api/v1/", "/mcp?tenant=a"} {
		t.Run(path, func(t *testing.T) {
			api := serveResource(t, path, as.URL)
			rm, err := resource.FetchMetadata(t.Context(), api)
			if err != nil {
				t.Fatal(err)
			}
			want := &resource.ProtectedResourceMetadata{
				Resource:                      api,
				AuthorizationServers:          []string{as.URL},
				BearerMethodsSupported:        []string{"header"},
				DPoPSigningAlgValuesSupported: []string{"ES256", "EdDSA"},
				DPoPBoundAccessTokensRequired: true,
			}
			if !reflect.DeepEqual(rm, want) {
				t.Errorf("FetchMetadata = %+v; want %+v", rm, want)
			}
			md, err := dpop.Discover(t.Context(), rm.AuthorizationServers[0])
			if err != nil {
				t.Fatal(err)
			}
			if md.TokenEndpoint != as.Endpoint().TokenURL {
				t.Errorf("token endpoint = %q; want %q", md.TokenEndpoint, as.Endpoint().TokenURL)
			}
		})
	}
}

// TestFetchMetadataRefusals: documents and URLs FetchMetadata must
// not accept.
func TestFetchMetadataRefusals(t *testing.T) {
	// A document for another resource (RFC 9728 §3.3): the API at /a
	// cannot speak for the one at /b, nor the origin's root for it.
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	serve := func(path, body string) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, strings.ReplaceAll(body, "BASE", srv.URL))
		})
	}
	serve("/.well-known/oauth-protected-resource/b", `{"resource":"BASE/a","authorization_servers":["BASE"]}`)
	serve("/.well-known/oauth-protected-resource/c", `{"resource":"BASE/c/","authorization_servers":["BASE"]}`)
	serve("/.well-known/oauth-protected-resource/http-as", `{"resource":"BASE/http-as","authorization_servers":["http://as.example.com"]}`)
	serve("/.well-known/oauth-protected-resource/as-query", `{"resource":"BASE/as-query","authorization_servers":["https://as.example.com?x=1"]}`)
	serve("/.well-known/oauth-protected-resource/bad-json", `{"resource":"BASE/bad-json","authorization_servers":"BASE"}`)
	serve("/.well-known/oauth-protected-resource/huge", `{"resource":"BASE/huge","x":"`+strings.Repeat("a", 300<<10)+`"}`)
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://localhost:1/.well-known/oauth-protected-resource/elsewhere", http.StatusFound)
	})
	for _, path := range []string{"/b", "/c", "/http-as", "/as-query", "/bad-json", "/huge", "/elsewhere", "/not-found"} {
		rm, err := resource.FetchMetadata(t.Context(), srv.URL+path)
		if err == nil {
			t.Errorf("%s: FetchMetadata = %+v; want an error", path, rm)
			continue
		}
		if !strings.HasPrefix(err.Error(), "dpop: ") {
			t.Errorf("%s: error %q without the prefix", path, err)
		}
	}

	// Refused before any request.
	var requests atomic.Int64
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Transport: countingTransport{&requests, http.DefaultTransport}})
	for _, u := range []string{"", "api.example.com", "http://api.example.com", "https://api.example.com#f", "https://u:p@api.example.com", "ftp://127.0.0.1/", "https://"} {
		if _, err := resource.FetchMetadata(ctx, u); err == nil {
			t.Errorf("%q: FetchMetadata succeeded; want an error", u)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests for URLs that must be refused", n)
	}
}

// TestFetchMetadataClient: the request goes through the context's
// oauth2.HTTPClient, and a redirect within the origin is followed.
func TestFetchMetadataClient(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/api", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/moved", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /moved", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"resource":%q}`, srv.URL+"/api")
	})
	var requests atomic.Int64
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Transport: countingTransport{&requests, http.DefaultTransport}})
	if _, err := resource.FetchMetadata(ctx, srv.URL+"/api"); err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("requests through the context's client = %d; want 2", n)
	}
}

type countingTransport struct {
	n    *atomic.Int64
	base http.RoundTripper
}

func (c countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(req)
}

// bodyTransport answers every request with body, in memory.
type bodyTransport []byte

func (b bodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(bytes.NewReader(b)),
		Request:    req,
	}, nil
}

// FuzzFetchMetadata feeds FetchMetadata arbitrary documents: it must
// not panic, and what it accepts is for the resource asked, with
// authorization servers it may talk to.
func FuzzFetchMetadata(f *testing.F) {
	const api = "https://api.example.com/v1"
	for _, s := range []string{
		`{"resource":"https://api.example.com/v1","authorization_servers":["https://as.example.com"],"dpop_bound_access_tokens_required":true}`,
		`{"resource":"https://api.example.com/v1","authorization_servers":["http://127.0.0.1:9000"]}`,
		`{"resource":"https://api.example.com/v1","authorization_servers":["http://as.example.com"]}`,
		`{"resource":"https://api.example.com/v1/"}`,
		`{"resource":"https://api.example.com/v1","resource":"https://evil.example.com"}`,
		`{"resource":"https://api.example.com/v1","dpop_signing_alg_values_supported":"ES256"}`,
		`[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: bodyTransport(body)})
		rm, err := resource.FetchMetadata(ctx, api)
		if err != nil {
			if rm != nil || !strings.HasPrefix(err.Error(), "dpop: ") {
				t.Fatalf("FetchMetadata = %v, %q", rm, err)
			}
			return
		}
		if rm.Resource != api {
			t.Fatalf("accepted the document of %q", rm.Resource)
		}
		for _, as := range rm.AuthorizationServers {
			u, err := url.Parse(as)
			if err != nil || u.Fragment != "" || u.RawQuery != "" {
				t.Fatalf("accepted authorization server %q", as)
			}
			loopback := strings.EqualFold(u.Hostname(), "localhost") || net.ParseIP(u.Hostname()).IsLoopback()
			if s := strings.ToLower(u.Scheme); s != "https" && !(s == "http" && loopback) {
				t.Fatalf("accepted authorization server %q", as)
			}
		}
	})
}

// ExampleFetchMetadata goes from an API's URL to the token endpoint of
// its authorization server, as MCP clients do: the API's protected
// resource metadata (RFC 9728) names the authorization server, whose
// metadata (RFC 8414) names its endpoints.
func ExampleFetchMetadata() {
	as := dpoptest.NewServer(nil)
	defer as.Close()

	// The API, publishing its metadata with package resource.
	mux := http.NewServeMux()
	api := httptest.NewServer(mux)
	defer api.Close()
	meta := &resource.ProtectedResourceMetadata{
		Resource:                      api.URL + "/mcp",
		AuthorizationServers:          []string{as.URL},
		DPoPBoundAccessTokensRequired: true,
	}
	u, err := meta.WellKnownURL()
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("GET "+u.Path, meta)

	// The client knows only the API's URL.
	ctx := context.Background()
	rm, err := resource.FetchMetadata(ctx, api.URL+"/mcp")
	if err != nil {
		log.Fatal(err)
	}
	md, err := dpop.Discover(ctx, rm.AuthorizationServers[0])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rm.DPoPBoundAccessTokensRequired, md.TokenEndpoint == as.Endpoint().TokenURL)

	// The same document read for ".../mcp/" is refused: it is not that
	// resource's (RFC 9728 §3.3).
	_, err = resource.FetchMetadata(ctx, api.URL+"/mcp/")
	fmt.Println(strings.Contains(fmt.Sprint(err), "RFC 9728 §3.3"))
	// Output:
	// true true
	// true
}
