package dpopotel

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"

	"go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// attemptsKey is the context key of a request's *attempts.
type attemptsKey struct{}

// attempts counts the attempts of one request.
type attempts struct{ n atomic.Int64 }

// CountAttempts returns a RoundTripper that sends each request through
// next, a [dpop.Transport], with a counter of its attempts in its context,
// for [ResendCount] under it to read. Each request gets its own counter:
// the attempts of concurrent requests that share a context are counted
// apart. A redirect is a new request to next, and starts again at zero.
//
// The request is not modified: next gets a shallow copy with the new
// context.
func CountAttempts(next http.RoundTripper) http.RoundTripper {
	return countAttempts{next}
}

type countAttempts struct{ next http.RoundTripper }

func (t countAttempts) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.next == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("dpopotel: CountAttempts has no RoundTripper to send through")
	}
	return t.next.RoundTrip(req.WithContext(context.WithValue(req.Context(), attemptsKey{}, new(attempts))))
}

// ResendCount returns a RoundTripper that sends each request through base
// (nil means [http.DefaultTransport]) after setting the
// http.request.resend_count attribute of the semantic conventions on the
// span of the request's context when the request is a resend: 1 for the
// first retry, 2 for the second. Put it under otelhttp's transport, whose
// span it marks, and that under the DPoP Transport, itself under
// [CountAttempts], which gives the count:
//
//	client := &http.Client{Transport: dpopotel.CountAttempts(&dpop.Transport{
//		Signer: signer,
//		Source: src,
//		Base:   otelhttp.NewTransport(dpopotel.ResendCount(nil)),
//	})}
//
// Without CountAttempts above, it only sends the request.
func ResendCount(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return resendCount{base}
}

type resendCount struct{ base http.RoundTripper }

func (t resendCount) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if a, ok := ctx.Value(attemptsKey{}).(*attempts); ok {
		if n := a.n.Add(1) - 1; n > 0 {
			trace.SpanFromContext(ctx).SetAttributes(semconv.HTTPRequestResendCount(int(n)))
		}
	}
	return t.base.RoundTrip(req)
}
