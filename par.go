package dpop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// PushAuthCodeURL sends the authorization request to the pushed
// authorization request endpoint [Config.PARURL] (RFC 9126) with a DPoP
// proof, which binds the authorization code to the signer's key (RFC 9449
// §10.1), and returns the URL to open in the browser: the authorization
// endpoint with client_id and the request_uri the server answered. The
// request parameters are those [Config.AuthCodeURL] would put in the URL,
// dpop_jkt included.
//
// An error answer of the server is an [*oauth2.RetrieveError], wrapped.
func (c *Config) PushAuthCodeURL(ctx context.Context, state string, opts ...oauth2.AuthCodeOption) (string, error) {
	if err := c.check(); err != nil {
		return "", err
	}
	if c.PARURL == "" {
		return "", errors.New("dpop: Config's PARURL is empty")
	}
	cfg := c.oauth2()
	authURL, err := url.Parse(c.authCodeURL(state, opts...))
	if err != nil {
		return "", requestError("PAR", err)
	}
	form := authURL.Query()
	if c.FAPI2 {
		if err := checkFAPI2Request(form); err != nil {
			return "", err
		}
	}
	if cfg.Endpoint.AuthStyle == oauth2.AuthStyleInParams && cfg.ClientSecret != "" {
		form.Set("client_secret", cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.PARURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", requestError("PAR", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cfg.Endpoint.AuthStyle == oauth2.AuthStyleInHeader {
		// RFC 6749 §2.3.1: form-encode the credentials before Basic.
		req.SetBasicAuth(url.QueryEscape(cfg.ClientID), url.QueryEscape(cfg.ClientSecret))
	}
	resp, err := tokenClient(ctx, c.Signer, c.nonces(), c.clientAuth()).Do(req)
	if err != nil {
		return "", requestError("PAR", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body) // bounded by the token-request transport
	if err != nil {
		return "", requestError("PAR", err)
	}
	var pr struct {
		RequestURI       string `json:"request_uri"`
		ExpiresIn        int64  `json:"expires_in"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		ErrorURI         string `json:"error_uri"`
	}
	jsonErr := json.Unmarshal(body, &pr)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", newTokenError("PAR", &oauth2.RetrieveError{
			Response: resp, Body: body,
			ErrorCode: pr.Error, ErrorDescription: pr.ErrorDescription, ErrorURI: pr.ErrorURI,
		})
	}
	if jsonErr != nil {
		return "", fmt.Errorf("dpop: PAR response is not JSON: %w", jsonErr)
	}
	if pr.RequestURI == "" {
		return "", errors.New("dpop: PAR response has no request_uri")
	}
	u, err := url.Parse(cfg.Endpoint.AuthURL)
	if err != nil {
		return "", fmt.Errorf("dpop: authorization endpoint: %w", err)
	}
	q := u.Query()
	q.Set("client_id", cfg.ClientID)
	q.Set("request_uri", pr.RequestURI)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
