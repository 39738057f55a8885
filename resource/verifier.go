package resource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Defaults of a [Config].
const (
	defaultMaxAge    = 60 * time.Second
	defaultMaxFuture = 5 * time.Second
)

// defaultAlgs are the proof algorithms accepted when [Config.Algs] is nil.
var defaultAlgs = []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256"}

// Config configures a [Verifier]. Only Tokens is required.
type Config struct {
	// Tokens verifies the access tokens presented (RFC 9068 JWTs or
	// RFC 7662 introspection). The key binding (cnf.jkt) is read only from
	// a token it verified.
	Tokens TokenVerifier

	// PublicURLs are the URLs at which clients reach the API, such as
	// "https://api.example.com" or "https://example.com/api". A proof's htu
	// must name one of them followed by the request's path (RFC 9449 §4.3
	// point 9). The path of a public URL is the prefix a proxy in front
	// removes before the request reaches the API; leave it out when the
	// path arrives as the client sent it.
	//
	// If nil, the public URL is the request's own scheme (TLS or not) and
	// Host header, which is right only when no proxy stands in front and
	// the server answers for the hosts it is configured for: an API that
	// answers any Host lets a proof made for another server in. Behind
	// proxies, set PublicURLs or TrustedProxies.
	PublicURLs []string

	// TrustedProxies are the addresses of the proxies in front of the API
	// whose forwarding headers say what the public URL is: RFC 7239
	// Forwarded, or X-Forwarded-Proto, X-Forwarded-Host and
	// X-Forwarded-Prefix with X-Forwarded-For. They are read only when the
	// request comes straight from one of these addresses, and only as far
	// as trusted proxies wrote them. Each trusted proxy must set or remove
	// every one of these headers it gets from a client, or append to the
	// list. If nil, they are never read. Set PublicURLs or TrustedProxies,
	// not both.
	TrustedProxies []netip.Prefix

	// Algs are the proof algorithms accepted (RFC 9449 §4.3 point 5),
	// announced in the algs parameter of challenges (§7.1): any of ES256,
	// ES384, ES512, EdDSA (Ed25519), Ed25519 (RFC 9864's name for EdDSA
	// on Ed25519), PS256, PS384, PS512, RS256, RS384, RS512. If nil:
	// ES256, ES384, ES512, EdDSA, PS256 and RS256. none and the symmetric
	// HS* are never accepted.
	Algs []string

	// MaxAge is how old a proof's iat may be (RFC 9449 §11.1). If zero,
	// 60 seconds.
	MaxAge time.Duration

	// MaxFuture is how far after the server's clock a proof's iat may be,
	// for clients whose clocks run ahead. If zero, 5 seconds.
	MaxFuture time.Duration

	// Nonces issues the server nonces (RFC 9449 §9). When set, the
	// DPoP-Nonce header is on every response the Handler passes or refuses
	// (§8.2), and a valid nonce in a proof stands in for MaxAge (§11.1) as
	// far back as the nonce was accepted (one time step before its own),
	// never further: an iat older than its nonce, or ahead by more than
	// MaxFuture, is refused (the FAPI 2.0 negative tests send an iat an
	// hour off with a valid nonce). A proof without a nonce whose iat is
	// off gets a use_dpop_nonce challenge. If nil, no nonces are issued.
	Nonces *NonceIssuer

	// RequireNonce says which requests need a nonce in their proof. If nil
	// and Nonces is set, every request does. [Verifier.Verify] calls it
	// with a request made of its [Request]'s method and URL.
	RequireNonce func(*http.Request) bool

	// Replay records the proofs accepted, so that none is accepted twice
	// (RFC 9449 §11.1). If nil, a [MemoryStore] with its defaults: right
	// for one instance; instances that share clients need a shared store.
	Replay ReplayStore

	// AllowBearer, for a migration, accepts unbound tokens presented with
	// the Bearer scheme (RFC 6750) beside DPoP; a token bound by cnf is
	// refused as Bearer all the same (RFC 9449 §7.2). Challenges then
	// offer both schemes.
	AllowBearer bool

	// ResourceMetadata is the URL of the API's protected resource metadata
	// (RFC 9728 §3), announced in the resource_metadata parameter of
	// challenges (RFC 9728 §5.1). If empty, none is.
	ResourceMetadata string

	// Trace receives what the Verifier decides. If nil, nothing is traced.
	Trace *Trace

	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

// Verifier checks the requests a DPoP-protected API receives: the access
// token and its binding, the DPoP proof and its freshness, and replays
// (RFC 9449 §4.3, §7, §9, §11.1). Its Handler method is net/http
// middleware, Check serves other net/http code, and Verify other
// transports. Every refusal is an [*Error].
//
// The checks run cheapest first: the headers' sizes and syntax; the proof
// (its header and key, cached per client, its signature and its claims);
// then the token, through the TokenVerifier; then the binding of the token
// to the proof's key; then the replay check, which records the proof.
//
// A Verifier is safe for concurrent use. Make it with [NewVerifier].
type Verifier struct {
	tokens       TokenVerifier
	bases        []string       // normal public base URLs, no trailing "/"; nil: from the request
	proxies      []netip.Prefix // trusted proxies
	algs         []string       // accepted algorithms
	algsParam    string         // algs, space-separated (RFC 9449 §7.1)
	maxAge       time.Duration
	maxFuture    time.Duration
	nonces       *NonceIssuer
	requireNonce func(*http.Request) bool
	replay       ReplayStore
	allowBearer  bool
	metadata     string
	trace        *Trace
	now          func() time.Time

	keys keyCache
}

// NewVerifier returns a Verifier for c, or an error naming the field of c
// that is wrong.
func NewVerifier(c Config) (*Verifier, error) {
	v := &Verifier{
		tokens:       c.Tokens,
		proxies:      c.TrustedProxies,
		maxAge:       c.MaxAge,
		maxFuture:    c.MaxFuture,
		nonces:       c.Nonces,
		requireNonce: c.RequireNonce,
		replay:       c.Replay,
		allowBearer:  c.AllowBearer,
		metadata:     c.ResourceMetadata,
		trace:        c.Trace,
		now:          c.Now,
	}
	if v.tokens == nil {
		return nil, errors.New("dpop: Config.Tokens is nil")
	}
	if c.PublicURLs != nil && c.TrustedProxies != nil {
		return nil, errors.New("dpop: Config.PublicURLs and Config.TrustedProxies are both set; set one")
	}
	if c.PublicURLs != nil && len(c.PublicURLs) == 0 {
		return nil, errors.New("dpop: Config.PublicURLs is empty")
	}
	for _, raw := range c.PublicURLs {
		b, err := publicBase(raw)
		if err != nil {
			return nil, fmt.Errorf("dpop: Config.PublicURLs: %s: %w", quoteUntrusted(raw), err)
		}
		v.bases = append(v.bases, b)
	}
	v.proxies = nil
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("dpop: Config.TrustedProxies: %v is not a valid prefix", p)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 { // compared with unmapped addresses
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		v.proxies = append(v.proxies, p.Masked())
	}
	algs := c.Algs
	if algs == nil {
		algs = defaultAlgs
	}
	if len(algs) == 0 {
		return nil, errors.New("dpop: Config.Algs is empty")
	}
	for _, a := range algs {
		if _, ok := supportedAlgs[a]; !ok {
			return nil, fmt.Errorf("dpop: Config.Algs: %s is not an asymmetric signature algorithm this package verifies", quoteUntrusted(a))
		}
	}
	v.algs = append([]string(nil), algs...)
	v.algsParam = strings.Join(v.algs, " ")
	if v.maxAge < 0 || v.maxFuture < 0 {
		return nil, errors.New("dpop: Config.MaxAge or Config.MaxFuture is negative")
	}
	if v.maxAge == 0 {
		v.maxAge = defaultMaxAge
	}
	if v.maxFuture == 0 {
		v.maxFuture = defaultMaxFuture
	}
	if v.nonces != nil && v.nonces.step == 0 {
		return nil, errors.New("dpop: Config.Nonces was not made by NewNonceIssuer")
	}
	if v.requireNonce != nil && v.nonces == nil {
		return nil, errors.New("dpop: Config.RequireNonce is set and Config.Nonces is nil")
	}
	if v.metadata != "" {
		if u, err := url.Parse(v.metadata); err != nil || !u.IsAbs() || !quotable(v.metadata) {
			return nil, fmt.Errorf("dpop: Config.ResourceMetadata %s is not an absolute URL", quoteUntrusted(v.metadata))
		}
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.replay == nil {
		v.replay = &MemoryStore{now: v.now}
	}
	return v, nil
}

// alg returns what the accepted algorithm name asks of a key.
func (v *Verifier) alg(name string) (algInfo, bool) {
	for _, a := range v.algs {
		if a == name {
			return supportedAlgs[a], true
		}
	}
	return algInfo{}, false
}

// Handler returns h behind the checks of [Verifier.Check]: a request that
// passes reaches h with its access token in its context ([FromContext]);
// any other gets the answer of [Verifier.Challenge] and no body. With
// [Config.Nonces] set, every response carries the current nonce in
// DPoP-Nonce (RFC 9449 §8.2), so that clients seldom meet a challenge.
//
// v.Handler is a func(http.Handler) http.Handler, the shape of router
// middleware.
func (v *Verifier) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := v.Nonce(); n != "" {
			w.Header().Set("DPoP-Nonce", n)
		}
		at, err := v.Check(r)
		if err != nil {
			status, challenge := v.Challenge(err)
			if challenge != "" {
				w.Header().Set("WWW-Authenticate", challenge)
			}
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(status)
			return
		}
		h.ServeHTTP(w, r.WithContext(NewContext(r.Context(), at)))
	})
}

// Check verifies the access token and the DPoP proof of r, a request
// received by a net/http server, and returns the token. The public URL the
// proof's htu must name comes from [Config.PublicURLs], or trusted proxies,
// or r itself, and the path from r.RequestURI (as the client sent it, even
// after http.StripPrefix). Every error is an [*Error]; Challenge turns it
// into the answer. Check does not set DPoP-Nonce; see [Verifier.Nonce].
func (v *Verifier) Check(r *http.Request) (*AccessToken, error) {
	ctx := r.Context()
	tgt, e := v.requestTarget(r)
	if e != nil {
		v.trace.refused(ctx, e, "")
		return nil, e
	}
	require := v.nonces != nil && (v.requireNonce == nil || v.requireNonce(r))
	return v.verify(ctx, r.Method, &tgt, r.Header.Values("Authorization"), r.Header.Values("DPoP"), require)
}

// Verify verifies the access token and the DPoP proof of r and returns the
// token: for transports other than net/http, such as gRPC. Every error is
// an [*Error]; [Verifier.Challenge] gives the status and challenge to
// answer, and the transport announces [Verifier.Nonce] itself.
func (v *Verifier) Verify(ctx context.Context, r *Request) (*AccessToken, error) {
	if r == nil {
		r = &Request{}
	}
	var tgt target
	var ok bool
	if tgt.path, ok = urlPath(r.URL); ok {
		if v.bases != nil {
			tgt.bases = v.bases
		} else {
			var b string
			b, ok = urlBase(r.URL)
			tgt.bases = []string{b}
		}
	}
	if !ok {
		e := refuse(ErrorInvalidRequest, ReasonURL, errors.New("Request.URL "+quoteUntrusted(r.URL)+" is not an absolute URL"))
		v.trace.refused(ctx, e, "")
		return nil, e
	}
	require := v.nonces != nil
	if require && v.requireNonce != nil {
		u, err := url.Parse(r.URL)
		if err != nil {
			u = &url.URL{Path: tgt.path}
		}
		require = v.requireNonce(&http.Request{Method: r.Method, URL: u, Host: u.Host, RequestURI: tgt.path, Header: http.Header{}})
	}
	tgt.pathOnly = r.PathHTU
	return v.verify(ctx, r.Method, &tgt, r.Authorization, r.DPoP, require)
}

// Nonce returns the nonce to announce now in the DPoP-Nonce header of a
// response (RFC 9449 §8.2, §9), or "" when [Config.Nonces] is nil.
func (v *Verifier) Nonce() string {
	if v.nonces == nil {
		return ""
	}
	return v.nonces.at(v.now()).current
}

// verify runs the checks and reports the outcome to the trace.
func (v *Verifier) verify(ctx context.Context, method string, tgt *target, auth, dpop []string, requireNonce bool) (*AccessToken, error) {
	if v.tokens == nil {
		return nil, refuse("", ReasonTokenUnavailable, errors.New("dpop: Verifier not made by NewVerifier"))
	}
	var start time.Time
	if v.trace != nil && v.trace.Verified != nil {
		start = time.Now()
	}
	at, p, e := v.check(ctx, method, tgt, auth, dpop, requireNonce)
	if e != nil {
		jkt := ""
		if p != nil {
			jkt = p.key.jkt
		}
		v.trace.refused(ctx, e, jkt)
		return nil, e
	}
	if t := v.trace; t != nil && t.Verified != nil {
		i := VerifiedInfo{Context: ctx, Scheme: schemeBearer, Duration: time.Since(start)}
		if p != nil {
			i.Scheme, i.Alg, i.JKT, i.Nonce = schemeDPoP, p.key.alg, p.key.jkt, p.nonce
		}
		t.Verified(i)
	}
	return at, nil
}

// check runs the checks, in order. It returns the proof once checked, for
// the trace.
func (v *Verifier) check(ctx context.Context, method string, tgt *target, auth, dpop []string, requireNonce bool) (*AccessToken, *checkedProof, *Error) {
	scheme, token, e := parseAuthorization(auth)
	if e != nil {
		return nil, nil, e
	}
	if scheme == schemeBearer {
		at, e := v.checkBearer(ctx, token)
		if e != nil {
			e.bearer = true
		}
		return at, nil, e
	}
	switch len(dpop) {
	case 0:
		return nil, nil, refuse(ErrorInvalidProof, ReasonMissingProof, errNoProof)
	case 1:
	default: // RFC 9449 §4.3 point 1
		return nil, nil, refuse(ErrorInvalidRequest, ReasonMalformed, errors.New("more than one DPoP header"))
	}
	p, e := v.checkProof(ctx, dpop[0], method, tgt, token, v.now(), requireNonce)
	if e != nil {
		return nil, nil, e
	}
	at, e := v.verifyToken(ctx, token)
	if e != nil {
		return nil, p, e
	}
	switch {
	case at.JKT == "": // RFC 9449 §7.1: the DPoP scheme is for bound tokens
		return nil, p, refuse(ErrorInvalidToken, ReasonUnbound, errors.New("the access token is not bound to a key (no cnf.jkt)"))
	case at.JKT != p.key.jkt: // §4.3 point 12
		return nil, p, refuse(ErrorInvalidToken, ReasonJKT, errors.New("the access token is bound to another key than the proof's"))
	}
	if err := v.replay.Claim(ctx, p.key.jkt, p.jti, p.until); err != nil {
		var full *StoreFullError
		switch {
		case errors.Is(err, ErrReplayed):
			return nil, p, refuse(ErrorInvalidProof, ReasonReplay, err)
		case errors.As(err, &full) && full.PerKey:
			return nil, p, refuse(ErrorInvalidProof, ReasonReplayQuota, err)
		case ctx.Err() != nil:
			return nil, p, refuse("", ReasonCanceled, err)
		}
		return nil, p, refuse("", ReasonStoreUnavailable, err)
	}
	if !p.cached {
		v.keys.put(p.header, p.key)
	}
	return at, p, nil
}

// checkBearer checks a token presented with the Bearer scheme.
func (v *Verifier) checkBearer(ctx context.Context, token string) (*AccessToken, *Error) {
	if !v.allowBearer {
		return nil, refuse("", ReasonScheme, errors.New("Bearer tokens are not accepted: DPoP is required"))
	}
	at, e := v.verifyToken(ctx, token)
	if e != nil {
		return nil, e
	}
	if at.JKT != "" { // RFC 9449 §7.2
		return nil, refuse(ErrorInvalidToken, ReasonBoundBearer, errors.New("a DPoP-bound access token presented as a Bearer token"))
	}
	return at, nil
}

// verifyToken asks the TokenVerifier.
func (v *Verifier) verifyToken(ctx context.Context, token string) (*AccessToken, *Error) {
	at, err := v.tokens.VerifyToken(ctx, token)
	switch {
	case err == nil && at != nil:
		return at, nil
	case err == nil:
		return nil, refuse(ErrorInvalidToken, ReasonToken, errors.New("the TokenVerifier returned neither a token nor an error"))
	case errors.As(err, new(*IssuerError)) || errors.Is(err, ErrUnavailable):
		return nil, refuse("", ReasonTokenUnavailable, err)
	case ctx.Err() != nil:
		return nil, refuse("", ReasonCanceled, err)
	}
	return nil, refuse(ErrorInvalidToken, ReasonToken, err)
}
