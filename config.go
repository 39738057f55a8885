package dpop

import (
	"context"
	"fmt"
	"log/slog"
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

	// ClientAssertion, when set, authenticates the client with
	// private_key_jwt (RFC 7523 §2.2): every request that authenticates the
	// client (code exchange, refresh, device authorization and polls, PAR)
	// carries a new assertion, the nonce retry included. OAuth2.ClientSecret
	// must then be empty, and Issuer set.
	ClientAssertion *AssertionSigner

	// Issuer is the authorization server's issuer identifier
	// ([Metadata.Issuer], RFC 8414 §2): the aud of client assertions, and
	// the iss that [Config.VerifyAuthResponse] expects in the authorization
	// response (RFC 9207).
	Issuer string

	// Trace, if set, is told of each token request and its outcome, and
	// of the proofs and challenges of the token-side requests and of the
	// client's requests.
	Trace *Trace

	// FAPI2 enforces the FAPI 2.0 Security Profile (§5.3.2, §5.4) on the
	// client side, with DPoP as the sender constraint and private_key_jwt
	// as the client authentication. A Config that cannot meet it
	// fails before its first request with an error naming each problem:
	// its Signer and ClientAssertion must sign with PS256, ES256 or EdDSA,
	// Issuer and every endpoint (PARURL included) must be https (http only
	// on loopback addresses), and AllowBearer must be off. Authorization
	// requests then go through [Config.PushAuthCodeURL] only, with PKCE
	// S256 and a redirect URI; code exchanges must carry the PKCE
	// verifier; [Config.VerifyAuthResponse] requires iss.
	FAPI2 bool

	ownNonces lazyNonceCache
}

func (c Config) summary() summary {
	var id, tokenURL string
	if c.OAuth2 != nil {
		id, tokenURL = c.OAuth2.ClientID, c.OAuth2.Endpoint.TokenURL
	}
	return summary{"dpop.Config", []slog.Attr{
		slog.String("ClientID", id), slog.String("TokenURL", redactURL(tokenURL)), signerAttr("Signer", c.Signer),
	}}
}

// Format prints the client's ID, the token endpoint (without userinfo or
// query) and the signer's algorithm and thumbprint; never the client
// secret or a key, whatever the verb.
func (c Config) Format(f fmt.State, verb rune) { c.summary().format(f) }

// LogValue is the summary Format prints, for log/slog.
func (c Config) LogValue() slog.Value { return c.summary().logValue() }

// MarshalJSON is the summary Format prints, as a JSON object: the client
// secret is left out.
func (c Config) MarshalJSON() ([]byte, error) { return c.summary().marshalJSON() }

// AuthCodeURL returns the authorization URL of [oauth2.Config.AuthCodeURL]
// with the dpop_jkt parameter (RFC 9449 §10), which binds the authorization
// code to the signer's key. Pass oauth2.S256ChallengeOption(verifier) for
// PKCE (RFC 7636).
//
// It panics, with a message naming the problem, when c is not usable (a
// missing OAuth2 or Signer, say), or when FAPI2 is set: the profile sends
// every authorization request through PAR ([Config.PushAuthCodeURL]).
func (c *Config) AuthCodeURL(state string, opts ...oauth2.AuthCodeOption) string {
	if err := c.check(); err != nil {
		panic(err.Error()) // AuthCodeURL has no error result; the message names the missing field
	}
	if c.FAPI2 {
		panic("dpop: Config.AuthCodeURL: with FAPI2 every authorization request goes through PAR: use Config.PushAuthCodeURL")
	}
	return c.authCodeURL(state, opts...)
}

func (c *Config) authCodeURL(state string, opts ...oauth2.AuthCodeOption) string {
	opts = append(opts[:len(opts):len(opts)], oauth2.SetAuthURLParam("dpop_jkt", c.Signer.Thumbprint()))
	return c.oauth2().AuthCodeURL(state, opts...)
}

// Exchange converts an authorization code into a DPoP-bound token (RFC 6749
// §4.1.3, RFC 9449 §5). Pass oauth2.VerifierOption(verifier) for PKCE.
func (c *Config) Exchange(ctx context.Context, code string, opts ...oauth2.AuthCodeOption) (*oauth2.Token, error) {
	if ctx == nil {
		return nil, nilContextError("Config.Exchange")
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	p, start := c.parts(), timeNow()
	tok, err := c.oauth2().Exchange(tokenContext(ctx, p), code, opts...)
	if err != nil {
		err = requestErrorAt("code exchange", c.OAuth2.Endpoint.TokenURL, err)
	} else {
		tok, err = checkToken(tok, c.AllowBearer)
	}
	return p.obtained(ctx, GrantAuthorizationCode, start, tok, err)
}

// TokenSource returns a token source that returns tok until it expires, or
// until a server refuses it, and then refreshes it with the same key (RFC
// 9449 §5), checking each new token as Exchange does; concurrent callers
// wait for one refresh. A [Transport] waits for a refresh no longer than
// its request's context; the refresh itself runs with ctx (its
// [oauth2.HTTPClient]), and for at most a minute when ctx has no deadline.
// Save the returned tokens if the refresh token must survive the process:
// the keystore package has a wrapper that does.
//
// A tok with a refresh token and no access token is refreshed at the first
// call. A Config that c's checks refuse (a FAPI2 one that the profile
// forbids, say) makes a source that returns that error from every call,
// and never hands out tok.
func (c *Config) TokenSource(ctx context.Context, tok *oauth2.Token) TokenSource {
	s := newReuseSource(ctx, tok, c.refresh, hasRefreshToken)
	if ctx == nil {
		s.err = nilContextError("Config.TokenSource")
	} else if err := c.check(); err != nil {
		s.err = err
	}
	return s
}

// Client returns an HTTP client whose requests carry tok (refreshed as
// needed) with a DPoP proof. Its Transport's Base is the context's
// [oauth2.HTTPClient] transport, if one is set. Each client has its own
// resource-server nonce cache. Its requests fail, and send nothing, when
// c's checks refuse it, as [Config.TokenSource]'s calls do.
func (c *Config) Client(ctx context.Context, tok *oauth2.Token) *http.Client {
	return dpopClient(ctx, c.TokenSource(ctx, tok), c.Signer, c.AllowBearer, c.Trace)
}

func (c *Config) check() error {
	p := grantParts{owner: "Config", hasOAuth2: c.OAuth2 != nil, signer: c.Signer,
		assertion: c.ClientAssertion, issuer: c.Issuer, allowBearer: c.AllowBearer, fapi2: c.FAPI2}
	if c.OAuth2 != nil {
		e := c.OAuth2.Endpoint
		p.clientID, p.secret, p.style = c.OAuth2.ClientID, c.OAuth2.ClientSecret, e.AuthStyle
		p.endpoints = []endpoint{
			{"OAuth2.Endpoint.AuthURL", e.AuthURL, true},
			{"OAuth2.Endpoint.TokenURL", e.TokenURL, true},
			{"OAuth2.Endpoint.DeviceAuthURL", e.DeviceAuthURL, false},
			{"PARURL", c.PARURL, true},
			{"RevocationURL", c.RevocationURL, false},
		}
	}
	return p.check()
}

// clientAuth returns how c's token requests authenticate the client with
// private_key_jwt, or nil when they do not.
func (c *Config) clientAuth() *clientAuth {
	if c.ClientAssertion == nil {
		return nil
	}
	return &clientAuth{assertion: c.ClientAssertion, clientID: c.OAuth2.ClientID, audience: c.Issuer, fapi2: c.FAPI2}
}

// oauth2 returns a copy of c.OAuth2 with the authentication style pinned.
func (c *Config) oauth2() *oauth2.Config {
	cfg := *c.OAuth2
	cfg.Endpoint.AuthStyle = pinAuthStyle(cfg.Endpoint.AuthStyle, cfg.ClientSecret)
	return &cfg
}

func (c *Config) nonces() *NonceCache { return c.ownNonces.get(c.Nonces) }

// parts returns what c's token-side requests share.
func (c *Config) parts() tokenParts {
	return tokenParts{signer: c.Signer, nonces: c.nonces(), auth: c.clientAuth(), trace: c.Trace, tokenURL: c.OAuth2.Endpoint.TokenURL}
}

// refresh gets a new token with prev's refresh token (RFC 6749 §6).
func (c *Config) refresh(ctx context.Context, prev *oauth2.Token) (*oauth2.Token, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if !hasRefreshToken(prev) {
		return nil, ErrNoRefreshToken
	}
	p, start := c.parts(), timeNow()
	tok, err := c.oauth2().TokenSource(tokenContext(ctx, p), &oauth2.Token{RefreshToken: prev.RefreshToken}).Token()
	if err != nil {
		err = requestErrorAt("refresh", c.OAuth2.Endpoint.TokenURL, err)
	} else {
		tok, err = checkToken(tok, c.AllowBearer)
	}
	return p.obtained(ctx, GrantRefreshToken, start, tok, err)
}

func hasRefreshToken(tok *oauth2.Token) bool { return tok != nil && tok.RefreshToken != "" }
