package dpop

import (
	"context"
	"net/http"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// ClientCredentials obtains DPoP-bound tokens with the client credentials
// grant (RFC 6749 §4.4, RFC 9449 §5) through a [clientcredentials.Config],
// for services calling APIs on their own behalf.
//
// The required fields are OAuth2 and Signer. It is safe for concurrent use,
// and may be copied. As with [Config], the authentication style
// is pinned to client_secret_basic unless OAuth2.AuthStyle says otherwise,
// and the HTTP client comes from the context.
type ClientCredentials struct {
	OAuth2      *clientcredentials.Config
	Signer      *Signer
	Nonces      *NonceCache // authorization-server nonces; if nil, its own
	AllowBearer bool        // accept a Bearer token (a downgrade); see Config.AllowBearer

	ownNonces lazyNonceCache
}

// Token requests a new token.
func (c *ClientCredentials) Token(ctx context.Context) (*oauth2.Token, error) {
	if err := checkParts("ClientCredentials", c.OAuth2 != nil, c.Signer); err != nil {
		return nil, err
	}
	cfg := *c.OAuth2
	cfg.AuthStyle = pinAuthStyle(cfg.AuthStyle, cfg.ClientSecret)
	tok, err := cfg.Token(tokenContext(ctx, c.Signer, c.nonces()))
	if err != nil {
		return nil, requestError("client credentials", err)
	}
	return checkToken(tok, c.AllowBearer)
}

// TokenSource returns a token source that requests a token when it has
// none or the last one expired; concurrent callers wait for one request.
func (c *ClientCredentials) TokenSource(ctx context.Context) oauth2.TokenSource {
	return oauth2.ReuseTokenSource(nil, clientCredentialsSource{ctx, c})
}

// Client returns an HTTP client whose requests carry a token from
// TokenSource with a DPoP proof, over the context's oauth2.HTTPClient
// transport if one is set. The client has its own resource-server nonces.
func (c *ClientCredentials) Client(ctx context.Context) *http.Client {
	return dpopClient(ctx, c.TokenSource(ctx), c.Signer, c.AllowBearer)
}

func (c *ClientCredentials) nonces() *NonceCache { return c.ownNonces.get(c.Nonces) }

// clientCredentialsSource requests a token with the context it was made with.
type clientCredentialsSource struct {
	ctx context.Context
	c   *ClientCredentials
}

func (s clientCredentialsSource) Token() (*oauth2.Token, error) { return s.c.Token(s.ctx) }
