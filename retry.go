package dpop

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"golang.org/x/oauth2"
)

// maxClockOffset bounds the clock difference the Transport corrects: a
// server whose Date is further off is broken, not merely apart.
const maxClockOffset = 24 * time.Hour

// noRetry is the [RetryReason] of a response the retry policy keeps. The
// others: [RetryNonce] for a use_dpop_nonce challenge with a nonce not
// tried yet (RFC 9449 §8, §9), [RetryClock] for an invalid_dpop_proof
// whose server Date shows the clocks differ (§11.1), [RetryInvalidToken]
// for a 401 invalid_token for a token the Source can replace (RFC 6750
// §3.1).
const noRetry RetryReason = ""

// retry is the retry policy's loop: it reads each response, asks decide
// whether to send the request again, applies the decision, and sends a new
// attempt with a new proof, until a response it keeps. Every reason has its
// own bound, so it never loops, and a body that cannot be sent again is
// never retried.
func (t *Transport) retry(c *call, resp *http.Response) (*http.Response, error) {
	for attempt := 2; ; attempt++ {
		a, ok := t.read(c, resp)
		if !ok {
			return resp, nil
		}
		d := decide(a, t.state(c))
		if d.reason == noRetry || !t.apply(c, d) {
			return resp, nil
		}
		drainClose(resp)
		ctx := c.req.Context()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if tr := t.Trace; tr != nil && tr.Retry != nil {
			tr.Retry(t.retryInfo(c, d.reason, attempt))
		}
		if d.reason == RetryInvalidToken {
			tok, err := t.presented(ctx, c.req) // checked as the first one was
			if err != nil {
				return nil, &opError{"the server refused the access token (invalid_token), and no new one could be had", err}
			}
			c.tok = tok
		}
		c.sent.cutOff() // before GetBody, which may rewind the reader it still reads
		body, err := rewind(c.req)
		if err != nil {
			return nil, err
		}
		if resp, err = t.attempt(c, body); err != nil {
			return nil, err
		}
	}
}

// answer is what the retry policy reads of a response.
type answer struct {
	status int
	code   string        // the DPoP error code of its challenge
	nonce  string        // its valid DPoP-Nonce, "" for none
	skew   time.Duration // the server's Date minus the proof's clock
	dated  bool          // whether skew was read from a Date
}

// state is what the retry policy needs of a call, read before deciding.
type state struct {
	nonce         string                      // the nonce the last attempt carried
	refused       [maxNonceRetries + 1]string // the nonces challenged so far, nonceRetries of them
	nonceRetries  int
	nonceBound    int  // the use_dpop_nonce retries allowed
	replayable    bool // whether the body can be sent again
	offset        time.Duration
	offsetDropped bool // the last attempt went with an offset the server's Date no longer shows
	clockRetry    bool // whether the clock retry was made
	token         bool // whether an access token went with the request
	refreshable   bool // whether the Source can replace a refused token
	tokRetry      bool // whether the token retry was made
}

// decision is what the retry policy decided about a response.
type decision struct {
	reason RetryReason   // noRetry keeps the response
	nonce  string        // the nonce for the next attempt
	offset time.Duration // the clock offset for the next attempt
	learn  bool          // whether offset is new to the origin
}

// read returns what the retry policy reads of resp, or false when resp
// cannot be a challenge to answer. It reads no body but a 400's first few
// KiB, and only when the response can be a challenge; it reports each
// challenge to the Trace.
func (t *Transport) read(c *call, resp *http.Response) (answer, bool) {
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
		return answer{}, false
	}
	a := answer{status: resp.StatusCode, nonce: responseNonce(resp)}
	a.skew, a.dated = serverClockSkew(resp, t.now().Add(c.offset))
	if resp.StatusCode == http.StatusBadRequest && a.nonce == "" && !clockOff(a) && !c.offsetDropped {
		return answer{}, false // neither a nonce challenge nor a clock to mend: leave the body unread
	}
	ce := responseError(resp)
	if ce == nil || !ce.dpop() && t.authServer {
		return answer{}, false // an authorization server's 401 for another scheme asks for client authentication (RFC 6749 §5.2)
	}
	if tr := t.Trace; tr != nil && tr.ChallengeReceived != nil {
		tr.ChallengeReceived(t.challengeInfo(c, ce))
	}
	if !ce.dpop() {
		return answer{}, false // a challenge for another scheme: a new proof or token would not help
	}
	a.code = ce.ErrorCode
	return a, true
}

// state returns what decide needs of c.
func (t *Transport) state(c *call) state {
	src, ok := t.Source.(TokenSource)
	return state{
		nonce:         c.nonce,
		refused:       c.refused,
		nonceRetries:  c.nonceRetries,
		nonceBound:    t.nonceRetries(c.req),
		replayable:    replayable(c.req),
		offset:        c.offset,
		offsetDropped: c.offsetDropped,
		clockRetry:    c.clockRetry,
		token:         c.tok != nil,
		refreshable:   ok && src != nil,
		tokRetry:      c.tokRetry,
	}
}

// clockOff reports whether a's Date shows a clock difference the proofs
// must correct: at least clockTolerance, at most maxClockOffset.
func clockOff(a answer) bool {
	return a.dated && (a.skew >= clockTolerance || a.skew <= -clockTolerance) && a.skew < maxClockOffset && a.skew > -maxClockOffset
}

// decide is the retry policy: from a response's answer and the call's
// state, whether to send the request again, why, and with what nonce and
// clock offset. It has no effects; [Transport.apply] carries the decision
// out.
func decide(a answer, s state) decision {
	keep := decision{reason: noRetry, nonce: s.nonce, offset: s.offset}
	if !s.replayable {
		return keep
	}
	d := keep
	switch {
	case a.code == CodeUseNonce:
		if a.nonce == "" || a.nonce == s.nonce || slices.Contains(s.refused[:s.nonceRetries], a.nonce) || s.nonceRetries >= s.nonceBound {
			return keep
		}
		d.reason = RetryNonce
	case a.code == CodeInvalidProof && (clockOff(a) || s.offsetDropped) && !s.clockRetry:
		// The proof's iat was off: by the server's Date, or by an offset
		// that the server's clock no longer has (attempt dropped it).
		d.reason = RetryClock
		if clockOff(a) {
			d.offset = min(max(s.offset+a.skew.Round(time.Second), -maxClockOffset), maxClockOffset)
			d.learn = true
		}
	case a.code == CodeInvalidToken && a.status == http.StatusUnauthorized && s.token && s.refreshable && !s.tokRetry:
		d.reason = RetryInvalidToken
	default:
		return keep
	}
	if a.nonce != "" {
		d.nonce = a.nonce // a retry of any reason goes with the newest nonce
	}
	return d
}

// apply carries out d on c: it records the refused nonce and the retries
// made, shares a learned clock offset, and has a refused token replaced.
// It returns false when the retry cannot be made after all (the Source
// cannot replace the token).
func (t *Transport) apply(c *call, d decision) bool {
	switch d.reason {
	case RetryNonce:
		c.refused[c.nonceRetries] = c.nonce
		c.nonceRetries++
	case RetryClock:
		c.clockRetry = true
	case RetryInvalidToken:
		src := t.Source.(TokenSource)
		if !src.Invalidate(&oauth2.Token{AccessToken: c.tok.token}) {
			return false
		}
		c.tokRetry = true
	}
	c.nonce = d.nonce
	if d.learn {
		c.offset = d.offset
		c.nonces.setOffset(c.origin, c.offset)
		if tr := t.Trace; tr != nil && tr.ClockOffsetLearned != nil {
			tr.ClockOffsetLearned(t.clockOffsetInfo(c))
		}
	}
	return true
}

// nonceRetries returns the bound of use_dpop_nonce retries for req.
func (t *Transport) nonceRetries(req *http.Request) int {
	if t.NonceRetries == nil {
		return 1
	}
	return min(max(t.NonceRetries(req), 0), maxNonceRetries)
}

// replayable reports whether req's body can be sent a second time.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// rewind returns a new copy of req's body for another attempt.
func rewind(req *http.Request) (io.ReadCloser, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req.Body, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("dpop: cannot rewind request body for the retry: %w", err)
	}
	return body, nil
}
