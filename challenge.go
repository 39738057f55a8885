package dpop

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dpopkit/dpop/internal/challenge"
)

// CheckResponse returns a *[ChallengeError] when resp is a DPoP error: a 401
// with a DPoP challenge, or a 400 whose JSON error code is a DPoP one
// (use_dpop_nonce or invalid_dpop_proof); or when resp is a 401 whose
// challenges are all for another scheme (Bearer, say): the server does not
// accept DPoP (RFC 9449 §7.1). Otherwise it returns nil. It reads
// at most a few KiB of a 400's body, and leaves resp.Body reading the whole
// body from its first byte.
func CheckResponse(resp *http.Response) error {
	if resp == nil {
		return errors.New("dpop: CheckResponse: response is nil")
	}
	if ce := responseChallenge(resp, timeNow()); ce != nil {
		return ce
	}
	return nil
}

// formBody reports whether a request with header h has a form body.
func formBody(h http.Header) bool {
	ct := h.Get("Content-Type")
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// maxPeek bounds how much of a 400 body is read to find its error code.
// Error bodies of RFC 6749 §5.2 are small; a larger body is not one.
const maxPeek = 4 << 10

// maxDrain bounds how much of a challenge's body is read before it is
// closed, so that its connection can be reused without reading forever.
const maxDrain = 64 << 10

// responseChallenge returns the DPoP error resp carries, or nil. now is the
// client's clock, against which the server's Date is read.
func responseChallenge(resp *http.Response, now time.Time) *ChallengeError {
	ce := responseError(resp)
	if ce != nil && ce.ErrorCode == CodeInvalidProof {
		if d, ok := serverClockSkew(resp, now); ok && (d >= clockTolerance || d <= -clockTolerance) {
			ce.ClockSkew = d
		}
	}
	return ce
}

// serverClockSkew returns the server's clock minus now, from resp's Date
// header (RFC 9110 §6.6.1), when it has a valid one.
func serverClockSkew(resp *http.Response, now time.Time) (time.Duration, bool) {
	v := resp.Header["Date"]
	if len(v) != 1 {
		return 0, false
	}
	t, err := http.ParseTime(v[0])
	if err != nil {
		return 0, false
	}
	return t.Sub(now.Truncate(time.Second)), true
}

// responseError returns the DPoP error of a 401 challenge or a 400 JSON
// body, or nil. The server's strings are kept without the secrets of the
// request they answer (its access token, its proof, and the secrets of a
// form, which an authorization server may echo), cut short and cleaned.
func responseError(resp *http.Response) *ChallengeError {
	var ce *ChallengeError
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		values := resp.Header.Values("WWW-Authenticate")
		c, ok := challenge.FindScheme(values, "DPoP")
		scheme := "DPoP"
		if !ok {
			if c, ok = otherChallenge(values); !ok {
				return nil // no challenge at all: nothing to say
			}
			scheme = c.Scheme
			if strings.EqualFold(scheme, "Bearer") {
				scheme = "Bearer"
			}
		}
		ce = &ChallengeError{
			StatusCode:  resp.StatusCode,
			Scheme:      cleanText(scheme, maxCodeText),
			ErrorCode:   c.Params["error"],
			Description: c.Params["error_description"],
			Algs:        strings.Fields(c.Params["algs"]),
			Nonce:       responseNonce(resp),
		}
	case http.StatusBadRequest:
		if !jsonBody(resp.Header) {
			return nil
		}
		code, desc := peekJSONError(resp)
		if code != CodeUseNonce && code != CodeInvalidProof {
			return nil
		}
		ce = &ChallengeError{
			StatusCode:  resp.StatusCode,
			ErrorCode:   code,
			Description: desc,
			Nonce:       responseNonce(resp),
		}
	default:
		return nil
	}
	if len(ce.Description) >= minSecret || len(ce.ErrorCode) >= minSecret && !knownCode(ce.ErrorCode) {
		req := resp.Request
		secrets := requestSecrets(req, req != nil && formBody(req.Header))
		ce.ErrorCode, ce.Description = redact(ce.ErrorCode, secrets), redact(ce.Description, secrets)
	}
	ce.ErrorCode = cleanText(ce.ErrorCode, maxCodeText)
	ce.Description = cleanText(ce.Description, maxText)
	ce.Algs = cleanList(ce.Algs)
	return ce
}

// knownCode reports whether code is one of the DPoP error codes.
func knownCode(code string) bool {
	return code == CodeUseNonce || code == CodeInvalidProof || code == CodeInvalidToken
}

// otherChallenge returns the first challenge of a WWW-Authenticate field
// that has no DPoP one: a Bearer challenge, say, from a server that does
// not speak DPoP. A field that does not parse is searched for a Bearer
// challenge.
func otherChallenge(values []string) (challenge.Challenge, bool) {
	cs, err := challenge.Parse(values)
	if err != nil {
		return challenge.FindScheme(values, "Bearer")
	}
	if len(cs) == 0 {
		return challenge.Challenge{}, false
	}
	return cs[0], true
}

// jsonBody reports whether a response with header h may have a JSON body
// (RFC 6749 §5.2): its Content-Type is JSON, or absent.
func jsonBody(h http.Header) bool {
	ct := h.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// maxPeekWait bounds how long peekJSONError waits for a 400's body: an
// error body comes with its headers, and a server that trickles it must
// not hold the call. It is generous, so that a loaded machine that is slow
// to run the reading goroutine still answers a challenge.
const maxPeekWait = time.Second

// maxDrainWait bounds how long drainClose reads a body before it closes
// it: the connection is then not reused, which costs less than waiting.
const maxDrainWait = 50 * time.Millisecond

// peekJSONError reads up to maxPeek bytes of resp's body and, when that is
// the whole body and a JSON object, returns its error and error_description
// members (RFC 6749 §5.2). resp.Body is replaced by a reader that yields the
// peeked bytes and then the rest, and closes the original. When the body
// does not arrive within maxPeekWait, it gives up: the caller's body then
// yields every byte as it arrives.
func peekJSONError(resp *http.Response) (code, desc string) {
	if resp.Body == nil || resp.Body == http.NoBody {
		return "", ""
	}
	body := resp.Body
	done := make(chan peekResult, 1)
	go func() {
		buf := make([]byte, maxPeek+1)
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = body.Read(buf[n:])
			n += m
		}
		done <- peekResult{buf[:n], err}
	}()
	timer := time.NewTimer(maxPeekWait)
	defer timer.Stop()
	var r peekResult
	select {
	case r = <-done:
	case <-timer.C:
		resp.Body = &peekedBody{Reader: &pendingReader{done: done, rest: body}, Closer: body}
		return "", ""
	}
	resp.Body = &peekedBody{Reader: r.reader(body), Closer: body, whole: r.whole()}
	if !r.whole() {
		return "", ""
	}
	e, _ := parseOAuthError(r.buf)
	return e.Error, e.ErrorDescription
}

// peekResult is what the first read of a body gave.
type peekResult struct {
	buf []byte
	err error // nil: more than maxPeek bytes; io.EOF: buf is the whole body
}

// whole reports whether buf is the whole body.
func (r peekResult) whole() bool { return r.err == io.EOF }

// reader returns a reader of the body from its first byte: buf, then the
// rest of body, or the read error that cut it short.
func (r peekResult) reader(body io.Reader) io.Reader {
	switch {
	case r.whole():
		return bytes.NewReader(r.buf)
	case r.err == nil: // more than maxPeek bytes: not an error body; hand back all of it
		return io.MultiReader(bytes.NewReader(r.buf), body)
	default: // a read error (a truncated body, say) reaches the caller after the bytes read
		return io.MultiReader(bytes.NewReader(r.buf), errReader{r.err})
	}
}

// pendingReader reads a body whose first read is still under way.
type pendingReader struct {
	done <-chan peekResult
	rest io.Reader
	r    io.Reader // once the first read is done
}

func (p *pendingReader) Read(b []byte) (int, error) {
	if p.r == nil {
		p.r = (<-p.done).reader(p.rest)
	}
	return p.r.Read(b)
}

// errReader returns its error from every Read.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// peekedBody is a response body whose first bytes were read ahead.
type peekedBody struct {
	io.Reader
	io.Closer
	whole bool // all of the body is in memory
}

// drainClose reads the rest of a challenge's body, so that its connection
// may be reused, and closes it: a body of known length up to maxDrain, or
// the first maxPeek bytes of one of unknown length (as net/http does
// before it follows a redirect), for no longer than maxDrainWait. A larger
// body is closed at once; its connection is then not reused, which costs
// less than reading it. A body that trickles is closed while the read
// waits, which net/http's response bodies allow.
func drainClose(resp *http.Response) {
	body := resp.Body
	n := resp.ContentLength
	if n < 0 {
		n = maxPeek
	}
	if pb, ok := body.(*peekedBody); ok && pb.whole || n == 0 || n > maxDrain {
		body.Close()
		return
	}
	var once sync.Once
	closeBody := func() { once.Do(func() { body.Close() }) }
	t := time.AfterFunc(maxDrainWait, closeBody)
	io.Copy(io.Discard, io.LimitReader(body, n))
	t.Stop()
	closeBody()
}
