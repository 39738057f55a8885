package dpop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
)

// Config obtains DPoP-bound tokens (RFC 9449 §5) through an
// [oauth2.Config]: every token-endpoint request carries a proof from Signer,
// the authorization server's nonce challenge is answered inside the
// transport, and every token answered must have token_type DPoP.
//
// The required fields are OAuth2 and Signer. A Config is safe for concurrent
// use; do not copy it after first use.
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

	// AllowBearer accepts a token_type of Bearer, which means the server
	// ignored DPoP and issued an unbound token (a downgrade). By default
	// that is a [*TokenTypeError]. The client of [Config.Client] then
	// sends such a token with the Bearer scheme ([Transport.AllowBearer]).
	AllowBearer bool

	ownNonces lazyNonces
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
	return checkedToken(tok, c.AllowBearer)
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
	return &http.Client{Transport: &Transport{
		Base:        contextTransport(ctx),
		Source:      c.TokenSource(ctx, tok),
		Signer:      c.Signer,
		AllowBearer: c.AllowBearer,
	}}
}

// DeviceAuth starts the device authorization grant (RFC 8628 §3.1). The
// request needs no proof; the token requests that follow carry one.
func (c *Config) DeviceAuth(ctx context.Context, opts ...oauth2.AuthCodeOption) (*oauth2.DeviceAuthResponse, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	da, err := c.oauth2().DeviceAuth(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("dpop: device authorization: %w", err)
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
		return nil, fmt.Errorf("dpop: device access token: %w", err)
	}
	return checkedToken(tok, c.AllowBearer)
}

func (c *Config) check() error {
	switch {
	case c.OAuth2 == nil:
		return errors.New("dpop: Config's OAuth2 is nil")
	case c.Signer == nil:
		return errors.New("dpop: Config's Signer is nil")
	}
	return nil
}

// oauth2 returns a copy of c.OAuth2 with the authentication style pinned.
func (c *Config) oauth2() *oauth2.Config {
	cfg := *c.OAuth2
	cfg.Endpoint.AuthStyle = pinAuthStyle(cfg.Endpoint.AuthStyle, cfg.ClientSecret)
	return &cfg
}

// pinAuthStyle replaces AuthStyleAutoDetect with client_secret_basic (RFC
// 6749 §2.3.1) for a confidential client. A public client (no secret)
// always sends client_id in the body and nothing else (§3.2.1), whatever
// the style: x/oauth2's AuthStyleInHeader would send "Basic id:" with an
// empty password.
func pinAuthStyle(style oauth2.AuthStyle, secret string) oauth2.AuthStyle {
	switch {
	case secret == "":
		return oauth2.AuthStyleInParams
	case style == oauth2.AuthStyleAutoDetect:
		return oauth2.AuthStyleInHeader
	}
	return style
}

func (c *Config) nonces() *NonceCache { return c.ownNonces.or(c.Nonces) }

func (c *Config) tokenContext(ctx context.Context) context.Context {
	return tokenContext(ctx, c.Signer, c.nonces())
}

// tokenContext returns ctx with tokenClient as its oauth2.HTTPClient, for
// x/oauth2's token requests.
func tokenContext(ctx context.Context, s *Signer, nonces *NonceCache) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, tokenClient(ctx, s, nonces))
}

// tokenClient returns a copy of the context's HTTP client that sends
// proofs without tokens (token endpoint, PAR) and bounds response sizes.
func tokenClient(ctx context.Context, s *Signer, nonces *NonceCache) *http.Client {
	hc := &http.Client{}
	if orig, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && orig != nil {
		*hc = *orig
	}
	hc.Transport = &Transport{
		Base:   limitedTransport{contextTransport(ctx)},
		Signer: s,
		Nonces: nonces,
	}
	return hc
}

// contextTransport returns the transport of the context's oauth2.HTTPClient,
// or http.DefaultTransport.
func contextTransport(ctx context.Context) http.RoundTripper {
	if hc, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && hc != nil && hc.Transport != nil {
		return hc.Transport
	}
	return http.DefaultTransport
}

// MaxTokenResponse is the largest token-endpoint response body accepted.
// Token responses are small; JWT access tokens make them a few KiB.
const MaxTokenResponse = 256 << 10

// limitedTransport fails the body of a token-endpoint response that is
// larger than MaxTokenResponse, with an error that says so (x/oauth2 would
// otherwise truncate it at 1 MiB and report unparsable JSON).
type limitedTransport struct{ base http.RoundTripper }

func (l limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: MaxTokenResponse}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

var errTokenResponseTooLarge = fmt.Errorf("dpop: token endpoint response is larger than %d bytes", MaxTokenResponse)

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Allow EOF exactly at the limit; anything more is an error.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errTokenResponseTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// ErrNoRefreshToken is returned by a [Config.TokenSource] whose token has
// expired when there is no refresh token to renew it: the user must log in
// again.
var ErrNoRefreshToken = errors.New("dpop: token expired and there is no refresh token")

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
	if tok, err = checkedToken(tok, r.c.AllowBearer); err != nil {
		return nil, err
	}
	if tok.RefreshToken != "" {
		r.refreshToken = tok.RefreshToken
	}
	return tok, nil
}

// checkedToken returns tok if it passes checkToken, else nil and the error:
// a token that failed the checks is never handed out.
func checkedToken(tok *oauth2.Token, allowBearer bool) (*oauth2.Token, error) {
	if err := checkToken(tok, allowBearer); err != nil {
		return nil, err
	}
	return tok, nil
}

// checkToken enforces what RFC 9449 §5 asks of a token response to a DPoP
// request: token_type DPoP (compared case-insensitively), and an expires_in
// that is not negative.
func checkToken(tok *oauth2.Token, allowBearer bool) error {
	tt := tok.TokenType
	switch {
	case strings.EqualFold(tt, "DPoP"):
	case strings.EqualFold(tt, "Bearer") && allowBearer:
	default:
		return &TokenTypeError{TokenType: tt}
	}
	if v, ok := tok.Extra("expires_in").(float64); ok && v < 0 {
		return fmt.Errorf("dpop: token response has a negative expires_in (%v)", v)
	}
	return nil
}

// TokenTypeError reports a token response whose token_type is not DPoP
// (RFC 9449 §5). A Bearer token means the server did not bind the token to
// the key: a downgrade that an attacker who strips the DPoP header can also
// cause.
type TokenTypeError struct {
	TokenType string // as answered; may be empty
}

func (e *TokenTypeError) Error() string {
	if strings.EqualFold(e.TokenType, "Bearer") {
		return "dpop: got a Bearer token where a DPoP-bound token was expected (a downgrade; set AllowBearer to accept it)"
	}
	return fmt.Sprintf("dpop: got token_type %q; want DPoP", e.TokenType)
}

// Downgrade reports whether the server issued a Bearer token.
func (e *TokenTypeError) Downgrade() bool { return strings.EqualFold(e.TokenType, "Bearer") }
