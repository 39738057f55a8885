package dpop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/dpopkit/dpop/internal/challenge"
)

// DPoP error codes a server may answer with (RFC 9449 §7.1, §8, §12.2).
const (
	ErrorUseNonce     = "use_dpop_nonce"     // a nonce is required, or the one sent is stale
	ErrorInvalidProof = "invalid_dpop_proof" // the proof was rejected
	ErrorInvalidToken = "invalid_token"      // the resource server rejected the token (RFC 6750 §3.1)
)

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

// CheckResponse returns a *[ChallengeError] when resp is a DPoP error: a 401
// with a DPoP challenge, or a 400 whose JSON error code is a DPoP one
// (use_dpop_nonce or invalid_dpop_proof). Otherwise it returns nil. It reads
// at most a few KiB of a 400's body, and leaves resp.Body reading the whole
// body from its first byte.
func CheckResponse(resp *http.Response) error {
	if ce := responseChallenge(resp); ce != nil {
		return ce
	}
	return nil
}

// maxPeek bounds how much of a 400 body is read to find its error code.
// Error bodies of RFC 6749 §5.2 are small; a larger body is not one.
const maxPeek = 4 << 10

// responseChallenge returns the DPoP error resp carries, or nil.
func responseChallenge(resp *http.Response) *ChallengeError {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		c, ok := challenge.FindScheme(resp.Header.Values("WWW-Authenticate"), "DPoP")
		if !ok {
			return nil
		}
		return &ChallengeError{
			StatusCode:  resp.StatusCode,
			ErrorCode:   c.Params["error"],
			Description: c.Params["error_description"],
			Algs:        strings.Fields(c.Params["algs"]),
			Nonce:       responseNonce(resp),
		}
	case http.StatusBadRequest:
		code, desc := peekJSONError(resp)
		if code != ErrorUseNonce && code != ErrorInvalidProof {
			return nil
		}
		return &ChallengeError{
			StatusCode:  resp.StatusCode,
			ErrorCode:   code,
			Description: desc,
			Nonce:       responseNonce(resp),
		}
	}
	return nil
}

// responseNonce returns resp's DPoP-Nonce when it is valid (RFC 9449 §8.1).
func responseNonce(resp *http.Response) string {
	if v := resp.Header["Dpop-Nonce"]; len(v) == 1 && ValidNonce(v[0]) {
		return v[0]
	}
	return ""
}

// peekJSONError reads up to maxPeek bytes of resp's body and, when that is
// the whole body and a JSON object, returns its error and error_description
// members (RFC 6749 §5.2). resp.Body is replaced by a reader that yields the
// peeked bytes and then the rest, and closes the original.
func peekJSONError(resp *http.Response) (code, desc string) {
	if resp.Body == nil || resp.Body == http.NoBody {
		return "", ""
	}
	buf := make([]byte, maxPeek+1)
	n := 0
	var err error
	for n < len(buf) && err == nil {
		var m int
		m, err = resp.Body.Read(buf[n:])
		n += m
	}
	buf = buf[:n]
	switch err {
	case nil: // more than maxPeek bytes: not an error body; hand back all of it
		resp.Body = &peekedBody{Reader: io.MultiReader(bytes.NewReader(buf), resp.Body), Closer: resp.Body}
		return "", ""
	case io.EOF:
	default: // a read error (a truncated body, say) reaches the caller after the bytes read
		resp.Body = &peekedBody{Reader: io.MultiReader(bytes.NewReader(buf), errReader{err}), Closer: resp.Body}
		return "", ""
	}
	resp.Body = &peekedBody{Reader: bytes.NewReader(buf), Closer: resp.Body}
	var e struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(buf, &e) != nil {
		return "", ""
	}
	return e.Error, e.ErrorDescription
}

// errReader returns its error from every Read.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// peekedBody is a response body whose first bytes were read ahead.
type peekedBody struct {
	io.Reader
	io.Closer
}
