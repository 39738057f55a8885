package resource

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// wellKnownResource is the well-known URI suffix of protected resource
// metadata (RFC 9728 §3).
const wellKnownResource = "/.well-known/oauth-protected-resource"

// ProtectedResourceMetadata is the document a protected resource publishes
// about itself (RFC 9728 §2), so that a client can go from the API's URL to
// the authorization servers that issue its tokens. It is an [http.Handler]
// serving the document; register it at the path of
// [ProtectedResourceMetadata.WellKnownURL], and put that URL in the
// resource_metadata parameter of challenges (RFC 9728 §5.1):
//
//	meta := &resource.ProtectedResourceMetadata{
//		Resource:                      "https://api.example.com",
//		AuthorizationServers:          []string{"https://as.example.com"},
//		DPoPSigningAlgValuesSupported: []string{"ES256", "EdDSA"},
//		DPoPBoundAccessTokensRequired: true,
//	}
//	u, err := meta.WellKnownURL()
//	if err != nil { ... }
//	mux.Handle("GET "+u.Path, meta)
//
// Its fields must not be modified while it serves.
type ProtectedResourceMetadata struct {
	// Resource is the resource identifier (RFC 9728 §2): an https URL
	// without fragment (http on a loopback address, for tests), the URL
	// clients call, and the audience of its tokens (RFC 8707). Required.
	Resource string `json:"resource"`

	// AuthorizationServers are the issuer identifiers (RFC 8414 §2) of
	// the authorization servers whose tokens the resource accepts.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`

	// ScopesSupported are the scope values the resource understands.
	ScopesSupported []string `json:"scopes_supported,omitempty"`

	// BearerMethodsSupported are the ways a token may be presented
	// (RFC 6750 §2): "header", "body", "query". For DPoP, "header".
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`

	// ResourceName is a human-readable name of the resource.
	ResourceName string `json:"resource_name,omitempty"`

	// DPoPSigningAlgValuesSupported are the proof algorithms the resource
	// accepts (RFC 9728 §2, RFC 9449 §5.1).
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`

	// DPoPBoundAccessTokensRequired says the resource accepts only
	// DPoP-bound access tokens (RFC 9728 §2).
	DPoPBoundAccessTokensRequired bool `json:"dpop_bound_access_tokens_required"`
}

var _ http.Handler = (*ProtectedResourceMetadata)(nil)

// WellKnownURL returns the URL of the document (RFC 9728 §3.1): the
// well-known path "/.well-known/oauth-protected-resource" inserted between
// the host and the path of Resource, a trailing "/" of the path removed,
// the query kept. For "https://api.example.com/v1" it is
// "https://api.example.com/.well-known/oauth-protected-resource/v1". It
// returns an error when Resource or an AuthorizationServers entry is not
// a URL RFC 9728 §2 allows.
func (m *ProtectedResourceMetadata) WellKnownURL() (*url.URL, error) {
	u, err := httpsURL("ProtectedResourceMetadata.Resource", m.Resource)
	if err != nil {
		return nil, err
	}
	for _, as := range m.AuthorizationServers {
		a, err := httpsURL("ProtectedResourceMetadata.AuthorizationServers entry", as)
		if err != nil {
			return nil, err
		}
		if a.RawQuery != "" || a.ForceQuery {
			return nil, fmt.Errorf("dpop: issuer %s has a query (RFC 8414 §2)", quoteUntrusted(as))
		}
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	w, err := url.Parse(u.Scheme + "://" + u.Host + wellKnownResource + path)
	if err != nil {
		return nil, fmt.Errorf("dpop: ProtectedResourceMetadata.Resource %s: %w", quoteUntrusted(m.Resource), err)
	}
	w.RawQuery = u.RawQuery
	return w, nil
}

// ServeHTTP answers a GET or HEAD with the document as JSON (RFC 9728
// §3.2), readable from any origin (it is public, and browser clients read
// it), and any other method with 405.
func (m *ProtectedResourceMetadata) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := json.Marshal(m)
	if err != nil {
		http.Error(w, "metadata unavailable", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}
