// Package dpopotel reports what the DPoP client of [github.com/dpopkit/dpop]
// and its resource server ([github.com/dpopkit/dpop/resource]) do to
// OpenTelemetry: metrics, and events on the caller's spans. It is a
// module of its own, so that the dpop module does not depend on
// OpenTelemetry.
//
// [NewTrace] returns a [dpop.Trace] to set on a [dpop.Transport] (or a
// grant's Trace field):
//
//	trace, err := dpopotel.NewTrace(nil) // the global MeterProvider
//	if err != nil { … }
//	client := &http.Client{Transport: &dpop.Transport{Signer: signer, Source: src, Trace: trace}}
//
// # Metrics
//
// The meter's scope is [ScopeName]. No attribute of a metric takes a
// value a server chose unless that value is one of a small known set
// (others read "_OTHER"): not an origin, which a server chooses through
// redirects, nor an error code as sent, so that no server can grow the
// number of series. Every instrument but the token ones has dpop.target,
// the kind of server the request went to: "authorization" for the token
// machinery's requests (token, PAR, revocation), "resource" for the API's.
//
//   - dpop.proofs ({proof}): proofs signed (RFC 9449 §4.2), with
//     dpop.proof.alg, http.request.method, dpop.proof.nonce and
//     dpop.proof.ath (whether the proof carried a server nonce and an
//     access token hash).
//   - dpop.proof.duration (s, histogram): the time to sign one, with the
//     same attributes.
//   - dpop.challenges ({challenge}): DPoP errors answered by servers, with
//     dpop.error (use_dpop_nonce, invalid_dpop_proof, invalid_token or
//     _OTHER), dpop.scheme (DPoP; Bearer, Basic or _OTHER from a server
//     that does not accept DPoP) and http.response.status_code (400 from
//     an authorization server, 401 from a resource server); the nonce
//     challenges of RFC 9449 §8 and §9 are those with
//     dpop.error=use_dpop_nonce.
//   - dpop.retries ({retry}): requests sent again, with dpop.retry.reason
//     (nonce, clock, invalid_token).
//   - dpop.nonce.updates ({nonce}): nonces learned (dpop.nonce.changed
//     false) or changed (true) for an origin.
//   - dpop.clock.offset (s, gauge): the last clock offset learned, the
//     server's clock minus the client's; by dpop.target, not by origin.
//   - dpop.token.requests ({request}) and dpop.token.duration (s,
//     histogram): token requests, with oauth.grant_type and, on failure,
//     error.type (the OAuth error code, token_type, timeout, canceled or
//     _OTHER).
//   - dpop.downgrades ({token}): Bearer tokens refused (RFC 9449 §5).
//
// # Resource server metrics
//
// [NewResourceTrace] returns a [resource.Trace] for a [resource.Verifier]
// ([resource.Config.Trace]). Its attributes are the server's own words,
// never a value a client chose (no thumbprint, no htu, no token):
//
//   - dpop.server.verified ({request}) and dpop.server.verify.duration (s,
//     histogram): requests accepted, with dpop.scheme (DPoP, or Bearer in
//     the migration mode), dpop.proof.alg and dpop.proof.nonce.
//   - dpop.server.refusals ({request}): requests refused, with
//     dpop.refusal.reason (a [resource.Reason]), dpop.error (the error code
//     of RFC 9449 §7.1, when one was answered) and
//     http.response.status_code.
//   - dpop.server.replays ({proof}): proofs presented again (RFC 9449
//     §11.1).
//   - dpop.server.nonce.challenges ({challenge}): use_dpop_nonce answers
//     (§9), with dpop.nonce.stale (the proof carried a nonce no longer
//     accepted).
//   - dpop.server.iat.offset (s, histogram): a proof's iat minus the
//     server's clock, for each proof whose signature verified.
//
// The events, on the span of the request's context, are
// dpop.server.verified, dpop.server.refused, dpop.server.replayed,
// dpop.server.nonce.challenge and dpop.server.iat.offset.
//
// # Span events
//
// Each callback adds an event to the span of its context when that span is
// recording: dpop.proof.signed, dpop.challenge, dpop.retry, dpop.nonce,
// dpop.clock.offset, dpop.token and dpop.downgrade.refused, with the
// attributes above and the origin (dpop.origin: a span is one request's,
// so it may say which), the proof's htu (dpop.proof.htu: scheme, host and
// path; never a query), cut short, and the attempt number (dpop.attempt:
// 2 for the first retry). No event or attribute carries a secret: no
// proof, token, key or client credential, nor a nonce's value.
//
// # One span per attempt, with otelhttp
//
// The DPoP Transport may send a request more than once (a nonce challenge,
// a clock correction, a refused token). Put otelhttp's transport under it,
// as its Base, for one client span per attempt, each with the proof it
// carried; [ResendCount] under otelhttp and [CountAttempts] above the DPoP
// Transport set http.request.resend_count on the spans of retries:
//
//	client := &http.Client{Transport: dpopotel.CountAttempts(&dpop.Transport{
//		Signer: signer,
//		Source: src,
//		Trace:  trace,
//		Base:   otelhttp.NewTransport(dpopotel.ResendCount(nil)),
//	})}
//
// otelhttp above the DPoP Transport would make one span for the request,
// however many attempts it took.
package dpopotel
