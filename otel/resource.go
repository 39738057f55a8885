package dpopotel

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/dpopkit/dpop/resource"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys of the resource server's metrics and span events.
const (
	attrScheme      = "dpop.scheme"
	attrReason      = "dpop.refusal.reason"
	attrNonceStale  = "dpop.nonce.stale"
	attrVerifyNonce = "dpop.proof.nonce"
)

// NewResourceTrace returns a [resource.Trace], for a resource server's
// [resource.Verifier] (RFC 9449 §7), that records the server-side metrics
// listed in the package documentation with a meter of mp, and adds an
// event to the request's span when that span is recording. If mp is nil,
// [otel.GetMeterProvider] is used.
//
// Give it to [resource.Config.Trace]; join it with others, such as
// [resource.NewLogTrace], with [resource.JoinTraces]. No metric attribute
// carries a value a client chose: the refusal reason is one of the
// [resource.Reason] constants, the algorithm one the Verifier accepted,
// and the proof key's thumbprint is never recorded. It is safe for
// concurrent use.
func NewResourceTrace(mp metric.MeterProvider) (*resource.Trace, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	r, err := newServerRecorder(mp.Meter(ScopeName))
	if err != nil {
		return nil, fmt.Errorf("dpopotel: %w", err)
	}
	return &resource.Trace{
		Verified:        r.verified,
		Refused:         r.refused,
		Replayed:        r.replayed,
		NonceChallenged: r.nonceChallenged,
		IATOffset:       r.iatOffset,
	}, nil
}

// serverRecorder holds the instruments of NewResourceTrace.
type serverRecorder struct {
	verifiedCount metric.Int64Counter
	duration      metric.Float64Histogram
	refusals      metric.Int64Counter
	replays       metric.Int64Counter
	challenges    metric.Int64Counter
	iat           metric.Float64Histogram

	verifiedSets  optionCache[verifiedKey]
	refusalSets   optionCache[refusalKey]
	challengeSets optionCache[bool]
}

type verifiedKey struct {
	scheme, alg string
	nonce       bool
}

type refusalKey struct {
	reason resource.Reason
	code   resource.ErrorCode
	status int
}

func newServerRecorder(m metric.Meter) (*serverRecorder, error) {
	r := new(serverRecorder)
	var err, e error
	count := func(name, unit, desc string) metric.Int64Counter {
		c, e := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		err = errors.Join(err, e)
		return c
	}
	r.verifiedCount = count("dpop.server.verified", "{request}", "Requests a DPoP resource server accepted (RFC 9449 §7).")
	r.refusals = count("dpop.server.refusals", "{request}", "Requests a DPoP resource server refused, by reason (RFC 9449 §7.1).")
	r.replays = count("dpop.server.replays", "{proof}", "DPoP proofs presented again after they were accepted (RFC 9449 §11.1).")
	r.challenges = count("dpop.server.nonce.challenges", "{challenge}", "use_dpop_nonce answers of a resource server (RFC 9449 §9).")
	r.duration, e = m.Float64Histogram("dpop.server.verify.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to verify an accepted request, the token verifier and the replay store included."),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	err = errors.Join(err, e)
	r.iat, e = m.Float64Histogram("dpop.server.iat.offset", metric.WithUnit("s"),
		metric.WithDescription("A proof's iat minus the server's clock, for each proof whose signature verified (RFC 9449 §11.1): negative for a proof made before."),
		metric.WithExplicitBucketBoundaries(-300, -60, -30, -10, -5, -2, -1, -0.5, 0, 0.5, 1, 2, 5, 10, 30, 60, 300))
	err = errors.Join(err, e)
	if err != nil {
		return nil, err
	}
	r.verifiedSets.build = func(k verifiedKey) attribute.Set {
		return attribute.NewSet(attribute.String(attrScheme, k.scheme), attribute.String(attrAlg, k.alg), attribute.Bool(attrVerifyNonce, k.nonce))
	}
	r.refusalSets.build = func(k refusalKey) attribute.Set {
		kvs := []attribute.KeyValue{attribute.String(attrReason, string(k.reason)), attribute.Int(attrStatus, k.status)}
		if k.code != "" {
			kvs = append(kvs, attribute.String(attrError, string(k.code)))
		}
		return attribute.NewSet(kvs...)
	}
	r.challengeSets.build = func(stale bool) attribute.Set { return attribute.NewSet(attribute.Bool(attrNonceStale, stale)) }
	return r, nil
}

func (r *serverRecorder) verified(i resource.VerifiedInfo) {
	ctx := orBackground(i.Context)
	k := verifiedKey{scheme(i.Scheme), proofAlg(i.Alg), i.Nonce}
	opt := r.verifiedSets.get(k)
	r.verifiedCount.Add(ctx, 1, opt.add...)
	r.duration.Record(ctx, i.Duration.Seconds(), opt.rec...)
	if s, ok := recording(i.Context); ok {
		s.AddEvent("dpop.server.verified", trace.WithAttributes(
			attribute.String(attrScheme, k.scheme),
			attribute.String(attrAlg, k.alg),
			attribute.Bool(attrVerifyNonce, k.nonce),
			attribute.Float64(attrDuration, i.Duration.Seconds()),
		))
	}
}

func (r *serverRecorder) refused(i resource.RefusedInfo) {
	k := refusalKey{reason(i.Reason), code(i.Code), status(i.Status)}
	r.refusals.Add(orBackground(i.Context), 1, r.refusalSets.get(k).add...)
	if s, ok := recording(i.Context); ok {
		s.AddEvent("dpop.server.refused", trace.WithAttributes(
			attribute.String(attrReason, string(k.reason)),
			attribute.String(attrError, string(k.code)),
			attribute.Int(attrStatus, k.status),
		))
	}
}

func (r *serverRecorder) replayed(i resource.ReplayInfo) {
	r.replays.Add(orBackground(i.Context), 1)
	if s, ok := recording(i.Context); ok {
		s.AddEvent("dpop.server.replayed")
	}
}

func (r *serverRecorder) nonceChallenged(i resource.NonceChallengeInfo) {
	r.challenges.Add(orBackground(i.Context), 1, r.challengeSets.get(i.Stale).add...)
	if s, ok := recording(i.Context); ok {
		s.AddEvent("dpop.server.nonce.challenge", trace.WithAttributes(attribute.Bool(attrNonceStale, i.Stale)))
	}
}

func (r *serverRecorder) iatOffset(i resource.IATOffsetInfo) {
	r.iat.Record(orBackground(i.Context), i.Offset.Seconds())
	if s, ok := recording(i.Context); ok {
		s.AddEvent("dpop.server.iat.offset", trace.WithAttributes(attribute.Float64(attrOffset, i.Offset.Seconds())))
	}
}

// scheme is "DPoP", "Bearer" or _OTHER.
func scheme(s string) string {
	if s == "DPoP" || s == "Bearer" {
		return s
	}
	return other
}

// proofAlg is one of the algorithms a Verifier can accept, "" for a
// Bearer token, or _OTHER.
func proofAlg(a string) string {
	switch a {
	case "", "ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512":
		return a
	}
	return other
}

// reason is one of the resource.Reason constants, or _OTHER.
func reason(r resource.Reason) resource.Reason {
	switch r {
	case resource.ReasonMissingToken, resource.ReasonScheme, resource.ReasonMalformed, resource.ReasonTooLarge,
		resource.ReasonURL, resource.ReasonForwarded, resource.ReasonMissingProof, resource.ReasonProofSyntax,
		resource.ReasonProofHeader, resource.ReasonProofAlg, resource.ReasonProofKey, resource.ReasonProofSignature,
		resource.ReasonJTI, resource.ReasonHTM, resource.ReasonHTU, resource.ReasonIAT, resource.ReasonATH,
		resource.ReasonNonce, resource.ReasonToken, resource.ReasonTokenUnavailable, resource.ReasonUnbound,
		resource.ReasonBoundBearer, resource.ReasonJKT, resource.ReasonReplay, resource.ReasonReplayQuota,
		resource.ReasonStoreUnavailable, resource.ReasonCanceled:
		return r
	}
	return other
}

// code is one of the error codes of RFC 6750 §3.1 and RFC 9449 §7.1, "",
// or _OTHER.
func code(c resource.ErrorCode) resource.ErrorCode {
	switch c {
	case "", resource.ErrorInvalidRequest, resource.ErrorInvalidToken, resource.ErrorInvalidProof, resource.ErrorUseNonce:
		return c
	}
	return other
}

// status is a status a Verifier answers, or 0.
func status(s int) int {
	switch s {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusServiceUnavailable:
		return s
	}
	return 0
}
