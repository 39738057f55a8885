package dpopotel_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/dpopkit/dpop"
	dpopotel "github.com/dpopkit/dpop/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// okTransport answers every request 200 OK without a network.
type okTransport struct{}

func (okTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
}

// BenchmarkRoundTrip is a proof-only RoundTrip (Ed25519, an in-memory
// Base) without a Trace (the floor), with NewTrace and no span in the
// context, and with a recording span that gets the proof's event.
func BenchmarkRoundTrip(b *testing.B) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := dpop.NewSigner(key, nil)
	if err != nil {
		b.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	tr, err := dpopotel.NewTrace(mp)
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
	defer tp.Shutdown(context.Background())
	spanCtx, span := tp.Tracer("bench").Start(context.Background(), "parent")
	defer span.End()

	for _, c := range []struct {
		name  string
		trace *dpop.Trace
		ctx   context.Context
	}{
		{"none", nil, context.Background()},
		{"otel", tr, context.Background()},
		{"otel+span", tr, spanCtx},
	} {
		b.Run(c.name, func(b *testing.B) {
			t := &dpop.Transport{Signer: signer, Base: okTransport{}, Trace: c.trace}
			req, err := http.NewRequestWithContext(c.ctx, http.MethodGet, "https://api.example/items?q=1", nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := t.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
