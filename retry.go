package dpop

import (
	"fmt"
	"io"
	"net/http"
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

// retry is the retry policy: it looks at each response and decides,
// through retryReason, whether to send the request again with a new
// proof, until a response it keeps. Every reason has its own bound, so it
// never loops, and a body that cannot be sent again is never retried.
func (t *Transport) retry(c *call, resp *http.Response) (*http.Response, error) {
	for attempt := 2; ; attempt++ {
		why := t.retryReason(c, resp)
		if why == noRetry {
			return resp, nil
		}
		drainClose(resp)
		ctx := c.req.Context()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if tr := t.Trace; tr != nil && tr.Retry != nil {
			tr.Retry(t.retryInfo(c, why, attempt))
		}
		if why == RetryInvalidToken {
			tok, err := t.presented(ctx, c.req) // checked as the first one was
			if err != nil {
				return nil, &opError{"the server refused the access token (invalid_token), and no new one could be had", err}
			}
			c.tok = tok
		}
		body, err := rewind(c.req)
		if err != nil {
			return nil, err
		}
		if resp, err = t.attempt(c, body); err != nil {
			return nil, err
		}
	}
}

// retryReason decides whether c's request goes again after resp, and
// records in c what the next attempt needs. It reads no body but a 400's
// first few KiB, and only when the response can be a challenge.
func (t *Transport) retryReason(c *call, resp *http.Response) RetryReason {
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
		return noRetry
	}
	newNonce := responseNonce(resp)
	now := t.now()
	skew, dated := serverClockSkew(resp, now.Add(c.offset))
	clockOff := dated && (skew >= clockTolerance || skew <= -clockTolerance) && skew < maxClockOffset && skew > -maxClockOffset
	if resp.StatusCode == http.StatusBadRequest && newNonce == "" && !clockOff && !c.offsetDropped {
		return noRetry // neither a nonce challenge nor a clock to mend: leave the body unread
	}
	ce := responseError(resp)
	if ce == nil || !ce.dpop() && t.authServer {
		return noRetry // an authorization server's 401 for another scheme asks for client authentication (RFC 6749 §5.2)
	}
	tr := t.Trace
	if tr != nil && tr.ChallengeReceived != nil {
		tr.ChallengeReceived(t.challengeInfo(c, ce))
	}
	if !replayable(c.req) || !ce.dpop() {
		return noRetry // a challenge for another scheme: a new proof or token would not help
	}
	switch {
	case ce.ErrorCode == CodeUseNonce:
		if newNonce == "" || newNonce == c.nonce || c.wasRefused(newNonce) || c.nonceRetries >= t.nonceRetries(c.req) {
			return noRetry
		}
		c.refused[c.nonceRetries] = c.nonce
		c.nonceRetries++
		c.nonce = newNonce
		return RetryNonce
	case ce.ErrorCode == CodeInvalidProof && (clockOff || c.offsetDropped) && !c.clockRetry:
		// The proof's iat was off: by the server's Date, or by an offset
		// that the server's clock no longer has (attempt dropped it).
		c.clockRetry = true
		if clockOff {
			c.offset = min(max(c.offset+skew.Round(time.Second), -maxClockOffset), maxClockOffset)
			c.nonces.setOffset(c.origin, c.offset)
			if tr != nil && tr.ClockOffsetLearned != nil {
				tr.ClockOffsetLearned(t.clockOffsetInfo(c))
			}
		}
	case ce.ErrorCode == CodeInvalidToken && resp.StatusCode == http.StatusUnauthorized && c.tok != nil && !c.tokRetry:
		src, ok := t.Source.(TokenSource)
		if !ok || !src.Invalidate(&oauth2.Token{AccessToken: c.tok.token}) {
			return noRetry
		}
		c.tokRetry = true
	default:
		return noRetry
	}
	if newNonce != "" {
		c.nonce = newNonce // the retry of another reason goes with the newest nonce
	}
	if ce.ErrorCode == CodeInvalidProof {
		return RetryClock
	}
	return RetryInvalidToken
}

// wasRefused reports whether nonce was challenged already for c.
func (c *call) wasRefused(nonce string) bool {
	for _, n := range c.refused[:c.nonceRetries] {
		if n == nonce {
			return true
		}
	}
	return false
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
