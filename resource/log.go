package resource

import (
	"context"
	"log/slog"
)

// NewLogTrace returns a Trace that logs what a Verifier decides to l,
// with the request's context, at these levels:
//
//   - Error: the server could not answer (the TokenVerifier or the
//     ReplayStore unavailable: 503);
//   - Warn: a refusal that points at an attack or a broken client (a
//     replay, a bad signature or key, htm or htu of another request, a
//     token bound to another key or sent as Bearer, forwarding headers in
//     conflict, a client over its replay quota);
//   - Info: the other refusals, which well-behaved clients meet too (no
//     or an expired token, an iat off, a malformed request);
//   - Debug: accepted requests, nonce challenges, requests without
//     credentials, and the iat offset of each proof.
//
// Nothing secret is logged: no token, no proof. Replays and nonce
// challenges are logged once, as refusals.
func NewLogTrace(l *slog.Logger) *Trace {
	log := func(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
		if ctx == nil {
			ctx = context.Background()
		}
		l.LogAttrs(ctx, level, msg, attrs...)
	}
	return &Trace{
		Verified: func(i VerifiedInfo) {
			log(i.Context, slog.LevelDebug, "dpop: request verified", slog.String("scheme", i.Scheme),
				slog.String("alg", i.Alg), slog.String("jkt", i.JKT), slog.Bool("nonce", i.Nonce), slog.Duration("duration", i.Duration))
		},
		Refused: func(i RefusedInfo) {
			attrs := []slog.Attr{slog.String("reason", string(i.Reason)), slog.Int("status", i.Status)}
			if i.Code != "" {
				attrs = append(attrs, slog.String("error", string(i.Code)))
			}
			if i.Err != nil && i.Err.Err != nil {
				attrs = append(attrs, slog.String("detail", trimPrefix(i.Err.Err.Error())))
			}
			log(i.Context, refusalLevel(i.Reason, i.Code), "dpop: request refused", attrs...)
		},
		IATOffset: func(i IATOffsetInfo) {
			log(i.Context, slog.LevelDebug, "dpop: proof iat offset", slog.Duration("offset", i.Offset))
		},
	}
}

// refusalLevel is the level a refusal is logged at.
func refusalLevel(r Reason, code ErrorCode) slog.Level {
	switch r {
	case ReasonStoreUnavailable, ReasonTokenUnavailable:
		return slog.LevelError
	case ReasonReplay, ReasonReplayQuota, ReasonProofSignature, ReasonProofKey, ReasonHTM, ReasonHTU,
		ReasonJKT, ReasonBoundBearer, ReasonForwarded:
		return slog.LevelWarn
	case ReasonMissingToken, ReasonScheme, ReasonCanceled:
		return slog.LevelDebug
	}
	if code == ErrorUseNonce {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}
