package dpoptest

import (
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Config configures a [Server]. The zero value (or a nil *Config) gives a
// server without nonces, accepting the algorithms listed by
// [Verifier.AllowedAlgs] of a zero Verifier, with the default clients (see
// Clients).
type Config struct {
	// RequireNonce makes the authorization server and the resource server
	// demand a server-provided nonce (RFC 9449 §8, §9): a proof without the
	// current nonce gets a use_dpop_nonce challenge carrying it. Every
	// response of either server then carries its current DPoP-Nonce.
	RequireNonce bool

	// NonceEvery rotates each nonce after this many proofs accepted by its
	// server; 0 means never by count. By default only the current nonce is
	// accepted, so a client that ignores the DPoP-Nonce of a 2xx response
	// pays a challenge and a retry after each rotation.
	NonceEvery int

	// NonceTTL rotates each nonce when it is this old, by the server's
	// clock, as servers that rotate on a timer do; 0 means never by time.
	// It combines with NonceEvery: whichever comes first.
	NonceTTL time.Duration

	// NoNonceOnSuccess keeps the current nonce out of successful (2xx)
	// responses: only refusals (challenges and OAuth errors) carry a
	// DPoP-Nonce header. By default every response carries it, which
	// RFC 9449 §8.2 and §9 allow; with this set, a client learns of a
	// rotation only from the next challenge.
	NoNonceOnSuccess bool

	// NonceWindow is how many of the newest nonces are accepted: the
	// current one and NonceWindow-1 before it. 0 or 1 accepts the current
	// nonce only. Real servers keep a window so that requests in flight
	// during a rotation, and their retries, still pass.
	NonceWindow int

	// Algs, MaxSkew and Now configure the [Verifier]; see its fields. Now
	// (shifted by ClockOffset) is also the server's clock for token, code,
	// device code and nonce lifetimes and for the Date header.
	Algs    []string
	MaxSkew time.Duration
	Now     func() time.Time

	// ClockOffset shifts the server's clock: it reads Now() + ClockOffset.
	// The shifted clock is the one the Verifier checks iat against, the one
	// token lifetimes use, and the one the Date header of every response
	// shows (RFC 9110 §6.6.1), so tests can play a client whose clock is
	// off by -ClockOffset.
	ClockOffset time.Duration

	// TokenTTL is the access token lifetime. If zero, one hour.
	TokenTTL time.Duration

	// TokenType is the token_type the token endpoint answers. If empty,
	// "DPoP" (RFC 9449 §5). "Bearer" lets client tests see a downgrade;
	// the token is still bound to the proof's key.
	TokenType string

	// Clients are the registered clients. If nil, two: the confidential
	// client "backend" with secret "backend-secret", and the public client
	// "cli"; both have the redirect URI http://127.0.0.1/callback, which
	// for "cli" matches any port (RFC 8252 §7.3).
	Clients []Client

	// DeviceInterval is the minimum time between two polls of one device
	// code (RFC 8628 §3.5); a faster poll gets slow_down and raises the
	// minimum by 5 seconds. If zero, one second. If negative, polls are
	// never too fast. The interval advertised is rounded up to whole
	// seconds, at least 1.
	DeviceInterval time.Duration

	// DeviceCodeTTL is the lifetime of a device code. If zero, 10 minutes.
	DeviceCodeTTL time.Duration

	// FAPI2 makes the server check what the OpenID Foundation's
	// conformance suite checks of a FAPI 2.0 Security Profile client using
	// DPoP, on top of the checks it always makes (proof typ, a public jwk,
	// htm, iat, a unique jti, ath only with a token, PKCE S256, dpop_jkt
	// and the code's key binding):
	//
	//   - proof algorithms PS256, ES256 and EdDSA only (Algs is filtered);
	//   - htu string-equal to the request URL without query and fragment,
	//     not merely equal after normalisation;
	//   - iat within MaxSkew, 5 minutes if zero;
	//   - nonces required (RequireNonce), rotated after every accepted
	//     proof (NonceEvery 1 unless set) and never announced on a 2xx
	//     (NoNonceOnSuccess), so each request is challenged once and one
	//     retry must succeed;
	//   - the resource server's challenges spell the scheme "dPoP", which
	//     clients must compare case-insensitively (RFC 9110 §11.1);
	//   - every authorization request pushed first (PAR, RFC 9126);
	//   - client authentication with private_key_jwt only (RFC 7523 §2.2),
	//     the assertion's aud exactly the issuer [Server.URL] as a string.
	FAPI2 bool
}

// fapiAlgs are the JWS algorithms FAPI 2.0 allows (FAPI 2.0 Security
// Profile §5.4.1).
var fapiAlgs = []jose.SignatureAlgorithm{jose.PS256, jose.ES256, jose.EdDSA}

// defaultClients returns a new copy of the clients of Config.Clients nil.
func defaultClients() []Client {
	return []Client{
		{ID: "backend", Secret: "backend-secret", RedirectURIs: []string{"http://127.0.0.1/callback"}},
		{ID: "cli", RedirectURIs: []string{"http://127.0.0.1/callback"}},
	}
}

// withDefaults returns a copy of cfg (nil means the zero Config) with the
// documented defaults filled in.
func withDefaults(cfg *Config) Config {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = time.Hour
	}
	if c.TokenType == "" {
		c.TokenType = "DPoP"
	}
	if c.Clients == nil {
		c.Clients = defaultClients()
	}
	if c.DeviceInterval == 0 {
		c.DeviceInterval = time.Second
	}
	if c.DeviceCodeTTL <= 0 {
		c.DeviceCodeTTL = 10 * time.Minute
	}
	if c.FAPI2 {
		fapiDefaults(&c)
	}
	return c
}

// fapiDefaults applies what Config.FAPI2 implies.
func fapiDefaults(c *Config) {
	c.RequireNonce = true
	c.NoNonceOnSuccess = true
	if c.NonceEvery == 0 {
		c.NonceEvery = 1
	}
	if c.MaxSkew == 0 {
		c.MaxSkew = 5 * time.Minute
	}
	var algs []string
	for _, a := range fapiAlgs {
		if c.Algs == nil || slices.Contains(c.Algs, string(a)) {
			algs = append(algs, string(a))
		}
	}
	c.Algs = algs
}
