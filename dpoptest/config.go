package dpoptest

import "time"

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

	// NonceWindow is how many of the newest nonces are accepted: the
	// current one and NonceWindow-1 before it. 0 or 1 accepts the current
	// nonce only. Real servers keep a window so that requests in flight
	// during a rotation, and their retries, still pass.
	NonceWindow int

	// Algs, MaxSkew and Now configure the [Verifier]; see its fields. Now is
	// also the server's clock for token, code and device code lifetimes.
	Algs    []string
	MaxSkew time.Duration
	Now     func() time.Time

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
}

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
	return c
}
