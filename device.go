package dpop

import (
	"context"

	"golang.org/x/oauth2"
)

// DeviceAuth starts the device authorization grant (RFC 8628 §3.1). The
// request needs no proof; the token requests that follow carry one.
func (c *Config) DeviceAuth(ctx context.Context, opts ...oauth2.AuthCodeOption) (*oauth2.DeviceAuthResponse, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	da, err := c.oauth2().DeviceAuth(authContext(noRedirectContext(ctx), c.clientAuth()), opts...)
	if err != nil {
		return nil, requestError("device authorization", err)
	}
	return da, nil
}

// DeviceAccessToken polls the token endpoint until the user approves the
// device (RFC 8628 §3.4, §3.5), each poll with a new proof, and returns a
// DPoP-bound token.
func (c *Config) DeviceAccessToken(ctx context.Context, da *oauth2.DeviceAuthResponse, opts ...oauth2.AuthCodeOption) (*oauth2.Token, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	tok, err := c.oauth2().DeviceAccessToken(c.tokenContext(ctx), da, opts...)
	if err != nil {
		return nil, requestError("device access token", err)
	}
	return checkToken(tok, c.AllowBearer)
}
