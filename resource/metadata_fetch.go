package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"golang.org/x/oauth2"
)

// maxResourceMetadata bounds the document read by FetchMetadata.
const maxResourceMetadata = 256 << 10

// FetchMetadata is the client side of [ProtectedResourceMetadata]: it
// fetches the metadata of the protected resource whose identifier is
// resourceURL (RFC 9728), so that a client can go from an API's URL to the
// authorization server that issues its tokens (what MCP clients do):
//
//	rm, err := resource.FetchMetadata(ctx, "https://api.example.com")
//	...
//	md, err := dpop.Discover(ctx, rm.AuthorizationServers[0])
//
// The document is read at the well-known URL that
// [ProtectedResourceMetadata.WellKnownURL] names (RFC 9728 §3.1). Its
// resource must equal resourceURL exactly (§3.3), so that a resource
// cannot speak for another; resourceURL and every authorization server it
// names must be https URLs, except on a loopback address; a redirect to
// another origin is refused, and the document is read up to 256 KiB. The
// HTTP client comes from the context's [oauth2.HTTPClient], else
// [http.DefaultClient].
func FetchMetadata(ctx context.Context, resourceURL string) (*ProtectedResourceMetadata, error) {
	w, err := (&ProtectedResourceMetadata{Resource: resourceURL}).WellKnownURL()
	if err != nil {
		return nil, err
	}
	loc := w.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return nil, fmt.Errorf("dpop: resource metadata: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	hc, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	resp, err := issuerClient(hc, true).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("dpop: resource metadata from %s: %w", quoteUntrusted(loc), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("dpop: resource metadata from %s: status %d", quoteUntrusted(loc), resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResourceMetadata+1))
	if err != nil {
		return nil, fmt.Errorf("dpop: resource metadata from %s: %w", quoteUntrusted(loc), err)
	}
	if len(body) > maxResourceMetadata {
		return nil, fmt.Errorf("dpop: resource metadata from %s is larger than %d bytes", quoteUntrusted(loc), maxResourceMetadata)
	}
	return parseResourceMetadata(body, resourceURL)
}

// parseResourceMetadata reads the metadata document body of the resource
// resourceURL and checks it (RFC 9728 §2, §3.3).
func parseResourceMetadata(body []byte, resourceURL string) (*ProtectedResourceMetadata, error) {
	var m ProtectedResourceMetadata
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("dpop: resource metadata of %s: %w", quoteUntrusted(resourceURL), err)
	}
	if m.Resource != resourceURL {
		return nil, fmt.Errorf("dpop: resource metadata names resource %s; want %s (RFC 9728 §3.3)", quoteUntrusted(m.Resource), quoteUntrusted(resourceURL))
	}
	for _, as := range m.AuthorizationServers {
		u, err := httpsURL("authorization server", as)
		if err != nil {
			return nil, err
		}
		if u.RawQuery != "" || u.ForceQuery {
			return nil, fmt.Errorf("dpop: authorization server %s has a query (RFC 8414 §2)", quoteUntrusted(as))
		}
	}
	return &m, nil
}
