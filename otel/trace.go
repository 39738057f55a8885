package dpopotel

import (
	"context"
	"fmt"

	"github.com/dpopkit/dpop"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the meter [NewTrace] uses.
const ScopeName = "github.com/dpopkit/dpop/otel"

// NewTrace returns a [dpop.Trace] that records the metrics listed in the
// package documentation with a meter of mp, and adds an event to the span
// active in each event's context ([trace.SpanFromContext]) when that span
// is recording. If mp is nil, [otel.GetMeterProvider] is used.
//
// NewTrace is named after what it returns, the dpop package's hooks (as
// otelhttptrace.NewClientTrace returns an httptrace.ClientTrace): it makes
// no span of its own and needs no TracerProvider; the events go on the
// caller's span, the one the request's or the token request's context
// carries. Give the Trace to
// [dpop.Transport.Trace] (or the Trace field of a grant); join it with
// others, such as [dpop.NewLogTrace], with [dpop.JoinTraces]. It is safe
// for concurrent use.
func NewTrace(mp metric.MeterProvider) (*dpop.Trace, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	r, err := newRecorder(mp.Meter(ScopeName))
	if err != nil {
		return nil, fmt.Errorf("dpopotel: %w", err)
	}
	return &dpop.Trace{
		ProofSigned:        r.proofSigned,
		ChallengeReceived:  r.challengeReceived,
		Retry:              r.retry,
		NonceLearned:       r.nonceLearned,
		ClockOffsetLearned: r.clockOffsetLearned,
		TokenObtained:      r.tokenObtained,
		DowngradeRefused:   r.downgradeRefused,
	}, nil
}

// recording returns the span of ctx when it records, so that events cost
// nothing (no attribute slice) for a request without a sampled span.
func recording(ctx context.Context) (trace.Span, bool) {
	if ctx == nil {
		return nil, false
	}
	s := trace.SpanFromContext(ctx)
	return s, s.IsRecording()
}

// orBackground is ctx, or context.Background if ctx is nil: the metric API
// wants a context.
func orBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}

func (r *recorder) proofSigned(i dpop.ProofInfo) {
	ctx := orBackground(i.Context)
	k := proofKey{alg(i.Alg), method(i.Method), server(i.AuthServer), i.Nonce, i.ATH}
	opt := r.proofSets.get(k)
	r.proofs.Add(ctx, 1, opt.add...)
	r.proofDuration.Record(ctx, i.Duration.Seconds(), opt.rec...)
	if s, ok := recording(i.Context); ok {
		s.AddEvent("dpop.proof.signed", trace.WithAttributes(
			attribute.String(attrAlg, k.alg),
			attribute.String(attrMethod, k.method),
			attribute.String(attrHTU, i.HTU), // scheme://host[:port]/path: no query, no fragment
			attribute.Bool(attrProofNonce, i.Nonce),
			attribute.Bool(attrProofATH, i.ATH),
			attribute.Float64(attrDuration, i.Duration.Seconds()),
			attribute.String(attrServer, k.server),
		))
	}
}

func (r *recorder) challengeReceived(i dpop.ChallengeInfo) {
	k := challengeKey{errorCode(i.ErrorCode), challengeScheme(i.Scheme), server(i.AuthServer), challengeStatus(i.StatusCode)}
	r.challenges.Add(orBackground(i.Context), 1, r.challengeSets.get(k).add...)
	if s, ok := recording(i.Context); ok {
		s.AddEvent("dpop.challenge", trace.WithAttributes(
			attribute.String(attrError, k.code),
			attribute.String(attrScheme, k.scheme),
			attribute.Int(attrStatus, k.status),
			attribute.String(attrServer, k.server),
			attribute.String(attrOrigin, i.Origin), // on the event only: a span is one request's
		))
	}
}

func (r *recorder) retry(i dpop.RetryInfo) {
	k := retryKey{retryReason(i.Reason), server(i.AuthServer)}
	r.retries.Add(orBackground(i.Context), 1, r.retrySets.get(k).add...)
	if s, ok := recording(i.Context); ok {
		s.AddEvent("dpop.retry", trace.WithAttributes(
			attribute.String(attrRetryReason, k.reason),
			attribute.String(attrServer, k.server),
			attribute.Int(attrAttempt, i.Attempt),
			attribute.String(attrOrigin, i.Origin),
		))
	}
}

func (r *recorder) nonceLearned(i dpop.NonceInfo) {
	k := nonceKey{server(i.AuthServer), i.Changed}
	r.nonces.Add(orBackground(i.Context), 1, r.nonceSets.get(k).add...)
	if s, ok := recording(i.Context); ok {
		s.AddEvent("dpop.nonce", trace.WithAttributes(
			attribute.Bool(attrNonceChanged, i.Changed),
			attribute.String(attrServer, k.server),
			attribute.String(attrOrigin, i.Origin),
		))
	}
}

func (r *recorder) clockOffsetLearned(i dpop.ClockOffsetInfo) {
	srv := server(i.AuthServer)
	// Not by origin: a server chooses origins, through redirects.
	r.clockOffset.Record(orBackground(i.Context), i.Offset.Seconds(), r.clockSets.get(srv).rec...)
	if s, ok := recording(i.Context); ok {
		s.AddEvent("dpop.clock.offset", trace.WithAttributes(
			attribute.Float64(attrOffset, i.Offset.Seconds()),
			attribute.String(attrServer, srv),
			attribute.String(attrOrigin, i.Origin),
		))
	}
}

func (r *recorder) tokenObtained(i dpop.TokenRequestInfo) {
	ctx := orBackground(i.Context)
	k := tokenKey{grantType(i.GrantType), errorType(i.Err)}
	opt := r.tokenSets.get(k)
	r.tokens.Add(ctx, 1, opt.add...)
	r.tokenDuration.Record(ctx, i.Duration.Seconds(), opt.rec...)
	if s, ok := recording(i.Context); ok {
		attrs := []attribute.KeyValue{
			attribute.String(attrGrantType, k.grant),
			attribute.Float64(attrDuration, i.Duration.Seconds()),
		}
		if k.errType != "" {
			attrs = append(attrs, attribute.String(attrErrorType, k.errType))
		}
		s.AddEvent("dpop.token", trace.WithAttributes(attrs...))
	}
}

func (r *recorder) downgradeRefused(i dpop.DowngradeInfo) {
	k := downgradeKey{tokenType(i.TokenType), server(i.AuthServer)}
	r.downgrades.Add(orBackground(i.Context), 1, r.downgradeSets.get(k).add...)
	if s, ok := recording(i.Context); ok {
		s.AddEvent("dpop.downgrade.refused", trace.WithAttributes(attribute.String(attrTokenType, k.tokenType),
			attribute.String(attrServer, k.server)))
	}
}
