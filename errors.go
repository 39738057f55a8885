package dpop

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

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
// or the JSON error body of an authorization server's 400 (§5, §8); or a
// 401 whose challenges are all for another scheme, from a server that
// does not speak DPoP (Scheme then names it).
// [CheckResponse] returns one for a response [Transport] handed back. Its
// text and its fields are safe to log: the server's strings are cut short
// (an error code to 64 bytes, a description to 256, algs to 16), every
// character that is not printable replaced by U+FFFD, and the text quotes
// them escaped.
type ChallengeError struct {
	StatusCode int

	// Scheme is the auth-scheme of a 401's challenge: "DPoP", or, when
	// the server sent no DPoP challenge, the scheme it sent, such as
	// "Bearer" or "Basic": the server does not accept DPoP-bound tokens
	// (RFC 9449 §7.1). It is "" for an authorization server's 400.
	Scheme string

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
	if !e.dpop() {
		fmt.Fprintf(&b, "; its challenge is for %s, none for DPoP: the server does not accept DPoP-bound tokens (RFC 9449 §7.1). "+
			"DPoP is probably not enabled for this API, or another server answered (a proxy asking for its own credentials, say)", quote(e.Scheme))
		return b.String()
	}
	if e.ErrorCode != CodeInvalidProof {
		return b.String()
	}
	switch {
	case len(e.Algs) > 0:
		fmt.Fprintf(&b, " (accepts %s; a proof signed with another algorithm is refused: ChooseAlg picks one of these for a new key)", quote(strings.Join(e.Algs, " ")))
	case mentionsAlg(e.Description):
		b.WriteString(algHint)
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

// dpop reports whether e is a DPoP error, not a challenge for another
// scheme.
func (e *ChallengeError) dpop() bool { return e.Scheme == "" || e.Scheme == "DPoP" }

// algHint is the advice for a refusal that may be about the proof's
// algorithm.
const algHint = "; if the server refuses the proof's algorithm, ChooseAlg picks one it accepts for a new key, and Metadata.CheckSigner checks a Signer against the authorization server's list before the first request"

// mentionsAlg reports whether a server's description speaks of an
// algorithm.
func mentionsAlg(desc string) bool { return strings.Contains(strings.ToLower(desc), "alg") }

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
	TokenType string // as answered, cut short and cleaned; may be empty

	answered bool // a token response answered it; else a token source handed it out
}

func (e *TokenTypeError) Error() string {
	switch {
	case !e.Downgrade():
		return fmt.Sprintf("dpop: got token_type %s; want DPoP (RFC 9449 §5)", quote(e.TokenType))
	case e.answered:
		return "dpop: the authorization server issued a Bearer token where a DPoP-bound token was expected (RFC 9449 §5): " +
			"it probably does not support DPoP, or not for this client (see its dpop_signing_alg_values_supported, and the " +
			"client's registration), or something on the way removed the DPoP header; AllowBearer accepts such a token, " +
			"which is not bound to the key, and gives up what DPoP protects"
	}
	return "dpop: the token source handed out a Bearer token where a DPoP-bound token was expected: it was probably " +
		"obtained without DPoP (by another client, or stored before DPoP was turned on); get a new one through Config " +
		"or ClientCredentials, or set AllowBearer to send it as it is, not bound to the key"
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
		return "dpop: the authorization server does not advertise DPoP support (no dpop_signing_alg_values_supported, RFC 9449 §5.1): it may not support DPoP at all"
	}
	return fmt.Sprintf("dpop: the authorization server accepts DPoP proofs signed with %s, not %s; ChooseAlg picks one of them for a new key",
		quote(strings.Join(e.supported, ", ")), quote(e.alg))
}

// TokenError is an authorization server's error answer (RFC 6749 §5.2) to
// a token, PAR, device authorization or revocation request, or any other
// answer with an error status. Its text is safe to log: the request and
// its endpoint, the status, the error code and the error_description, cut
// short and escaped, or, for an answer that is not an OAuth error (a
// wrong URL, a proxy's page), its Content-Type; never the response body,
// never a secret of the request. The [oauth2.RetrieveError] it came from, which holds the body,
// is reachable with errors.As; so is a *[ChallengeError] when the error is
// a DPoP one (use_dpop_nonce, invalid_dpop_proof, RFC 9449 §5, §8), with
// the nonce the server demanded.
type TokenError struct {
	Op          string // the request: "code exchange", "refresh", "PAR", …
	Endpoint    string // the URL it went to, without userinfo, query or fragment
	StatusCode  int
	ErrorCode   string // such as "invalid_grant"; may be empty
	Description string // error_description, for people
	URI         string // error_uri

	retrieve  *oauth2.RetrieveError
	challenge *ChallengeError // for a DPoP error code, else nil
}

// newTokenError returns the TokenError of op for re. The server's strings
// are kept without any secret of the request they answer (a server that
// echoes the request in its error_description does not put the client
// secret or a grant into the error), cut short and cleaned.
func newTokenError(op string, re *oauth2.RetrieveError) *TokenError {
	var secrets []string
	e := &TokenError{Op: op, retrieve: re}
	if re.Response != nil {
		secrets = requestSecrets(re.Response.Request, true)
		if req := re.Response.Request; req != nil && req.URL != nil {
			e.Endpoint = cleanText(redactURL(req.URL.String()), maxURLText)
		}
	}
	oe := oauthError{re.ErrorCode, re.ErrorDescription, re.ErrorURI}
	if oe.Error == "" {
		oe, _ = parseOAuthError(re.Body) // x/oauth2's device authorization leaves it to us
	}
	e.ErrorCode = cleanText(redact(oe.Error, secrets), maxCodeText)
	e.Description = cleanText(redact(oe.ErrorDescription, secrets), maxText)
	e.URI = cleanText(redact(oe.ErrorURI, secrets), maxText)
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
	fmt.Fprintf(&b, "dpop: %s", e.Op)
	if e.Endpoint != "" {
		fmt.Fprintf(&b, " at %s", quote(e.Endpoint))
	}
	fmt.Fprintf(&b, ": server answered %d", e.StatusCode)
	if e.ErrorCode == "" {
		var ct string
		if e.retrieve != nil && e.retrieve.Response != nil {
			ct = cleanText(e.retrieve.Response.Header.Get("Content-Type"), maxCodeText)
		}
		fmt.Fprintf(&b, ", %s", notOAuth(ct))
		return b.String()
	}
	fmt.Fprintf(&b, " %s", quote(e.ErrorCode))
	if e.Description != "" {
		fmt.Fprintf(&b, ": %s", quote(e.Description))
	}
	if e.ErrorCode == CodeInvalidProof && mentionsAlg(e.Description) {
		b.WriteString(algHint)
	}
	return b.String()
}

// notOAuth says that an answer, whose Content-Type is ct (if known), is
// not an OAuth answer, and what that probably means.
func notOAuth(ct string) string {
	s := "not an OAuth answer"
	if ct != "" {
		s += " (Content-Type " + quote(ct) + ")"
	}
	return s + ": is the endpoint right? A web server or a proxy may have answered"
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
		msg = ue.Op + " " + quote(redactURL(ue.URL)) + ": " + strings.TrimPrefix(ue.Err.Error(), "dpop: ")
	} else {
		msg = redactQuotedURLs(msg) // x/oauth2 flattens a *url.Error into its text
	}
	if strings.HasPrefix(msg, "oauth2: cannot parse") || strings.HasPrefix(msg, "unmarshal ") {
		msg += "; the answer is " + notOAuth("") // x/oauth2's words for a body that is not JSON
	}
	// The cause may quote a server's answer (a number that does not
	// parse, say): cut and cleaned, as the server's strings are.
	return cleanText("dpop: "+e.op+": "+strings.TrimPrefix(msg, "dpop: "), maxErrorText)
}

// maxErrorText bounds the text of an opError.
const maxErrorText = 2 << 10

func (e *opError) Unwrap() error { return e.err }

// requestError returns the error of the token-side request op for the
// caller: a server's error answer (x/oauth2's *RetrieveError) becomes a
// *[TokenError]; any other error is wrapped.
func requestError(op string, err error) error { return requestErrorAt(op, "", err) }

// requestErrorAt is requestError for a request to endpoint, which the
// text of an error that does not name it (x/oauth2's, for an answer it
// cannot parse) names.
func requestErrorAt(op, endpoint string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return newTokenError(op, re)
	}
	var ue *url.Error
	if endpoint != "" && !errors.As(err, &ue) {
		op += " at " + quote(redactURL(endpoint))
	}
	return &opError{op, err}
}

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
