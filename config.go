package dpop

import (
	"context"
	"fmt"
	"net/http"

	"golang.org/x/oauth2"
)

// Config obtains DPoP-bound tokens (RFC 9449 §5) through an
// [oauth2.Config]: every token-endpoint request carries a proof from Signer,
// the authorization server's nonce challenge is answered inside the
// transport, and every token answered must have token_type DPoP.
//
// The required fields are OAuth2 and Signer. A Config is safe for concurrent
// use, and may be copied like an oauth2.Config (the copies share the
// nonces it learned).
//
// The HTTP client for token requests is taken from the context, as in
// x/oauth2: the [oauth2.HTTPClient] value, else [http.DefaultClient]; its
// Transport becomes the Base of a [Transport].
//
// The client authentication style is never auto-detected: x/oauth2's
// AuthStyleAutoDetect treats any first failure as "try the other style" and
// remembers that choice. With OAuth2.Endpoint.AuthStyle left at
// AuthStyleAutoDetect, a Config uses client_secret_basic when there is a
// ClientSecret; a public client (no ClientSecret) always sends only its
// client_id, in the request body.
type Config struct {
	// OAuth2 holds the client and the authorization server's endpoints.
	// Its methods must not be called directly for token requests: they
	// send no proof. Use the methods of Config instead.
	OAuth2 *oauth2.Config

	// Signer signs the proofs; the tokens are bound to its key.
	Signer *Signer

	// Nonces holds the authorization server's nonces. If nil, the Config
	// keeps its own. Do not share it with the resource server's cache
	// (see [NonceCache]).
	Nonces *NonceCache

	// PARURL is the pushed authorization request endpoint (RFC 9126),
	// used by [Config.PushAuthCodeURL]: the metadata's
	// [Metadata.PushedAuthorizationRequestEndpoint].
	PARURL string

	// RevocationURL is the token revocation endpoint (RFC 7009), used by
	// [Config.Revoke]: the metadata's [Metadata.RevocationEndpoint].
	RevocationURL string

	// DeviceProgress, if set, is called by [Config.DeviceAccessToken]
	// before its first poll and after each poll that leaves it waiting for
	// the user, on the calling goroutine: show the user code, the
	// verification URI and the progress from it. It should return quickly.
	DeviceProgress func(DeviceStatus)

	// AllowBearer accepts a token_type of Bearer, which means the server
	// ignored DPoP and issued an unbound token (a downgrade). By default
	// that is a [*TokenTypeError]. The client of [Config.Client] then
	// sends such a token with the Bearer scheme ([Transport.AllowBearer]).
	AllowBearer bool

	ownNonces lazyNonceCache
}

// AuthCodeURL returns the authorization URL of [oauth2.Config.AuthCodeURL]
// with the dpop_jkt parameter (RFC 9449 §10), which binds the authorization
// code to the signer's key. Pass oauth2.S256ChallengeOption(verifier) for
// PKCE (RFC 7636).
func (c *Config) AuthCodeURL(state string, opts ...oauth2.AuthCodeOption) string {
	opts = append(opts[:len(opts):len(opts)], oauth2.SetAuthURLParam("dpop_jkt", c.Signer.Thumbprint()))
	return c.oauth2().AuthCodeURL(state, opts...)
}

// Exchange converts an authorization code into a DPoP-bound token (RFC 6749
// §4.1.3, RFC 9449 §5). Pass oauth2.VerifierOption(verifier) for PKCE.
func (c *Config) Exchange(ctx context.Context, code string, opts ...oauth2.AuthCodeOption) (*oauth2.Token, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	cfg := c.oauth2()
	tok, err := cfg.Exchange(c.tokenContext(ctx), code, opts...)
	if err != nil {
		return nil, fmt.Errorf("dpop: code exchange: %w", err)
	}
	return checkToken(tok, c.AllowBearer)
}

// TokenSource returns a token source that returns tok until it expires and
// then refreshes it with the same key (RFC 9449 §5), checking each new token
// as Exchange does. Refreshes run with ctx, not with the context of the
// request that needs the token (an oauth2.TokenSource takes none): bound
// them with an oauth2.HTTPClient in ctx that has a Timeout. It is an [oauth2.ReuseTokenSource]: concurrent callers
// wait for one refresh. Save the returned tokens if the refresh token must
// survive the process; the keystore package has a wrapper that does.
func (c *Config) TokenSource(ctx context.Context, tok *oauth2.Token) oauth2.TokenSource {
	r := &refresher{ctx: ctx, c: c}
	if tok != nil {
		r.refreshToken = tok.RefreshToken
	}
	return oauth2.ReuseTokenSource(tok, r)
}

// Client returns an HTTP client whose requests carry tok (refreshed as
// needed) with a DPoP proof. Its Transport's Base is the context's
// [oauth2.HTTPClient] transport, if one is set. Each client has its own
// resource-server nonce cache.
func (c *Config) Client(ctx context.Context, tok *oauth2.Token) *http.Client {
	return dpopClient(ctx, c.TokenSource(ctx, tok), c.Signer, c.AllowBearer)
}

func (c *Config) check() error { return checkParts("Config", c.OAuth2 != nil, c.Signer) }

// oauth2 returns a copy of c.OAuth2 with the authentication style pinned.
func (c *Config) oauth2() *oauth2.Config {
	cfg := *c.OAuth2
	cfg.Endpoint.AuthStyle = pinAuthStyle(cfg.Endpoint.AuthStyle, cfg.ClientSecret)
	return &cfg
}

func (c *Config) nonces() *NonceCache { return c.ownNonces.get(c.Nonces) }

func (c *Config) tokenContext(ctx context.Context) context.Context {
	return tokenContext(ctx, c.Signer, c.nonces())
}

// refresher gets new tokens with the refresh token, under the lock of the
// oauth2.ReuseTokenSource that wraps it.
type refresher struct {
	ctx          context.Context
	c            *Config
	refreshToken string // guarded by the ReuseTokenSource's mutex
}

func (r *refresher) Token() (*oauth2.Token, error) {
	if err := r.c.check(); err != nil {
		return nil, err
	}
	if r.refreshToken == "" {
		return nil, ErrNoRefreshToken
	}
	tok, err := r.c.oauth2().TokenSource(r.c.tokenContext(r.ctx), &oauth2.Token{RefreshToken: r.refreshToken}).Token()
	if err != nil {
		return nil, fmt.Errorf("dpop: refresh: %w", err)
	}
	if tok, err = checkToken(tok, r.c.AllowBearer); err != nil {
		return nil, err
	}
	if tok.RefreshToken != "" {
		r.refreshToken = tok.RefreshToken
	}
	return tok, nil
}
