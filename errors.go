package dpop

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// DPoP error codes a server may answer with (RFC 9449 §7.1, §8, §12.2).
const (
	CodeUseNonce     = "use_dpop_nonce"     // a nonce is required, or the one sent is stale
	CodeInvalidProof = "invalid_dpop_proof" // the proof was rejected
	CodeInvalidToken = "invalid_token"      // the resource server rejected the token (RFC 6750 §3.1)
)

// ErrNoRefreshToken is returned by a [Config.TokenSource] whose token has
// expired when there is no refresh token to renew it: the user must log in
// again.
var ErrNoRefreshToken = errors.New("dpop: token expired and there is no refresh token")

// ChallengeError is a DPoP error from a server: the DPoP challenge in the
// WWW-Authenticate header of a resource server's 401 (RFC 9449 §7.1, §9),
// or the JSON error body of an authorization server's 400 (§5, §8).
// [CheckResponse] returns one for a response [Transport] handed back. Its
// text is safe to log: the server's strings are cut short and escaped.
type ChallengeError struct {
	StatusCode  int
	ErrorCode   string   // such as CodeUseNonce or CodeInvalidProof; may be empty
	Description string   // error_description, for people
	Algs        []string // algs the server accepts (§7.1), when it said
	Nonce       string   // a valid DPoP-Nonce sent with the response, or ""

	// ClockSkew is the server's clock minus the client's, read from the
	// Date header of an invalid_dpop_proof answer when they differ by
	// 5 seconds or more (a proof's iat is then likely the reason,
	// §11.1); else 0.
	ClockSkew time.Duration
}

// clockTolerance is how far a server's Date may be from the client's clock
// before the client takes it as a clock difference (Date has a resolution
// of one second, and a response takes time to arrive).
const clockTolerance = 5 * time.Second

func (e *ChallengeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dpop: server answered %d", e.StatusCode)
	if e.ErrorCode != "" {
		fmt.Fprintf(&b, " %s", quote(e.ErrorCode))
	}
	if e.Description != "" {
		fmt.Fprintf(&b, ": %s", quote(e.Description))
	}
	if e.ErrorCode != CodeInvalidProof {
		return b.String()
	}
	if len(e.Algs) > 0 {
		fmt.Fprintf(&b, " (accepts %s)", quote(strings.Join(e.Algs, " ")))
	}
	switch {
	case e.ClockSkew >= time.Second:
		fmt.Fprintf(&b, "; the server's clock is %ds ahead of this client's, and a proof's iat must be close to the server's time", int64(e.ClockSkew/time.Second))
	case e.ClockSkew <= -time.Second:
		fmt.Fprintf(&b, "; the server's clock is %ds behind this client's, and a proof's iat must be close to the server's time", int64(-e.ClockSkew/time.Second))
	case strings.Contains(strings.ToLower(e.Description), "iat"):
		b.WriteString("; the client's and the server's clocks may differ")
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
	return fmt.Sprintf("dpop: got token_type %s; want DPoP", quote(e.TokenType))
}

// Downgrade reports whether the server issued a Bearer token.
func (e *TokenTypeError) Downgrade() bool { return strings.EqualFold(e.TokenType, "Bearer") }

// algError reports a proof algorithm the server does not accept, or a
// server that does not advertise DPoP at all (supported is then empty).
type algError struct {
	alg       string
	supported []string
}

func (e *algError) Error() string {
	if len(e.supported) == 0 {
		return "dpop: the authorization server does not advertise DPoP support (no dpop_signing_alg_values_supported, RFC 9449 §5.1)"
	}
	return fmt.Sprintf("dpop: the authorization server accepts DPoP proofs signed with %s, not %s", quote(strings.Join(e.supported, ", ")), quote(e.alg))
}

// maxQuoted bounds a string from a server, or from a request, shown in
// error text.
const maxQuoted = 256

// quote returns s for error text: cut to maxQuoted bytes (marked with
// "…"), and quoted with every byte outside printable ASCII escaped, so that
// no control or bidi character from a server reaches a log, and a long
// body cannot flood one.
func quote(s string) string {
	cut := len(s) > maxQuoted
	if cut {
		s = s[:maxQuoted]
		for i := 0; i < 3 && !utf8.ValidString(s); i++ {
			s = s[:len(s)-1] // do not split a rune
		}
	}
	q := strconv.QuoteToASCII(s)
	if cut {
		q += "…"
	}
	return q
}

// TokenError is an authorization server's error answer (RFC 6749 §5.2) to
// a token, PAR, device authorization or revocation request. Its text is
// safe to log: the status, the error code and the error_description, cut
// short and escaped; never the response body, never anything of the
// request. The [oauth2.RetrieveError] it came from, which holds the body,
// is reachable with errors.As; so is a *[ChallengeError] when the error is
// a DPoP one (use_dpop_nonce, invalid_dpop_proof, RFC 9449 §5, §8), with
// the nonce the server demanded.
type TokenError struct {
	Op          string // the request: "code exchange", "refresh", "PAR", …
	StatusCode  int
	ErrorCode   string // such as "invalid_grant"; may be empty
	Description string // error_description, for people
	URI         string // error_uri

	retrieve  *oauth2.RetrieveError
	challenge *ChallengeError // for a DPoP error code, else nil
}

// newTokenError returns the TokenError of op for re. The server's strings
// are kept without any secret of the request they answer: a server that
// echoes the request in its error_description does not put the client
// secret or a grant into the error.
func newTokenError(op string, re *oauth2.RetrieveError) *TokenError {
	var secrets []string
	if re.Response != nil {
		secrets = requestSecrets(re.Response.Request)
	}
	e := &TokenError{Op: op, ErrorCode: redact(re.ErrorCode, secrets), Description: redact(re.ErrorDescription, secrets),
		URI: redact(re.ErrorURI, secrets), retrieve: re}
	if re.Response != nil {
		e.StatusCode = re.Response.StatusCode
		if e.ErrorCode == CodeUseNonce || e.ErrorCode == CodeInvalidProof {
			e.challenge = &ChallengeError{StatusCode: e.StatusCode, ErrorCode: e.ErrorCode,
				Description: e.Description, Nonce: responseNonce(re.Response)}
		}
	}
	return e
}

func (e *TokenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dpop: %s: server answered %d", e.Op, e.StatusCode)
	if e.ErrorCode != "" {
		fmt.Fprintf(&b, " %s", quote(e.ErrorCode))
	}
	if e.Description != "" {
		fmt.Fprintf(&b, ": %s", quote(e.Description))
	}
	return b.String()
}

// Unwrap returns the [oauth2.RetrieveError] and, for a DPoP error, the
// [ChallengeError].
func (e *TokenError) Unwrap() []error {
	if e.challenge != nil {
		return []error{e.retrieve, e.challenge}
	}
	return []error{e.retrieve}
}

// opError is a failed request of the token machinery (op names it) that
// is not a server's error answer. Its text names op once and says "dpop:"
// once, however deep the cause.
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string {
	msg := e.err.Error()
	var ue *url.Error
	if errors.As(e.err, &ue) {
		msg = ue.Op + " " + quote(ue.URL) + ": " + strings.TrimPrefix(ue.Err.Error(), "dpop: ")
	}
	return "dpop: " + e.op + ": " + strings.TrimPrefix(msg, "dpop: ")
}

func (e *opError) Unwrap() error { return e.err }

// requestError returns the error of the token-side request op for the
// caller: a server's error answer (x/oauth2's *RetrieveError) becomes a
// *[TokenError]; any other error is wrapped.
func requestError(op string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return newTokenError(op, re)
	}
	return &opError{op, err}
}

// secretParams are the form parameters of token-side requests whose values
// are secrets (RFC 6749 §2.3.1, §4.1.3, §6; RFC 7636 §4.5; RFC 8628 §3.4;
// RFC 7521 §4.2; RFC 8693 §2.1; RFC 7009 §2.1).
var secretParams = []string{
	"client_secret", "code", "code_verifier", "refresh_token", "device_code", "password",
	"client_assertion", "assertion", "subject_token", "actor_token", "token",
}

// maxSecretForm bounds how much of a request body requestSecrets reads.
const maxSecretForm = 64 << 10

// requestSecrets returns the secrets req carried: its Authorization and
// DPoP header values, the credentials of a Basic header, and the values of
// its form's secret parameters (read again through GetBody; x/oauth2 and
// PAR requests have one). req may be nil.
func requestSecrets(req *http.Request) []string {
	if req == nil {
		return nil
	}
	var out []string
	for _, k := range []string{"Authorization", "Dpop"} {
		for _, v := range req.Header[k] {
			out = append(out, v)
			if _, cred, ok := strings.Cut(v, " "); ok {
				out = append(out, cred)
			}
		}
	}
	if _, pass, ok := req.BasicAuth(); ok {
		out = append(out, pass)
		if u, err := url.QueryUnescape(pass); err == nil {
			out = append(out, u)
		}
	}
	if req.GetBody == nil {
		return out
	}
	body, err := req.GetBody()
	if err != nil {
		return out
	}
	defer body.Close()
	b, _ := io.ReadAll(io.LimitReader(body, maxSecretForm))
	form, _ := url.ParseQuery(string(b))
	for _, k := range secretParams {
		for _, v := range form[k] {
			out = append(out, v, url.QueryEscape(v))
		}
	}
	return out
}

// redact returns s with every secret of at least minSecret bytes replaced
// by "[redacted]".
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= minSecret && strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}

// minSecret is the length below which a request value is not redacted
// from server text: a client_id "c" or a code "1" would blank out every
// such letter of a description, and reveals nothing.
const minSecret = 4

// AuthResponseError is an error answered by the authorization endpoint in
// the redirect to the client (RFC 6749 §4.1.2.1), such as access_denied.
// It is returned only for a response whose state (and iss, when checked)
// belong to the request: a forged redirect is a different error.
type AuthResponseError struct {
	ErrorCode   string // error, such as "access_denied" or "invalid_request"
	Description string // error_description, for people; may be empty
	URI         string // error_uri; may be empty
}

// Error quotes the server's words: they arrived in a URL anyone could
// have crafted, so they are escaped, never printed raw.
func (e *AuthResponseError) Error() string {
	s := "dpop: authorization server answered " + quote(e.ErrorCode)
	if e.Description != "" {
		s += ": " + quote(e.Description)
	}
	if e.URI != "" {
		s += " (see " + quote(e.URI) + ")"
	}
	return s
}
