package resource

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// JWTOptions configures a [JWTVerifier]. A nil *JWTOptions, and every zero
// field, means the default.
type JWTOptions struct {
	// Client makes the requests to the authorization server (metadata and
	// key set). If nil, [http.DefaultClient]. Redirects are followed only
	// within the origin of the URL asked.
	Client *http.Client

	// JWKSURL is the URL of the issuer's key set (RFC 7517 §5). If empty,
	// it is the jwks_uri of the issuer's metadata (RFC 8414 §2), fetched by
	// [NewJWTVerifier]. It must be https, or http on a loopback address.
	JWKSURL string

	// Algs are the signature algorithms accepted, among RS256, RS384,
	// RS512, PS256, PS384, PS512, ES256, ES384, ES512 and EdDSA. If nil,
	// all of those. none and the HMAC algorithms (HS256, ...) are never
	// accepted: a resource server holds no secret shared with the issuer,
	// and an HMAC "verified" with a public key proves nothing.
	Algs []string

	// Leeway is the clock skew tolerated in exp, nbf and iat. If zero, 30
	// seconds; if negative, none.
	Leeway time.Duration

	// MinRefreshInterval is the least time between two fetches of the key
	// set: a token naming a key the set does not hold makes the verifier
	// fetch the set again, at most once per MinRefreshInterval whatever
	// tokens arrive; a token whose key is not there even then is refused.
	// If zero, 30 seconds; if negative, no bound (concurrent fetches are
	// still shared): for tests, never for an API on the Internet.
	MinRefreshInterval time.Duration

	// MaxKeySetAge is how long a fetched key set is used before it is
	// fetched again (by the next token that arrives), so that a key the
	// issuer withdraws stops being accepted. If the fetch fails, the old
	// set stays in use. If zero, one hour; if negative, the set is fetched
	// again whenever MinRefreshInterval allows.
	MaxKeySetAge time.Duration

	// Timeout bounds each request to the authorization server. If zero or
	// negative, 10 seconds.
	Timeout time.Duration

	// CacheSize is how many verified tokens are remembered (by their
	// SHA-256 hash), each until its exp and never past the key set it was
	// verified with, so that a token presented again costs no signature
	// check. If zero, 10000; if negative, none.
	CacheSize int

	// Now is the clock. If nil, [time.Now].
	Now func() time.Time
}

// JWTVerifier verifies JWT access tokens (RFC 9068) issued by one
// authorization server for one resource server, with the keys of the
// issuer's key set (RFC 7517 §5). Create one with [NewJWTVerifier]; its
// methods are safe for concurrent use.
//
// The key set is cached. A token naming a key (kid) the set does not hold
// makes the verifier fetch the set again, as key rotation requires (OpenID
// Connect Core §10.1.1), but at most once per
// [JWTOptions.MinRefreshInterval] whatever tokens arrive, so that tokens
// with made-up kids cannot turn the API into a flood against the issuer;
// concurrent callers share one fetch. A fetch runs on its own, bounded by
// [JWTOptions.Timeout] and 1 MiB: a caller whose context ends stops
// waiting, and the fetch goes on for the others.
type JWTVerifier struct {
	issuer    string
	audience  string
	algs      []jose.SignatureAlgorithm
	leeway    time.Duration
	cacheSize int
	now       func() time.Time
	keys      *keySet
	cache     tokenCache
}

var _ TokenVerifier = (*JWTVerifier)(nil)

// jwtAlgs are the signature algorithms a JWTVerifier may accept: the
// asymmetric ones of RFC 7518 §3.1 and RFC 8037 §3.1.
var jwtAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// maxAccessToken bounds the size of an access token a verifier looks at.
const maxAccessToken = 16 << 10

// NewJWTVerifier returns a verifier of JWT access tokens issued by issuer
// (its issuer identifier, RFC 8414 §2) for audience (this resource
// server's identifier, RFC 9068 §3). Unless opts sets JWKSURL, it reads
// the issuer's metadata (RFC 8414 §3; if not found, OpenID Connect
// Discovery's), whose issuer must equal issuer exactly (§3.3). It then
// fetches the key set, so that a wrong configuration shows at startup. ctx
// bounds those requests only.
func NewJWTVerifier(ctx context.Context, issuer, audience string, opts *JWTOptions) (*JWTVerifier, error) {
	if opts == nil {
		opts = &JWTOptions{}
	}
	if _, err := httpsURL("issuer", issuer); err != nil {
		return nil, err
	}
	if audience == "" {
		return nil, errors.New("dpop: NewJWTVerifier: audience is empty (RFC 9068 §4 requires an aud check)")
	}
	algs, err := jwtAlgList(opts.Algs)
	if err != nil {
		return nil, err
	}
	v := &JWTVerifier{
		issuer:    issuer,
		audience:  audience,
		algs:      algs,
		leeway:    durationOption(opts.Leeway, 30*time.Second),
		cacheSize: opts.CacheSize,
		now:       opts.Now,
	}
	if v.cacheSize == 0 {
		v.cacheSize = 10000
	}
	if v.now == nil {
		v.now = time.Now
	}
	timeout := timeoutOption(opts.Timeout)
	client := issuerClient(opts.Client, true)
	jwksURL := opts.JWKSURL
	if jwksURL == "" {
		if jwksURL, err = discoverJWKS(ctx, client, issuer, timeout); err != nil {
			return nil, err
		}
	} else if _, err := httpsURL("JWKSURL", jwksURL); err != nil {
		return nil, err
	}
	v.keys = &keySet{
		url:      jwksURL,
		client:   client,
		timeout:  timeout,
		interval: durationOption(opts.MinRefreshInterval, 30*time.Second),
		maxAge:   durationOption(opts.MaxKeySetAge, time.Hour),
		now:      v.now,
	}
	if err := v.keys.load(ctx); err != nil {
		return nil, err
	}
	if !v.usableKey() {
		return nil, &IssuerError{URL: jwksURL, StatusCode: http.StatusOK,
			Err: fmt.Errorf("key set has no key for the algorithms accepted, %v", algs)}
	}
	return v, nil
}

// jwtAlgList checks the configured algorithms, nil meaning all of jwtAlgs.
func jwtAlgList(names []string) ([]jose.SignatureAlgorithm, error) {
	if names == nil {
		return jwtAlgs, nil
	}
	if len(names) == 0 {
		return nil, errors.New("dpop: JWTOptions.Algs is empty")
	}
	algs := make([]jose.SignatureAlgorithm, 0, len(names))
	for _, n := range names {
		a := jose.SignatureAlgorithm(n)
		ok := false
		for _, b := range jwtAlgs {
			ok = ok || a == b
		}
		if !ok {
			return nil, fmt.Errorf("dpop: JWTOptions.Algs: %s is not an asymmetric JWS algorithm (RFC 7518 §3.1, RFC 8037 §3.1)", quoteUntrusted(n))
		}
		algs = append(algs, a)
	}
	return algs, nil
}

// timeoutOption returns d, or issuerTimeout when d is not positive.
func timeoutOption(d time.Duration) time.Duration {
	if d <= 0 {
		return issuerTimeout
	}
	return d
}

// durationOption returns d, or def when d is zero, or 0 when d is negative.
func durationOption(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// usableKey reports whether the key set holds a key for an accepted
// algorithm.
func (v *JWTVerifier) usableKey() bool {
	keys, _, _ := v.keys.current()
	for i := range keys {
		for _, a := range v.algs {
			if jwksKeyFits(&keys[i], string(a)) {
				return true
			}
		}
	}
	return false
}

// VerifyToken verifies token as a JWT access token (RFC 9068 §4) and
// returns what it grants. In order: a JWS in compact serialization of at
// most 16 KiB, typ "at+jwt" (or "application/at+jwt"), an accepted alg,
// no crit or b64 header parameter (RFC 7515 §4.1.11, RFC 7797 §7),
// the signature with the issuer's key named by kid, then the claims: iss
// equal to the issuer, aud holding the audience, exp (required) not
// passed, nbf passed and iat not in the future, within the leeway, and
// cnf.jkt, when present, a SHA-256 thumbprint (RFC 9449 §6.1). Nothing is
// read from the claims before the signature is verified.
//
// A refusal is a *[TokenError]. When the key set had to be fetched and the
// fetch failed, the error is an *[IssuerError]: the token may be valid.
// The returned AccessToken may be shared with other calls for the same
// token (its Audience, Scopes and Claims) and must not be modified.
func (v *JWTVerifier) VerifyToken(ctx context.Context, token string) (*AccessToken, error) {
	if len(token) > maxAccessToken {
		return nil, &TokenError{Err: fmt.Errorf("longer than %d bytes", maxAccessToken)}
	}
	now := v.now()
	var key tokenKey
	if v.cacheSize > 0 {
		key = sha256.Sum256([]byte(token))
		if e, ok := v.cache.get(key, now); ok {
			if _, gen, stale := v.keys.current(); !stale && gen == e.gen {
				return copyToken(e.at), nil
			}
		}
	}
	_, gen, _ := v.keys.current()
	at, err := v.verify(ctx, token, now)
	if err != nil {
		return nil, err
	}
	if v.cacheSize > 0 {
		// gen is the generation before verifying: if the set was fetched
		// meanwhile, the entry is merely checked again next time.
		v.cache.put(key, cacheEntry{at: at, until: at.Expiry, gen: gen}, now, v.cacheSize)
		at = copyToken(at)
	}
	return at, nil
}

// verify makes the checks of VerifyToken.
func (v *JWTVerifier) verify(ctx context.Context, token string, now time.Time) (*AccessToken, error) {
	jws, err := jose.ParseSignedCompact(token, v.algs)
	if err != nil {
		var ae *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &ae) {
			return nil, &TokenError{Claim: "alg", Err: fmt.Errorf("alg %s is not accepted", quoteUntrusted(string(ae.Got)))}
		}
		return nil, &TokenError{Err: errors.New("not a JWS in compact serialization")}
	}
	h := jws.Signatures[0].Protected
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, &TokenError{Claim: "typ", Err: fmt.Errorf("typ %s; want \"at+jwt\" (RFC 9068 §4)", quoteUntrusted(typ))}
	}
	if _, ok := h.ExtraHeaders["b64"]; ok {
		// RFC 7797 §7: an unencoded payload is not a JWT.
		return nil, &TokenError{Claim: "b64", Err: errors.New("b64 header parameter in a JWT")}
	}
	if _, ok := h.ExtraHeaders["crit"]; ok {
		// RFC 7515 §4.1.11: no extension is understood here.
		return nil, &TokenError{Claim: "crit", Err: errors.New("crit header parameter names an extension not understood")}
	}
	payload, err := v.keys.verify(ctx, jws, h.KeyID, h.Algorithm)
	if err != nil {
		return nil, err
	}
	c, all, err := decodeTokenClaims(payload)
	if err != nil {
		return nil, err
	}
	err = c.check(tokenChecks{issuer: v.issuer, audience: v.audience, needExp: true, now: now, leeway: v.leeway})
	if err != nil {
		return nil, err
	}
	return c.accessToken(all), nil
}
