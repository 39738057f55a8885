package dpop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

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
	resp, body, err := postForm(ctx, cfg, c.parts(), c.PARURL, form)
	if err != nil {
		return "", requestError("PAR", err)
	}
	var pr struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int64  `json:"expires_in"`
	}
	jsonErr := json.Unmarshal(body, &pr)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", newTokenError("PAR", retrieveError(resp, body))
	}
	if jsonErr != nil {
		ct := cleanText(resp.Header.Get("Content-Type"), maxCodeText)
		return "", requestErrorAt("PAR", c.PARURL, fmt.Errorf("%w; the answer is %s", jsonErr, notOAuth(ct)))
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
