package dpop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// ResourceMetadata is what a protected resource publishes about itself
// (RFC 9728 §2), as [DiscoverResource] reads it: above all, the
// authorization servers whose tokens it accepts, to pass to [Discover].
type ResourceMetadata struct {
	// Resource is the resource identifier: the URL DiscoverResource was
	// given, exactly (RFC 9728 §3.3).
	Resource string `json:"resource"`

	// AuthorizationServers are the issuer identifiers of the
	// authorization servers (RFC 8414 §2), each an https URL (http on a
	// loopback address).
	AuthorizationServers []string `json:"authorization_servers"`

	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name"`

	// DPoPSigningAlgValuesSupported lists the proof algorithms the
	// resource accepts (RFC 9728 §2). Empty means it did not say.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported"`

	// DPoPBoundAccessTokensRequired says the resource accepts DPoP-bound
	// access tokens only.
	DPoPBoundAccessTokensRequired bool `json:"dpop_bound_access_tokens_required"`
}

// maxResourceMetadata bounds the document read by DiscoverResource.
const maxResourceMetadata = 256 << 10

// DiscoverResource fetches the metadata of the protected resource whose
// identifier is resourceURL (RFC 9728), so that a client can go from an
// API's URL to the authorization server that issues its tokens:
//
//	rm, err := dpop.DiscoverResource(ctx, "https://api.example.com")
//	...
//	md, err := dpop.Discover(ctx, rm.AuthorizationServers[0])
//
// The document is read at the well-known URL of RFC 9728 §3.1:
// "/.well-known/oauth-protected-resource" inserted between the host and
// the path of resourceURL (a trailing "/" of the path removed, the query
// kept). Its resource must equal resourceURL exactly (§3.3), so that a
// resource cannot speak for another; resourceURL and every authorization
// server it names must be https URLs, except on a loopback address; a
// redirect to another origin is refused, and the document is read up to
// 256 KiB. The HTTP client comes from the context's [oauth2.HTTPClient],
// else [http.DefaultClient].
func DiscoverResource(ctx context.Context, resourceURL string) (*ResourceMetadata, error) {
	loc, err := resourceMetadataURL(resourceURL)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return nil, fmt.Errorf("dpop: resource metadata: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := resourceMetadataClient(ctx).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("dpop: resource metadata from %s: %w", strconv.Quote(loc), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("dpop: resource metadata from %s: status %d", strconv.Quote(loc), resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResourceMetadata+1))
	if err != nil {
		return nil, fmt.Errorf("dpop: resource metadata from %s: %w", strconv.Quote(loc), err)
	}
	if len(body) > maxResourceMetadata {
		return nil, fmt.Errorf("dpop: resource metadata from %s is larger than %d bytes", strconv.Quote(loc), maxResourceMetadata)
	}
	return parseResourceMetadata(body, resourceURL)
}

// parseResourceMetadata reads the metadata document body of the resource
// resourceURL and checks it (RFC 9728 §2, §3.3).
func parseResourceMetadata(body []byte, resourceURL string) (*ResourceMetadata, error) {
	var m ResourceMetadata
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("dpop: resource metadata of %s: %w", quoteResource(resourceURL), err)
	}
	if m.Resource != resourceURL {
		return nil, fmt.Errorf("dpop: resource metadata names resource %s; want %s (RFC 9728 §3.3)", quoteResource(m.Resource), quoteResource(resourceURL))
	}
	for _, as := range m.AuthorizationServers {
		u, err := resourceHTTPSURL("authorization server", as)
		if err != nil {
			return nil, err
		}
		if u.RawQuery != "" || u.ForceQuery {
			return nil, fmt.Errorf("dpop: authorization server %s has a query (RFC 8414 §2)", quoteResource(as))
		}
	}
	return &m, nil
}

// resourceMetadataURL returns the well-known URL of the metadata of the
// resource resourceURL (RFC 9728 §3.1).
func resourceMetadataURL(resourceURL string) (string, error) {
	u, err := resourceHTTPSURL("resource", resourceURL)
	if err != nil {
		return "", err
	}
	loc := u.Scheme + "://" + u.Host + "/.well-known/oauth-protected-resource" + strings.TrimSuffix(u.EscapedPath(), "/")
	if u.RawQuery != "" {
		loc += "?" + u.RawQuery
	}
	return loc, nil
}

// resourceHTTPSURL parses raw, the value of what, and returns it when it
// is an absolute https URL without fragment or user info, or such an http
// URL on a loopback address (RFC 9728 §2, RFC 8252 §8.3).
func resourceHTTPSURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, fmt.Errorf("dpop: %s %s is not an absolute URL without user info and fragment", what, quoteResource(raw))
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return u, nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); strings.EqualFold(host, "localhost") || ip != nil && ip.IsLoopback() {
			return u, nil
		}
		return nil, fmt.Errorf("dpop: %s %s must use https; plain http is allowed on loopback only", what, quoteResource(raw))
	}
	return nil, fmt.Errorf("dpop: %s %s is not an http or https URL", what, quoteResource(raw))
}

// resourceMetadataClient returns a copy of the context's HTTP client that
// follows a redirect only within the origin (scheme, host and port) of the
// first request: the document is never replaced by one from elsewhere.
func resourceMetadataClient(ctx context.Context) *http.Client {
	c := http.DefaultClient
	if hc, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && hc != nil {
		c = hc
	}
	hc := *c
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if first := via[0].URL; !strings.EqualFold(req.URL.Scheme, first.Scheme) || !strings.EqualFold(req.URL.Host, first.Host) {
			return fmt.Errorf("redirected to another origin, %s; refused", strconv.Quote(req.URL.Redacted()))
		}
		if c.CheckRedirect != nil {
			return c.CheckRedirect(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &hc
}

// quoteResource quotes a value from a document for an error message, cut
// to 100 bytes.
func quoteResource(s string) string {
	if len(s) > 100 {
		return strconv.QuoteToASCII(s[:100]) + "…"
	}
	return strconv.QuoteToASCII(s)
}
