package dpopotel_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	dpopotel "github.com/dpopkit/dpop/otel"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const resendCount = attribute.Key("http.request.resend_count")

// otelhttp under the DPoP Transport makes one client span per attempt,
// each a child of the caller's span; the retry's says it is a resend.
func TestOtelhttpSpanPerAttempt(t *testing.T) {
	tel := newTelemetry(t)
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	client := instrumentedClient(t, tel, srv, true)

	ctx, parent := tel.tp.Tracer("test").Start(context.Background(), "parent")
	get(t, ctx, client, srv.URL+"/api/items", http.StatusOK)
	parent.End()

	attempts := clientSpans(tel.spans.GetSpans())
	if len(attempts) != 2 {
		t.Fatalf("%d client spans; want 2 (the challenged attempt and the retry)", len(attempts))
	}
	for i, want := range []struct {
		status int64
		resend int64 // 0: no attribute
	}{{401, 0}, {200, 1}} {
		s := attempts[i]
		if s.Parent.SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %d: parent %s; want the caller's span %s", i, s.Parent.SpanID(), parent.SpanContext().SpanID())
		}
		if got := spanAttr(s, "http.response.status_code").AsInt64(); got != want.status {
			t.Errorf("span %d: http.response.status_code = %d; want %d", i, got, want.status)
		}
		if got := spanAttr(s, resendCount).AsInt64(); got != want.resend {
			t.Errorf("span %d: %s = %d; want %d", i, resendCount, got, want.resend)
		}
	}
}

// Concurrent requests sharing one context count their attempts apart: on
// a cold start, one pays the challenge (or a few do), and no span says it
// was resent more than once.
func TestResendCountConcurrent(t *testing.T) {
	tel := newTelemetry(t)
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	client := instrumentedClient(t, tel, srv, true)
	ctx, parent := tel.tp.Tracer("test").Start(context.Background(), "parent")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := do(ctx, client, srv.URL+"/api/items", http.StatusOK); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	parent.End()

	var resent int64
	for _, s := range clientSpans(tel.spans.GetSpans()) {
		switch n := spanAttr(s, resendCount).AsInt64(); n {
		case 0:
		case 1:
			resent++
		default:
			t.Errorf("a span has %s = %d; want 0 or 1", resendCount, n)
		}
	}
	if want := count(t, tel.collect(t), "dpop.retries"); resent != want || want == 0 {
		t.Errorf("%d spans with %s; want %d (dpop.retries), at least 1", resent, resendCount, want)
	}
}

// Without CountAttempts above the DPoP Transport, ResendCount only sends.
func TestResendCountAlone(t *testing.T) {
	tel := newTelemetry(t)
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	client := instrumentedClient(t, tel, srv, false)
	get(t, context.Background(), client, srv.URL+"/api/items", http.StatusOK)
	spans := clientSpans(tel.spans.GetSpans())
	if len(spans) != 2 {
		t.Fatalf("%d client spans; want 2", len(spans))
	}
	for i, s := range spans {
		if v := spanAttr(s, resendCount); v.Type() != attribute.INVALID {
			t.Errorf("span %d: %s = %v; want none", i, resendCount, v.Emit())
		}
	}
}

// instrumentedClient returns a client of srv's API with otelhttp under its
// DPoP Transport, and CountAttempts above if count is set.
func instrumentedClient(t *testing.T, tel *telemetry, srv *dpoptest.Server, count bool) *http.Client {
	t.Helper()
	signer := newSigner(t)
	var rt http.RoundTripper = &dpop.Transport{
		Signer: signer,
		Source: backend(srv, signer).TokenSource(context.Background()),
		Trace:  tel.trace,
		Base:   otelhttp.NewTransport(dpopotel.ResendCount(nil), otelhttp.WithTracerProvider(tel.tp)),
	}
	if count {
		rt = dpopotel.CountAttempts(rt)
	}
	return &http.Client{Transport: rt}
}

func clientSpans(spans tracetest.SpanStubs) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindClient {
			out = append(out, s)
		}
	}
	return out
}

func spanAttr(s tracetest.SpanStub, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}
