package dpop

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// DPoP error codes a server may answer with (RFC 9449 §7.1, §8, §12.2).
const (
	ErrorUseNonce     = "use_dpop_nonce"     // a nonce is required, or the one sent is stale
	ErrorInvalidProof = "invalid_dpop_proof" // the proof was rejected
	ErrorInvalidToken = "invalid_token"      // the resource server rejected the token (RFC 6750 §3.1)
)

// ErrNoRefreshToken is returned by a [Config.TokenSource] whose token has
// expired when there is no refresh token to renew it: the user must log in
// again.
var ErrNoRefreshToken = errors.New("dpop: token expired and there is no refresh token")

// ChallengeError is a DPoP error from a server: the DPoP challenge in the
// WWW-Authenticate header of a resource server's 401 (RFC 9449 §7.1, §9),
// or the JSON error body of an authorization server's 400 (§5, §8).
// [CheckResponse] returns one for a response [Transport] handed back.
type ChallengeError struct {
	StatusCode  int
	ErrorCode   string   // such as ErrorUseNonce or ErrorInvalidProof; may be empty
	Description string   // error_description, for people
	Algs        []string // algs the server accepts (§7.1), when it said
	Nonce       string   // a valid DPoP-Nonce sent with the response, or ""
}

func (e *ChallengeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dpop: server answered %d", e.StatusCode)
	if e.ErrorCode != "" {
		fmt.Fprintf(&b, " %s", e.ErrorCode)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, ": %q", e.Description)
	}
	if len(e.Algs) > 0 {
		fmt.Fprintf(&b, " (accepts %s)", strings.Join(e.Algs, " "))
	}
	return b.String()
}

// AcceptsAlg reports whether the server's algs list admits alg. A challenge
// without an algs list admits every algorithm.
func (e *ChallengeError) AcceptsAlg(alg string) bool {
	if len(e.Algs) == 0 {
		return true
	}
	for _, a := range e.Algs {
		if a == alg {
			return true
		}
	}
	return false
}

// NonceFromError reports the nonce a server demanded, when err is or wraps
// a [ChallengeError] with error code use_dpop_nonce and a valid nonce.
func NonceFromError(err error) (nonce string, ok bool) {
	var ce *ChallengeError
	if errors.As(err, &ce) && ce.ErrorCode == ErrorUseNonce && ce.Nonce != "" {
		return ce.Nonce, true
	}
	return "", false
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

// AlgError reports a proof algorithm the server does not accept, or a
// server that does not advertise DPoP at all (Supported is then empty).
type AlgError struct {
	Alg       string
	Supported []string
}

func (e *AlgError) Error() string {
	if len(e.Supported) == 0 {
		return "dpop: the authorization server does not advertise DPoP support (no dpop_signing_alg_values_supported, RFC 9449 §5.1)"
	}
	return fmt.Sprintf("dpop: the authorization server accepts DPoP proofs signed with %s, not %s", strings.Join(e.Supported, ", "), e.Alg)
}

// RevocationError is an error answer of the revocation endpoint (RFC 7009
// §2.2.1), such as unsupported_token_type, or a 503 whose Header says when
// to retry (Retry-After). Its Error text shows the status, the error code
// and at most 200 bytes of the description, escaped; never the body.
type RevocationError struct {
	StatusCode       int
	Header           http.Header
	Body             []byte // the first 4 KiB of the answer's body
	ErrorCode        string // such as "unsupported_token_type"; may be empty
	ErrorDescription string
	ErrorURI         string
}

func (e *RevocationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dpop: revocation: server answered %d", e.StatusCode)
	if e.ErrorCode != "" {
		fmt.Fprintf(&b, " %q", truncate(e.ErrorCode, 64))
	}
	if e.ErrorDescription != "" {
		fmt.Fprintf(&b, ": %q", truncate(e.ErrorDescription, 200))
	}
	return b.String()
}

// truncate returns s cut to at most n bytes, on a rune boundary, with "…"
// when something was cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
