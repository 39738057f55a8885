package dpop

import (
	"context"
	"log/slog"
	"time"
)

// Trace holds callbacks for what the SDK does, in the spirit of
// [net/http/httptrace.ClientTrace]: set the fields you need on a Trace and
// give it to [Transport.Trace], [Config.Trace] or
// [ClientCredentials.Trace]. A nil Trace, or a nil field, costs nothing.
//
// The callbacks run on the goroutine doing the work, possibly from many
// goroutines at once, and should return quickly. They are never handed a
// secret: no proof, no token, no key, no client credential. The OpenTelemetry
// module (github.com/dpopkit/dpop/otel) builds its metrics and span events
// from a Trace, and [NewLogTrace] logs through log/slog.
type Trace struct {
	// ProofSigned is called after each proof is signed.
	ProofSigned func(ProofInfo)

	// ChallengeReceived is called for each DPoP error a server answered
	// (RFC 9449 §7.1, §8, §9): a use_dpop_nonce challenge, an
	// invalid_dpop_proof, an invalid_token.
	ChallengeReceived func(ChallengeInfo)

	// Retry is called before a request is sent again, with the reason.
	Retry func(RetryInfo)

	// NonceLearned is called when a server's response brings an origin a
	// nonce other than the one the request carried.
	NonceLearned func(NonceInfo)

	// ClockOffsetLearned is called when a server's Date shows that the
	// client's clock is off, and the proofs to that origin are corrected.
	ClockOffsetLearned func(ClockOffsetInfo)

	// TokenObtained is called after each token request of a grant (the
	// first token or a refresh), with its outcome.
	TokenObtained func(TokenRequestInfo)

	// DowngradeRefused is called when a Bearer token was refused where a
	// DPoP-bound one was expected (RFC 9449 §5).
	DowngradeRefused func(DowngradeInfo)
}

// ProofInfo describes a signed proof (RFC 9449 §4.2), never the proof.
type ProofInfo struct {
	Context  context.Context // the request's
	Alg      string          // such as "ES256"
	Method   string          // htm
	HTU      string          // htu: scheme://host[:port]/path, no query
	Nonce    bool            // whether the proof carries a server nonce
	ATH      bool            // whether it carries an access token hash
	Duration time.Duration   // how long signing took
}

// ChallengeInfo describes a DPoP error a server answered.
type ChallengeInfo struct {
	Context    context.Context
	Origin     string // scheme://host[:port]
	StatusCode int
	ErrorCode  string // such as CodeUseNonce
}

// RetryReason says why the retry policy sends a request again
// ([RetryInfo]).
type RetryReason string

// The reasons for a retry; the package documentation ("Retries") tells
// the bound of each.
const (
	RetryNonce        RetryReason = "nonce"         // a use_dpop_nonce challenge (RFC 9449 §8, §9)
	RetryClock        RetryReason = "clock"         // an iat refused by a server whose clock differs (§11.1)
	RetryInvalidToken RetryReason = "invalid_token" // a refused token, replaced (RFC 6750 §3.1)
)

// RetryInfo describes a request about to be sent again.
type RetryInfo struct {
	Context context.Context
	Origin  string
	Reason  RetryReason
	Attempt int // the attempt about to be sent: 2 for the first retry
}

// NonceInfo describes a nonce an origin sent (§8.1); the value is not
// given.
type NonceInfo struct {
	Context context.Context
	Origin  string
	Changed bool // whether the request carried another nonce (false: it carried none)
}

// ClockOffsetInfo describes a clock difference learned for an origin.
type ClockOffsetInfo struct {
	Context context.Context
	Origin  string
	Offset  time.Duration // the server's clock minus the client's
}

// GrantType is the grant of a token request ([TokenRequestInfo]): the
// grant_type value it sent.
type GrantType string

// The grants a [Config] or [ClientCredentials] makes token requests with.
const (
	GrantAuthorizationCode GrantType = "authorization_code"                           // RFC 6749 §4.1.3
	GrantRefreshToken      GrantType = "refresh_token"                                // RFC 6749 §6
	GrantClientCredentials GrantType = "client_credentials"                           // RFC 6749 §4.4.2
	GrantDeviceCode        GrantType = "urn:ietf:params:oauth:grant-type:device_code" // RFC 8628 §3.4
)

// TokenRequestInfo describes a token request of a grant and its outcome.
type TokenRequestInfo struct {
	Context   context.Context
	GrantType GrantType
	Duration  time.Duration
	Err       error // nil on success
}

// DowngradeInfo describes a refused Bearer token.
type DowngradeInfo struct {
	Context   context.Context
	TokenType string // as answered
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
		j.ProofSigned = join(j.ProofSigned, t.ProofSigned)
		j.ChallengeReceived = join(j.ChallengeReceived, t.ChallengeReceived)
		j.Retry = join(j.Retry, t.Retry)
		j.NonceLearned = join(j.NonceLearned, t.NonceLearned)
		j.ClockOffsetLearned = join(j.ClockOffsetLearned, t.ClockOffsetLearned)
		j.TokenObtained = join(j.TokenObtained, t.TokenObtained)
		j.DowngradeRefused = join(j.DowngradeRefused, t.DowngradeRefused)
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

// NewLogTrace returns a Trace that logs every event to l at debug level,
// with the event's context, and without secrets (the info structs hold
// none). It panics, with a message saying so, when l is nil: it has no
// error result, and a nil logger would otherwise fail inside a request.
func NewLogTrace(l *slog.Logger) *Trace {
	if l == nil {
		panic("dpop: NewLogTrace: the logger is nil")
	}
	log := func(ctx context.Context, msg string, attrs ...slog.Attr) {
		if ctx == nil {
			ctx = context.Background()
		}
		l.LogAttrs(ctx, slog.LevelDebug, msg, attrs...)
	}
	return &Trace{
		ProofSigned: func(i ProofInfo) {
			log(i.Context, "dpop: proof signed", slog.String("alg", i.Alg), slog.String("htm", i.Method),
				slog.String("htu", i.HTU), slog.Bool("nonce", i.Nonce), slog.Bool("ath", i.ATH), slog.Duration("duration", i.Duration))
		},
		ChallengeReceived: func(i ChallengeInfo) {
			log(i.Context, "dpop: challenge received", slog.String("origin", i.Origin),
				slog.Int("status", i.StatusCode), slog.String("error", i.ErrorCode))
		},
		Retry: func(i RetryInfo) {
			log(i.Context, "dpop: retry", slog.String("origin", i.Origin), slog.String("reason", string(i.Reason)), slog.Int("attempt", i.Attempt))
		},
		NonceLearned: func(i NonceInfo) {
			log(i.Context, "dpop: nonce learned", slog.String("origin", i.Origin), slog.Bool("changed", i.Changed))
		},
		ClockOffsetLearned: func(i ClockOffsetInfo) {
			log(i.Context, "dpop: clock offset learned", slog.String("origin", i.Origin), slog.Duration("offset", i.Offset))
		},
		TokenObtained: func(i TokenRequestInfo) {
			attrs := []slog.Attr{slog.String("grant_type", string(i.GrantType)), slog.Duration("duration", i.Duration)}
			if i.Err != nil {
				attrs = append(attrs, slog.String("error", i.Err.Error()))
			}
			log(i.Context, "dpop: token request", attrs...)
		},
		DowngradeRefused: func(i DowngradeInfo) {
			log(i.Context, "dpop: Bearer token refused (downgrade)", slog.String("token_type", quote(i.TokenType)))
		},
	}
}
