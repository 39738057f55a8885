package dpop

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/dpopkit/dpop/internal/challenge"
)

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

// maxDrain bounds how much of a challenge's body is read before it is
// closed, so that its connection can be reused without reading forever.
const maxDrain = 64 << 10

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

// nonceChallenge returns resp's use_dpop_nonce challenge with a valid nonce,
// or nil. Only 400 and 401 responses with a DPoP-Nonce header are examined,
// so other responses cost nothing and keep their body untouched.
func nonceChallenge(resp *http.Response) *ChallengeError {
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
		return nil
	}
	if responseNonce(resp) == "" {
		return nil
	}
	ce := responseChallenge(resp)
	if ce == nil || ce.ErrorCode != ErrorUseNonce || ce.Nonce == "" {
		return nil
	}
	return ce
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

// drainClose reads a bounded amount of resp's body, so its connection may
// be reused, and closes it.
func drainClose(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	resp.Body.Close()
}
