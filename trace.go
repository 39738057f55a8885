package dpop

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// Trace holds callbacks for what the SDK does, in the spirit of
// [net/http/httptrace.ClientTrace]: set the fields you need on a Trace and
// give it to [Transport.Trace], [Config.Trace] or
// [ClientCredentials.Trace]. A nil Trace, or a nil field, costs nothing.
//
// The callbacks run on the goroutine doing the work, possibly from many
// goroutines at once, and should return quickly. They are never handed a
// secret: no proof, no token, no key, no client credential. The strings
// a server chose (an error code, an origin or a path it redirected to)
// come cut short, with only printable characters. The OpenTelemetry
// module (github.com/dpopkit/dpop/otel) builds its metrics and span events
// from a Trace, and [NewLogTrace] logs through log/slog.
type Trace struct {
	// ProofSigned is called after each proof is signed.
	ProofSigned func(ProofInfo)

	// ChallengeReceived is called for each DPoP error a server answered
	// (RFC 9449 §7.1, §8, §9): a use_dpop_nonce challenge, an
	// invalid_dpop_proof, an invalid_token; and for a 401 that challenges
	// for another scheme only (Bearer, say), from a server that does not
	// accept DPoP.
	ChallengeReceived func(ChallengeInfo)

	// Retry is called before a request is sent again, with the reason.
	Retry func(RetryInfo)

	// NonceLearned is called when a server's response brings an origin a
	// nonce other than the one it had; the responses that bring it again
	// are not reported.
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
	Context    context.Context // the request's
	AuthServer bool            // as in [ChallengeInfo]
	Alg        string          // such as "ES256"
	Method     string          // htm
	HTU        string          // htu: scheme://host[:port]/path, no query; cut short
	Nonce      bool            // whether the proof carries a server nonce
	ATH        bool            // whether it carries an access token hash
	Duration   time.Duration   // how long signing took
}

// ChallengeInfo describes a DPoP error a server answered, or a challenge
// for another scheme only.
type ChallengeInfo struct {
	Context context.Context

	// AuthServer reports whether the request went to the authorization
	// server (a token, PAR, device or revocation request of a Config or a
	// ClientCredentials); otherwise it went to a resource server, the API.
	AuthServer bool

	Origin string // scheme://host[:port]
	Method string // the request's method
	Path   string // the request's path as sent, never its query; cut short

	StatusCode int
	ErrorCode  string // such as CodeUseNonce

	// Scheme is as in [ChallengeError]: "DPoP", another scheme (such as
	// "Bearer") from a server that does not accept DPoP, or "" for an
	// authorization server's 400.
	Scheme string
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
	Context              context.Context
	AuthServer           bool // as in [ChallengeInfo]
	Origin, Method, Path string
	Reason               RetryReason
	Attempt              int // the attempt about to be sent: 2 for the first retry
}

// NonceInfo describes a new nonce an origin sent (§8.1); the value is
// not given.
type NonceInfo struct {
	Context              context.Context
	AuthServer           bool // as in [ChallengeInfo]
	Origin, Method, Path string
	Changed              bool // whether the origin had another nonce (false: it had none)
}

// ClockOffsetInfo describes a clock difference learned for an origin.
type ClockOffsetInfo struct {
	Context              context.Context
	AuthServer           bool // as in [ChallengeInfo]
	Origin, Method, Path string
	Offset               time.Duration // the server's clock minus the client's
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

// TokenRequestInfo describes a token request of a grant, a POST to the
// authorization server's token endpoint, and its outcome.
type TokenRequestInfo struct {
	Context      context.Context
	GrantType    GrantType
	Origin, Path string // of the token endpoint, never its query; cut short
	Duration     time.Duration
	Err          error // nil on success
}

// DowngradeInfo describes a refused Bearer token: one a token endpoint
// answered (AuthServer is then true), or one the Transport's Source
// handed out for a request to a resource server.
type DowngradeInfo struct {
	Context              context.Context
	AuthServer           bool
	Origin, Method, Path string
	TokenType            string // as answered, cut short
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

// NewLogTrace returns a Trace that logs the events to l, with each
// event's context and without secrets (the info structs hold none), for
// an operator: refusals (of a proof, of a token, of DPoP altogether),
// refused Bearer tokens and failed token requests at warn level; a clock
// offset learned at info level; proofs, nonce challenges, retries, new
// nonces and token requests that succeed at debug level. Every line says
// which server the request went to ("server": "authorization" or
// "resource"), and the request's method, origin and path, never its
// query. It panics, with a message saying so, when l is nil: it has no
// error result, and a nil logger would otherwise fail inside a request.
func NewLogTrace(l *slog.Logger) *Trace {
	if l == nil {
		panic("dpop: NewLogTrace: the logger is nil")
	}
	log := func(ctx context.Context, level slog.Level, msg string, authServer bool, origin, method, path string, attrs ...slog.Attr) {
		if ctx == nil {
			ctx = context.Background()
		}
		if !l.Enabled(ctx, level) {
			return
		}
		server := "resource"
		if authServer {
			server = "authorization"
		}
		head := make([]slog.Attr, 0, 4+len(attrs))
		head = append(head, slog.String("server", server), slog.String("method", method))
		if origin != "" {
			head = append(head, slog.String("origin", origin), slog.String("path", path))
		}
		l.LogAttrs(ctx, level, msg, append(head, attrs...)...)
	}
	return &Trace{
		ProofSigned: func(i ProofInfo) {
			log(i.Context, slog.LevelDebug, "dpop: proof signed", i.AuthServer, "", i.Method, "", slog.String("alg", i.Alg),
				slog.String("htu", i.HTU), slog.Bool("nonce", i.Nonce), slog.Bool("ath", i.ATH), slog.Duration("duration", i.Duration))
		},
		ChallengeReceived: func(i ChallengeInfo) {
			level, msg := slog.LevelWarn, "dpop: request refused"
			switch {
			case i.Scheme != "" && i.Scheme != "DPoP":
				msg = "dpop: the server does not accept DPoP"
			case i.ErrorCode == CodeUseNonce:
				level, msg = slog.LevelDebug, "dpop: challenge received"
			case i.ErrorCode == CodeInvalidProof:
				msg = "dpop: proof refused"
			case i.ErrorCode == CodeInvalidToken:
				msg = "dpop: access token refused"
			}
			attrs := []slog.Attr{slog.Int("status", i.StatusCode), slog.String("error", i.ErrorCode)}
			if i.Scheme != "" {
				attrs = append(attrs, slog.String("scheme", i.Scheme))
			}
			log(i.Context, level, msg, i.AuthServer, i.Origin, i.Method, i.Path, attrs...)
		},
		Retry: func(i RetryInfo) {
			log(i.Context, slog.LevelDebug, "dpop: retry", i.AuthServer, i.Origin, i.Method, i.Path,
				slog.String("reason", string(i.Reason)), slog.Int("attempt", i.Attempt))
		},
		NonceLearned: func(i NonceInfo) {
			log(i.Context, slog.LevelDebug, "dpop: nonce learned", i.AuthServer, i.Origin, i.Method, i.Path, slog.Bool("changed", i.Changed))
		},
		ClockOffsetLearned: func(i ClockOffsetInfo) {
			log(i.Context, slog.LevelInfo, "dpop: clock offset learned", i.AuthServer, i.Origin, i.Method, i.Path, slog.Duration("offset", i.Offset))
		},
		TokenObtained: func(i TokenRequestInfo) {
			level, msg := slog.LevelDebug, "dpop: token request"
			attrs := []slog.Attr{slog.String("grant_type", string(i.GrantType)), slog.Duration("duration", i.Duration)}
			if i.Err != nil {
				level, msg = slog.LevelWarn, "dpop: token request failed"
				attrs = append(attrs, slog.String("error", i.Err.Error()))
			}
			log(i.Context, level, msg, true, i.Origin, http.MethodPost, i.Path, attrs...)
		},
		DowngradeRefused: func(i DowngradeInfo) {
			log(i.Context, slog.LevelWarn, "dpop: Bearer token refused (downgrade)", i.AuthServer, i.Origin, i.Method, i.Path,
				slog.String("token_type", i.TokenType))
		},
	}
}
