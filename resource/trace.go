package resource

import (
	"context"
	"time"
)

// Trace holds callbacks for what a [Verifier] decides, in the spirit of
// [net/http/httptrace.ClientTrace]: set the fields you need and give it to
// [Config.Trace]. A nil Trace, or a nil field, costs nothing.
//
// The callbacks run on the goroutine serving the request, possibly from
// many goroutines at once, and should return quickly. They are never handed
// a token or a proof; the strings they get that a client sent are escaped
// and cut short. [NewLogTrace] logs through log/slog.
type Trace struct {
	// Verified is called for each request accepted.
	Verified func(VerifiedInfo)

	// Refused is called for each request refused, with the reason: every
	// replay and nonce challenge included.
	Refused func(RefusedInfo)

	// Replayed is called, after Refused, for a proof accepted before
	// (RFC 9449 §11.1): a replay, or a client that sent a request twice.
	Replayed func(ReplayInfo)

	// NonceChallenged is called, after Refused, for each use_dpop_nonce
	// answer (RFC 9449 §9).
	NonceChallenged func(NonceChallengeInfo)

	// IATOffset is called for each proof whose signature verified, with
	// how far its iat is from the server's clock: the client's clock
	// offset plus the time the request took.
	IATOffset func(IATOffsetInfo)
}

// VerifiedInfo describes an accepted request.
type VerifiedInfo struct {
	Context  context.Context // the request's
	Scheme   string          // "DPoP", or "Bearer" in the migration mode ([Config.AllowBearer])
	Alg      string          // the proof's alg; "" for Bearer
	JKT      string          // the thumbprint of the proof's key (the token's cnf.jkt); "" for Bearer
	Nonce    bool            // whether the proof carried a valid server nonce
	Duration time.Duration   // how long the checks took, the TokenVerifier and the ReplayStore included
}

// RefusedInfo describes a refused request.
type RefusedInfo struct {
	Context context.Context
	Reason  Reason
	Code    ErrorCode // "" for a request without credentials the server accepts
	Status  int       // 400, 401 or 503
	Err     *Error    // the refusal; its text is safe to log
}

// ReplayInfo describes a replayed proof.
type ReplayInfo struct {
	Context context.Context
	JKT     string // the thumbprint of the proof's key: whose proof was replayed
}

// NonceChallengeInfo describes a use_dpop_nonce answer.
type NonceChallengeInfo struct {
	Context context.Context
	Stale   bool // the proof carried a nonce, no longer (or never) accepted; false: none
}

// IATOffsetInfo describes the iat of a proof.
type IATOffsetInfo struct {
	Context context.Context
	Offset  time.Duration // iat minus the server's time: negative for a proof made before now
}

// JoinTraces returns a Trace that calls the callbacks of each of traces in
// turn (nil traces are skipped), to use several at once, such as logs and
// metrics.
func JoinTraces(traces ...*Trace) *Trace {
	var j Trace
	for _, t := range traces {
		if t == nil {
			continue
		}
		j.Verified = join(j.Verified, t.Verified)
		j.Refused = join(j.Refused, t.Refused)
		j.Replayed = join(j.Replayed, t.Replayed)
		j.NonceChallenged = join(j.NonceChallenged, t.NonceChallenged)
		j.IATOffset = join(j.IATOffset, t.IATOffset)
	}
	return &j
}

func join[T any](a, b func(T)) func(T) {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(v T) { a(v); b(v) }
}

// refused reports the refusal e of a request to the trace.
func (t *Trace) refused(ctx context.Context, e *Error, jkt string) {
	if t == nil {
		return
	}
	if t.Refused != nil {
		t.Refused(RefusedInfo{Context: ctx, Reason: e.Reason, Code: e.Code, Status: e.Status(), Err: e})
	}
	if t.Replayed != nil && e.Reason == ReasonReplay {
		t.Replayed(ReplayInfo{Context: ctx, JKT: jkt})
	}
	if t.NonceChallenged != nil && e.Code == ErrorUseNonce {
		t.NonceChallenged(NonceChallengeInfo{Context: ctx, Stale: e.staleNonce})
	}
}
