package dpop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
)

// Metadata is what an authorization server publishes about itself (RFC
// 8414 §2), as far as DPoP clients need it.
type Metadata struct {
	Issuer                             string   `json:"issuer"`
	AuthorizationEndpoint              string   `json:"authorization_endpoint"`
	TokenEndpoint                      string   `json:"token_endpoint"`
	DeviceAuthorizationEndpoint        string   `json:"device_authorization_endpoint"`         // RFC 8628 §4
	PushedAuthorizationRequestEndpoint string   `json:"pushed_authorization_request_endpoint"` // RFC 9126 §5
	RequirePushedAuthorizationRequests bool     `json:"require_pushed_authorization_requests"`
	RevocationEndpoint                 string   `json:"revocation_endpoint"` // RFC 7009
	JWKSURI                            string   `json:"jwks_uri"`
	GrantTypesSupported                []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported      []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported  []string `json:"token_endpoint_auth_methods_supported"`

	// TokenEndpointAuthSigningAlgValuesSupported lists the algorithms the
	// server accepts for client assertions (RFC 8414 §2); compare
	// [AssertionSigner.Alg].
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`

	// AuthorizationResponseISSParameterSupported says the server puts iss
	// in every authorization response (RFC 9207 §3);
	// [Metadata.VerifyAuthResponse] then requires it.
	AuthorizationResponseISSParameterSupported bool `json:"authorization_response_iss_parameter_supported"`

	// DPoPSigningAlgValuesSupported lists the proof algorithms the server
	// accepts (RFC 9449 §5.1). Empty means it did not say.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported"`
}

// maxMetadata bounds the metadata document read by Discover.
const maxMetadata = 1 << 20

// Discover fetches the metadata of the authorization server whose issuer
// identifier is issuer: first from the RFC 8414 §3.1 well-known location,
// then, if that is not found, from OpenID Connect Discovery's
// /.well-known/openid-configuration. The document's issuer must equal
// issuer exactly (RFC 8414 §3.3). The issuer and every endpoint the
// document names must be https URLs, except on a loopback address (for
// tests and local servers); a redirect to another origin is refused, so a
// downgraded or substituted document is never accepted. The HTTP client
// comes from the context's [oauth2.HTTPClient], else [http.DefaultClient].
func Discover(ctx context.Context, issuer string) (*Metadata, error) {
	u, err := secureURL(issuer)
	if err != nil {
		return nil, fmt.Errorf("dpop: issuer: %w (RFC 8414 §2)", err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("dpop: issuer %s has a query or fragment (RFC 8414 §2)", quote(issuer))
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	wellKnown := []string{
		u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + path,
		strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration",
	}
	var firstErr error
	for _, loc := range wellKnown {
		m, status, err := fetchMetadata(ctx, loc)
		if err == nil {
			if m.Issuer != issuer {
				return nil, fmt.Errorf("dpop: metadata at %s names issuer %s; want %s (RFC 8414 §3.3)", loc, quote(m.Issuer), quote(issuer))
			}
			if err := m.checkEndpoints(); err != nil {
				return nil, &opError{"metadata at " + loc, err}
			}
			return m, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if status != http.StatusNotFound {
			break
		}
	}
	return nil, firstErr
}

// checkEndpoints applies the issuer's rule (https, or http on loopback) to
// every endpoint of m, and requires a token endpoint. An endpoint may be
// shown to a person (the authorization endpoint starts the URL a CLI
// prints), so each must be printable and of reasonable length, as the
// device grant's verification URI must ([checkShown]).
func (m *Metadata) checkEndpoints() error {
	if m.TokenEndpoint == "" {
		return errors.New("dpop: no token_endpoint")
	}
	for _, e := range []struct{ name, url string }{
		{"authorization_endpoint", m.AuthorizationEndpoint},
		{"token_endpoint", m.TokenEndpoint},
		{"device_authorization_endpoint", m.DeviceAuthorizationEndpoint},
		{"pushed_authorization_request_endpoint", m.PushedAuthorizationRequestEndpoint},
		{"revocation_endpoint", m.RevocationEndpoint},
		{"jwks_uri", m.JWKSURI},
	} {
		if e.url == "" {
			continue
		}
		if err := checkShown(e.name, e.url, maxShownURI); err != nil {
			return fmt.Errorf("dpop: %w", err)
		}
		if _, err := secureURL(e.url); err != nil {
			return fmt.Errorf("dpop: %s: %w (RFC 8414 §2)", e.name, err)
		}
	}
	return nil
}

func fetchMetadata(ctx context.Context, loc string) (*Metadata, int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", loc, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("dpop: metadata: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := sameOriginClient(ctx).Do(req)
	if err != nil {
		return nil, 0, &opError{"metadata", err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK { // its body, however large or slow, is not needed
		return nil, resp.StatusCode, fmt.Errorf("dpop: metadata from %s: status %d", loc, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadata+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("dpop: metadata from %s: %w", loc, err)
	}
	if len(body) > maxMetadata {
		return nil, resp.StatusCode, fmt.Errorf("dpop: metadata from %s is larger than %d bytes", loc, maxMetadata)
	}
	var m Metadata
	if err := json.Unmarshal(body, &m); err != nil {
		ct := cleanText(resp.Header.Get("Content-Type"), maxCodeText)
		return nil, resp.StatusCode, fmt.Errorf("dpop: metadata from %s: %w; the answer is not a metadata document (Content-Type %s): is the issuer right? A web server or a proxy may have answered",
			loc, err, quote(ct))
	}
	return &m, resp.StatusCode, nil
}

// Endpoint returns the server's endpoints for an [oauth2.Config]. The
// AuthStyle is left to auto-detection, which [Config] pins.
func (m *Metadata) Endpoint() oauth2.Endpoint {
	return oauth2.Endpoint{
		AuthURL:       m.AuthorizationEndpoint,
		TokenURL:      m.TokenEndpoint,
		DeviceAuthURL: m.DeviceAuthorizationEndpoint,
	}
}

// CheckSigner returns an error unless the server advertises DPoP support
// with s's algorithm (RFC 9449 §5.1); the error names the algorithms the
// server accepts, among which [ChooseAlg] picks one for a new key. Call it
// before the first token request, to fail with a clear message instead of
// a rejected proof.
func (m *Metadata) CheckSigner(s *Signer) error {
	if m == nil {
		return errors.New("dpop: Metadata.CheckSigner: the Metadata is nil")
	}
	if s == nil || s.key == nil {
		return errZeroSigner
	}
	for _, a := range m.DPoPSigningAlgValuesSupported {
		if a == s.Alg() {
			return nil
		}
	}
	return &algError{alg: s.Alg(), supported: m.DPoPSigningAlgValuesSupported}
}
