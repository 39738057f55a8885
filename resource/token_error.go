package resource

import (
	safe "github.com/dpopkit/dpop/internal/quote"
	"strconv"
	"strings"
)

// TokenError is an access token refused by a [JWTVerifier] or an
// [Introspection]: the token is invalid, expired, not meant for this
// resource server or not active, and the answer is invalid_token (RFC 6750
// §3.1, RFC 9449 §7.1). Its text names the check that failed and never
// holds the token.
type TokenError struct {
	// Claim names what the token failed on: the JWT header parameter or
	// claim, or the introspection member ("typ", "alg", "kid", "iss",
	// "aud", "exp", "nbf", "iat", "cnf", "scope", "active", ...),
	// "signature" when no key of the issuer verifies it, or "" when the
	// token is not well formed.
	Claim string

	Err error
}

func (e *TokenError) Error() string {
	msg := "dpop: access token refused"
	if e.Claim != "" {
		msg += " (" + e.Claim + ")"
	}
	if e.Err != nil {
		msg += ": " + strings.TrimPrefix(e.Err.Error(), "dpop: ")
	}
	return msg
}

func (e *TokenError) Unwrap() error { return e.Err }

// IssuerError is a failure to get an answer from the authorization server:
// its metadata (RFC 8414), its key set (RFC 7517 §5) or its introspection
// endpoint (RFC 7662) could not be reached, answered an error status, or
// sent a document that could not be read. The token may well be valid: a
// resource server answers 503, not 401 (the client has nothing to fix).
type IssuerError struct {
	URL        string // the URL asked, without its query
	StatusCode int    // the HTTP status of the answer, 0 when none came
	Err        error
}

func (e *IssuerError) Error() string {
	msg := "dpop: authorization server " + quoteUntrusted(e.URL)
	if e.StatusCode != 0 {
		msg += ": status " + strconv.Itoa(e.StatusCode)
	}
	if e.Err != nil {
		msg += ": " + strings.TrimPrefix(e.Err.Error(), "dpop: ")
	}
	return msg
}

func (e *IssuerError) Unwrap() error { return e.Err }

// maxQuote bounds how much of a value from a document or a token an error
// message quotes.
const maxQuote = 80

// quoteUntrusted returns s quoted in Go syntax, in ASCII, cut after maxQuote bytes
// (at a rune boundary) with an ellipsis: for values that come from other
// parties and go into error messages and logs.
func quoteUntrusted(s string) string { return safe.Cut(s, maxQuote) }
