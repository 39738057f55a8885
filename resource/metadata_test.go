package resource_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/dpopkit/dpop/resource"
)

func TestWellKnownURL(t *testing.T) {
	for _, tt := range []struct{ resource, want string }{
		{"https://api.example.com", "https://api.example.com/.well-known/oauth-protected-resource"},
		{"https://api.example.com/", "https://api.example.com/.well-known/oauth-protected-resource"},
		{"https://api.example.com/v1", "https://api.example.com/.well-known/oauth-protected-resource/v1"},
		{"https://api.example.com/v1/", "https://api.example.com/.well-known/oauth-protected-resource/v1"},
		{"https://api.example.com:8443/a/b%2Fc", "https://api.example.com:8443/.well-known/oauth-protected-resource/a/b%2Fc"},
		{"https://api.example.com/r?tenant=1", "https://api.example.com/.well-known/oauth-protected-resource/r?tenant=1"},
		{"http://127.0.0.1:8080/mcp", "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"},
		{"http://[::1]:8080", "http://[::1]:8080/.well-known/oauth-protected-resource"},
	} {
		m := &resource.ProtectedResourceMetadata{Resource: tt.resource}
		u, err := m.WellKnownURL()
		if err != nil {
			t.Errorf("WellKnownURL(%q): %v", tt.resource, err)
			continue
		}
		if got := u.String(); got != tt.want {
			t.Errorf("WellKnownURL(%q) = %q; want %q", tt.resource, got, tt.want)
		}
	}
	for _, m := range []resource.ProtectedResourceMetadata{
		{Resource: ""},
		{Resource: "api.example.com"},
		{Resource: "http://api.example.com"},
		{Resource: "https://api.example.com#frag"},
		{Resource: "https://user@api.example.com"},
		{Resource: "https://api.example.com", AuthorizationServers: []string{"http://as.example.com"}},
		{Resource: "https://api.example.com", AuthorizationServers: []string{"https://as.example.com?x"}},
	} {
		if u, err := m.WellKnownURL(); err == nil {
			t.Errorf("WellKnownURL of %+v = %v; want an error", m, u)
		}
	}
}

func TestProtectedResourceMetadataServeHTTP(t *testing.T) {
	meta := &resource.ProtectedResourceMetadata{
		AuthorizationServers:          []string{"https://as.example.com"},
		ScopesSupported:               []string{"read", "write"},
		BearerMethodsSupported:        []string{"header"},
		DPoPSigningAlgValuesSupported: []string{"ES256", "EdDSA"},
		DPoPBoundAccessTokensRequired: true,
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	meta.Resource = srv.URL + "/api"
	u, err := meta.WellKnownURL()
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(u.Path, meta)

	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"resource":                          srv.URL + "/api",
		"authorization_servers":             []any{"https://as.example.com"},
		"scopes_supported":                  []any{"read", "write"},
		"bearer_methods_supported":          []any{"header"},
		"dpop_signing_alg_values_supported": []any{"ES256", "EdDSA"},
		"dpop_bound_access_tokens_required": true,
	}
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("document = %v; want %v", doc, want)
	}

	resp, err = http.Head(u.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("HEAD: %d with %d bytes", resp.StatusCode, len(body))
	}

	resp, err = http.Post(u.String(), "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q; want 405, \"GET, HEAD\"", resp.StatusCode, resp.Header.Get("Allow"))
	}
}
