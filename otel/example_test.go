package dpopotel_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net/http"
	"slices"
	"strings"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	dpopotel "github.com/dpopkit/dpop/otel"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"golang.org/x/oauth2"
)

// exampleToken returns a signer and a token of srv bound to it.
func exampleToken(srv *dpoptest.Server) (*dpop.Signer, oauth2.TokenSource) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := dpop.NewSigner(key, nil)
	if err != nil {
		log.Fatal(err)
	}
	token := srv.IssueToken(signer.Thumbprint(), "alice", "api:read")
	return signer, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token, TokenType: "DPoP"})
}

func exampleGet(ctx context.Context, client *http.Client, url string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// NewTrace counts proofs, challenges and retries; a server that wants a
// nonce costs the first request a challenge and a retry.
func ExampleNewTrace() {
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	reader := sdkmetric.NewManualReader() // in a program: a periodic reader and an exporter
	trace, err := dpopotel.NewTrace(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if err != nil {
		log.Fatal(err)
	}
	signer, src := exampleToken(srv)
	client := &http.Client{Transport: &dpop.Transport{Signer: signer, Source: src, Trace: trace}}
	exampleGet(context.Background(), client, srv.URL+"/api/items")
	exampleGet(context.Background(), client, srv.URL+"/api/items")

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	var lines []string
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
			for _, dp := range sum.DataPoints {
				lines = append(lines, fmt.Sprint(m.Name, " ", dp.Attributes.Encoded(attribute.DefaultEncoder()), " ", dp.Value))
			}
		}
	}
	slices.Sort(lines)
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// dpop.challenges dpop.error=use_dpop_nonce,dpop.scheme=DPoP,dpop.target=resource,http.response.status_code=401 1
	// dpop.nonce.updates dpop.nonce.changed=false,dpop.target=resource 1
	// dpop.proofs dpop.proof.alg=ES256,dpop.proof.ath=true,dpop.proof.nonce=false,dpop.target=resource,http.request.method=GET 1
	// dpop.proofs dpop.proof.alg=ES256,dpop.proof.ath=true,dpop.proof.nonce=true,dpop.target=resource,http.request.method=GET 2
	// dpop.retries dpop.retry.reason=nonce,dpop.target=resource 1
}

// otelhttp's transport as the DPoP Transport's Base makes one span per
// attempt, and ResendCount marks the retry's with
// http.request.resend_count.
func ExampleResendCount() {
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	spans := tracetest.NewInMemoryExporter() // in a program: a batcher and an exporter
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.Background())

	signer, src := exampleToken(srv)
	client := &http.Client{Transport: dpopotel.CountAttempts(&dpop.Transport{
		Signer: signer,
		Source: src,
		Base:   otelhttp.NewTransport(dpopotel.ResendCount(nil), otelhttp.WithTracerProvider(tp)),
	})}
	ctx, span := tp.Tracer("example").Start(context.Background(), "list items")
	exampleGet(ctx, client, srv.URL+"/api/items")
	span.End()

	for _, s := range spans.GetSpans() {
		fmt.Print(s.Name)
		for _, kv := range s.Attributes {
			switch kv.Key {
			case "http.response.status_code", "http.request.resend_count":
				fmt.Printf(" %s=%s", kv.Key, kv.Value.Emit())
			}
		}
		fmt.Println()
	}
	// Output:
	// HTTP GET http.response.status_code=401
	// HTTP GET http.request.resend_count=1 http.response.status_code=200
	// list items
}
