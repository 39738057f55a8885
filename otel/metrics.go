package dpopotel

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/dpopkit/dpop"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Attribute keys of the metrics and span events. Those of the OpenTelemetry
// semantic conventions keep their names (http.request.method,
// http.response.status_code, error.type); the others live under dpop.
const (
	attrAlg          = "dpop.proof.alg"
	attrMethod       = "http.request.method"
	attrHTU          = "dpop.proof.htu"
	attrProofNonce   = "dpop.proof.nonce"
	attrProofATH     = "dpop.proof.ath"
	attrDuration     = "dpop.duration" // seconds, on events
	attrError        = "dpop.error"
	attrStatus       = "http.response.status_code"
	attrOrigin       = "dpop.origin"
	attrRetryReason  = "dpop.retry.reason"
	attrAttempt      = "dpop.attempt"
	attrNonceChanged = "dpop.nonce.changed"
	attrOffset       = "dpop.clock.offset" // seconds, on events
	attrGrantType    = "oauth.grant_type"
	attrErrorType    = "error.type"
	attrTokenType    = "dpop.token_type"
	attrServer       = "dpop.target" // the kind of server the request went to: "authorization" or "resource"
)

// other stands for a value outside a known set, as the semantic
// conventions spell it, so a server cannot grow a metric's cardinality.
const other = "_OTHER"

// recorder holds the instruments and, for each, the attribute sets met so
// far, built once: recording a measurement then allocates nothing of ours.
type recorder struct {
	proofs        metric.Int64Counter
	proofDuration metric.Float64Histogram
	challenges    metric.Int64Counter
	retries       metric.Int64Counter
	nonces        metric.Int64Counter
	clockOffset   metric.Float64Gauge
	tokens        metric.Int64Counter
	tokenDuration metric.Float64Histogram
	downgrades    metric.Int64Counter

	proofSets     optionCache[proofKey]
	challengeSets optionCache[challengeKey]
	retrySets     optionCache[retryKey]
	nonceSets     optionCache[nonceKey]
	clockSets     optionCache[string]
	tokenSets     optionCache[tokenKey]
	downgradeSets optionCache[downgradeKey]
}

// The keys of the attribute sets: each field takes its values from a
// small known set (see the functions below), never a server's string, so
// that no server can grow a metric's number of series: not an origin,
// which a server chooses through redirects, nor an error code.

type proofKey struct {
	alg, method, server string
	nonce, ath          bool
}

type challengeKey struct {
	code, scheme, server string
	status               int
}

type retryKey struct{ reason, server string }

type downgradeKey struct{ tokenType, server string }

type nonceKey struct {
	server  string
	changed bool
}

type tokenKey struct{ grant, errType string }

func newRecorder(m metric.Meter) (*recorder, error) {
	r := new(recorder)
	var err, e error
	count := func(name, unit, desc string) metric.Int64Counter {
		c, e := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		err = errors.Join(err, e)
		return c
	}
	r.proofs = count("dpop.proofs", "{proof}", "DPoP proofs signed (RFC 9449 §4.2).")
	r.challenges = count("dpop.challenges", "{challenge}", "DPoP errors answered by servers: use_dpop_nonce, invalid_dpop_proof, invalid_token (RFC 9449 §7.1, §8, §9).")
	r.retries = count("dpop.retries", "{retry}", "Requests sent again, by reason.")
	r.nonces = count("dpop.nonce.updates", "{nonce}", "Server nonces learned or changed (RFC 9449 §8, §9).")
	r.tokens = count("dpop.token.requests", "{request}", "Token requests, by grant type; error.type is set on failures.")
	r.downgrades = count("dpop.downgrades", "{token}", "Bearer tokens refused where a DPoP-bound one was expected (RFC 9449 §5).")
	seconds := metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
	r.proofDuration, e = m.Float64Histogram("dpop.proof.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to sign a DPoP proof."), seconds)
	err = errors.Join(err, e)
	r.tokenDuration, e = m.Float64Histogram("dpop.token.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of token requests, nonce retries included."), seconds)
	err = errors.Join(err, e)
	r.clockOffset, e = m.Float64Gauge("dpop.clock.offset", metric.WithUnit("s"),
		metric.WithDescription("The last clock offset learned, by kind of server: the server's clock minus the client's (RFC 9449 §11.1)."))
	err = errors.Join(err, e)
	if err != nil {
		return nil, err
	}

	r.proofSets.build = func(k proofKey) attribute.Set {
		return attribute.NewSet(attribute.String(attrAlg, k.alg), attribute.String(attrMethod, k.method),
			attribute.Bool(attrProofNonce, k.nonce), attribute.Bool(attrProofATH, k.ath), attribute.String(attrServer, k.server))
	}
	r.challengeSets.build = func(k challengeKey) attribute.Set {
		return attribute.NewSet(attribute.String(attrError, k.code), attribute.String(attrScheme, k.scheme),
			attribute.Int(attrStatus, k.status), attribute.String(attrServer, k.server))
	}
	r.retrySets.build = func(k retryKey) attribute.Set {
		return attribute.NewSet(attribute.String(attrRetryReason, k.reason), attribute.String(attrServer, k.server))
	}
	r.nonceSets.build = func(k nonceKey) attribute.Set {
		return attribute.NewSet(attribute.Bool(attrNonceChanged, k.changed), attribute.String(attrServer, k.server))
	}
	r.clockSets.build = func(server string) attribute.Set { return attribute.NewSet(attribute.String(attrServer, server)) }
	r.tokenSets.build = func(k tokenKey) attribute.Set {
		if k.errType == "" {
			return attribute.NewSet(attribute.String(attrGrantType, k.grant))
		}
		return attribute.NewSet(attribute.String(attrGrantType, k.grant), attribute.String(attrErrorType, k.errType))
	}
	r.downgradeSets.build = func(k downgradeKey) attribute.Set {
		return attribute.NewSet(attribute.String(attrTokenType, k.tokenType), attribute.String(attrServer, k.server))
	}
	return r, nil
}

// maxSets bounds each optionCache. The keys are normalized to small sets
// of values, so it is never reached in practice; past it, options are
// built for each measurement instead of kept.
const maxSets = 256

// options are the measurement options of one attribute set, as the
// slices Add and Record take: passed with "...", they cost no allocation.
type options struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

// optionCache maps a key to the options of its attribute set. The zero
// value with build set is ready to use.
type optionCache[K comparable] struct {
	build func(K) attribute.Set

	mu   sync.RWMutex
	opts map[K]options // guarded by mu
}

func (c *optionCache[K]) get(k K) options {
	c.mu.RLock()
	o, ok := c.opts[k]
	c.mu.RUnlock()
	if ok {
		return o
	}
	set := metric.WithAttributeSet(c.build(k))
	o = options{[]metric.AddOption{set}, []metric.RecordOption{set}}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.opts == nil {
		c.opts = make(map[K]options)
	}
	if len(c.opts) < maxSets {
		c.opts[k] = o
	}
	return o
}

// method returns m if it is a method of RFC 9110 §9 or PATCH, and _OTHER
// otherwise, as the semantic conventions of http.request.method ask.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodConnect, http.MethodOptions, http.MethodTrace, http.MethodPatch:
		return m
	}
	return other
}

// server names the kind of server a request went to.
func server(authServer bool) string {
	if authServer {
		return "authorization"
	}
	return "resource"
}

// alg returns a proof algorithm this SDK signs with, or _OTHER.
func alg(a string) string {
	switch a {
	case "ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256":
		return a
	}
	return other
}

// challengeStatus returns a challenge's HTTP status: 400 or 401 (RFC 9449
// §7.1, §8), or 0 for any other.
func challengeStatus(s int) int {
	if s == http.StatusBadRequest || s == http.StatusUnauthorized {
		return s
	}
	return 0
}

// challengeScheme returns the auth-scheme of a challenge: DPoP (also for
// an authorization server's 400, which has none), Bearer or Basic (a
// server that does not accept DPoP), or _OTHER.
func challengeScheme(s string) string {
	switch {
	case s == "" || strings.EqualFold(s, "DPoP"):
		return "DPoP"
	case strings.EqualFold(s, "Bearer"):
		return "Bearer"
	case strings.EqualFold(s, "Basic"):
		return "Basic"
	}
	return other
}

// errorCode returns the DPoP error code c, or _OTHER: the codes come from
// servers.
func errorCode(c string) string {
	switch c {
	case dpop.CodeUseNonce, dpop.CodeInvalidProof, dpop.CodeInvalidToken:
		return c
	}
	return other
}

func retryReason(r dpop.RetryReason) string {
	switch r {
	case dpop.RetryNonce, dpop.RetryClock, dpop.RetryInvalidToken:
		return string(r)
	}
	return other
}

func grantType(g dpop.GrantType) string {
	switch g {
	case dpop.GrantAuthorizationCode, dpop.GrantRefreshToken, dpop.GrantClientCredentials, dpop.GrantDeviceCode:
		return string(g)
	}
	return other
}

// tokenType is "Bearer" (the downgrade of RFC 9449 §5) or _OTHER.
func tokenType(t string) string {
	if strings.EqualFold(t, "Bearer") {
		return "Bearer"
	}
	return other
}

// errorType classifies a token request's error for error.type: the OAuth
// error code the server answered (RFC 6749 §5.2, RFC 8628 §3.5, RFC 9449
// §8) when it is a registered one, "token_type" for a refused token type,
// "timeout" or "canceled" for the context, and _OTHER otherwise. It is ""
// for a success.
func errorType(err error) string {
	if err == nil {
		return ""
	}
	var te *dpop.TokenError
	if errors.As(err, &te) {
		switch te.ErrorCode {
		case "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
			"unsupported_grant_type", "invalid_scope", "access_denied", "expired_token",
			"authorization_pending", "slow_down", dpop.CodeUseNonce, dpop.CodeInvalidProof:
			return te.ErrorCode
		}
	}
	var tte *dpop.TokenTypeError
	switch {
	case errors.As(err, &tte):
		return "token_type"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return other
}
