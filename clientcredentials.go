package dpop

import (
	"context"
	"fmt"
	"log/slog"
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

	// ClientAssertion, Issuer and FAPI2 are as in [Config]: with
	// ClientAssertion, every token request carries a new private_key_jwt
	// assertion (RFC 7523 §2.2) whose aud is Issuer; FAPI2 checks the
	// algorithms, client authentication and https endpoints.
	ClientAssertion *AssertionSigner
	Issuer          string
	FAPI2           bool

	// Trace is as in [Config].
	Trace *Trace

	ownNonces lazyNonceCache
}

func (c ClientCredentials) summary() summary {
	var id, tokenURL string
	if c.OAuth2 != nil {
		id, tokenURL = c.OAuth2.ClientID, c.OAuth2.TokenURL
	}
	return summary{"dpop.ClientCredentials", []slog.Attr{
		slog.String("ClientID", id), slog.String("TokenURL", redactURL(tokenURL)), signerAttr("Signer", c.Signer),
	}}
}

// Format prints the client's ID, the token endpoint (without userinfo or
// query) and the signer's algorithm and thumbprint; never the client
// secret or a key, whatever the verb.
func (c ClientCredentials) Format(f fmt.State, verb rune) { c.summary().format(f) }

// LogValue is the summary Format prints, for log/slog.
func (c ClientCredentials) LogValue() slog.Value { return c.summary().logValue() }

// MarshalJSON is the summary Format prints, as a JSON object: the client
// secret is left out.
func (c ClientCredentials) MarshalJSON() ([]byte, error) { return c.summary().marshalJSON() }

// Token requests a new token.
func (c *ClientCredentials) Token(ctx context.Context) (*oauth2.Token, error) {
	if ctx == nil {
		return nil, nilContextError("ClientCredentials.Token")
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	cfg := *c.OAuth2
	cfg.AuthStyle = pinAuthStyle(cfg.AuthStyle, cfg.ClientSecret)
	var auth *clientAuth
	if c.ClientAssertion != nil {
		auth = &clientAuth{assertion: c.ClientAssertion, clientID: cfg.ClientID, audience: c.Issuer, fapi2: c.FAPI2}
	}
	p, start := tokenParts{signer: c.Signer, nonces: c.nonces(), auth: auth, trace: c.Trace, tokenURL: cfg.TokenURL}, timeNow()
	tok, err := cfg.Token(tokenContext(ctx, p))
	if err != nil {
		err = requestErrorAt("client credentials", cfg.TokenURL, err)
	} else {
		tok, err = checkToken(tok, c.AllowBearer)
	}
	return p.obtained(ctx, GrantClientCredentials, start, tok, err)
}

// TokenSource returns a token source that requests a token when it has
// none or the last one expired; concurrent callers wait for one request.
func (c *ClientCredentials) TokenSource(ctx context.Context) TokenSource {
	s := newReuseSource(ctx, nil, func(ctx context.Context, _ *oauth2.Token) (*oauth2.Token, error) {
		return c.Token(ctx)
	}, func(*oauth2.Token) bool { return true })
	if ctx == nil {
		s.err = nilContextError("ClientCredentials.TokenSource")
	}
	return s
}

// Client returns an HTTP client whose requests carry a token from
// TokenSource with a DPoP proof, over the context's oauth2.HTTPClient
// transport if one is set. The client has its own resource-server nonces.
func (c *ClientCredentials) Client(ctx context.Context) *http.Client {
	return dpopClient(ctx, c.TokenSource(ctx), c.Signer, c.AllowBearer, c.Trace)
}

func (c *ClientCredentials) check() error {
	p := grantParts{owner: "ClientCredentials", hasOAuth2: c.OAuth2 != nil, signer: c.Signer,
		assertion: c.ClientAssertion, issuer: c.Issuer, allowBearer: c.AllowBearer, fapi2: c.FAPI2}
	if c.OAuth2 != nil {
		p.clientID, p.secret, p.style = c.OAuth2.ClientID, c.OAuth2.ClientSecret, c.OAuth2.AuthStyle
		p.endpoints = []endpoint{{"OAuth2.TokenURL", c.OAuth2.TokenURL, true}}
	}
	return p.check()
}

func (c *ClientCredentials) nonces() *NonceCache { return c.ownNonces.get(c.Nonces) }
