package dpopotel_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	dpopotel "github.com/dpopkit/dpop/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"golang.org/x/oauth2/clientcredentials"
)

// telemetry is a real OpenTelemetry SDK that keeps what it records in
// memory: a ManualReader for the metrics, an InMemoryExporter for the
// spans (exported as each ends).
type telemetry struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	spans  *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
	trace  *dpop.Trace
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	tel := &telemetry{reader: sdkmetric.NewManualReader(), spans: tracetest.NewInMemoryExporter()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	tel.mp = mp
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(tel.spans))
	t.Cleanup(func() {
		mp.Shutdown(context.Background())
		tel.tp.Shutdown(context.Background())
	})
	var err error
	if tel.trace, err = dpopotel.NewTrace(mp); err != nil {
		t.Fatalf("NewTrace: %v", err)
	}
	return tel
}

// collect returns the metrics of the instrumentation scope of dpopotel.
func (tel *telemetry) collect(t *testing.T) []metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name == dpopotel.ScopeName {
			return sm.Metrics
		}
	}
	return nil
}

// count returns the sum of the data points of the counter name whose
// attributes include every one of want.
func count(t *testing.T, ms []metricdata.Metrics, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	var n int64
	for _, m := range ms {
		if m.Name != name {
			continue
		}
		sum, ok := m.Data.(metricdata.Sum[int64])
		if !ok {
			t.Fatalf("%s is a %T; want a Sum[int64]", name, m.Data)
		}
		for _, dp := range sum.DataPoints {
			if hasAll(dp.Attributes, want) {
				n += dp.Value
			}
		}
	}
	return n
}

// histogramCount returns how many values the histogram name recorded.
func histogramCount(t *testing.T, ms []metricdata.Metrics, name string) uint64 {
	t.Helper()
	var n uint64
	for _, m := range ms {
		if m.Name != name {
			continue
		}
		h, ok := m.Data.(metricdata.Histogram[float64])
		if !ok {
			t.Fatalf("%s is a %T; want a Histogram[float64]", name, m.Data)
		}
		for _, dp := range h.DataPoints {
			n += dp.Count
		}
	}
	return n
}

func hasAll(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

func newSigner(t testing.TB) *dpop.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// backend is the confidential client of dpoptest's default clients.
func backend(srv *dpoptest.Server, signer *dpop.Signer) *dpop.ClientCredentials {
	return &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{
			ClientID:     "backend",
			ClientSecret: "backend-secret",
			TokenURL:     srv.Endpoint().TokenURL,
			Scopes:       []string{"api:read"},
		},
		Signer: signer,
	}
}

// get sends a GET to url with ctx and reads the response, failing unless
// its status is want.
func get(t *testing.T, ctx context.Context, c *http.Client, url string, want int) {
	t.Helper()
	if err := do(ctx, c, url, want); err != nil {
		t.Fatal(err)
	}
}

// do is get for goroutines other than the test's.
func do(ctx context.Context, c *http.Client, url string, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("GET %s: status %d; want %d", url, resp.StatusCode, want)
	}
	return nil
}

// events returns the names of the events of the span named name, in order.
func events(t *testing.T, spans tracetest.SpanStubs, name string) []sdktrace.Event {
	t.Helper()
	for _, s := range spans {
		if s.Name == name {
			return s.Events
		}
	}
	t.Fatalf("no span %q among %d", name, len(spans))
	return nil
}

func eventNames(evs []sdktrace.Event) []string {
	var names []string
	for _, e := range evs {
		names = append(names, e.Name)
	}
	return names
}
