package dpopotel_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/dpopkit/dpop"
	dpopotel "github.com/dpopkit/dpop/otel"
	"github.com/dpopkit/dpop/resource"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// tokens is a resource.TokenVerifier that knows one token, bound to jkt.
type tokens struct{ token, jkt string }

func (tv tokens) VerifyToken(_ context.Context, token string) (*resource.AccessToken, error) {
	if token != tv.token {
		return nil, errors.New("unknown token")
	}
	return &resource.AccessToken{Subject: "alice", JKT: tv.jkt}, nil
}

// A real resource.Verifier over httptest, requiring nonces: a proof
// without a nonce is challenged, the one with it verified, its replay
// refused, and a request without a token refused; the metrics count each,
// the iat offsets are recorded, and the events land on the server's span.
// No attribute holds what the client chose (the thumbprint, the token).
func TestResourceTrace(t *testing.T) {
	tel := newTelemetry(t)
	signer := newSigner(t)
	const token = "token-of-alice"
	nonces, err := resource.NewNonceIssuer([]byte("0123456789abcdef0123456789abcdef"), 0)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := dpopotel.NewResourceTrace(tel.mp)
	if err != nil {
		t.Fatalf("NewResourceTrace: %v", err)
	}
	v, err := resource.NewVerifier(resource.Config{
		Tokens: tokens{token, signer.Thumbprint()},
		Nonces: nonces,
		Trace:  rt,
	})
	if err != nil {
		t.Fatal(err)
	}
	api := v.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tel.tp.Tracer("server").Start(r.Context(), "server")
		defer span.End()
		api.ServeHTTP(w, r.WithContext(ctx))
	}))
	defer srv.Close()

	send := func(proof, auth string, want int) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/api/items?q=1", nil)
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("status %d; want %d (%s)", resp.StatusCode, want, resp.Header.Get("WWW-Authenticate"))
		}
		return resp
	}
	proof := func(nonce string) string {
		t.Helper()
		p, err := signer.Proof("GET", srv.URL+"/api/items", &dpop.ProofOptions{AccessToken: token, Nonce: nonce})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	resp := send(proof(""), "DPoP "+token, http.StatusUnauthorized)
	nonce := resp.Header.Get("DPoP-Nonce")
	good := proof(nonce)
	send(good, "DPoP "+token, http.StatusOK)
	send(good, "DPoP "+token, http.StatusUnauthorized)
	send("", "", http.StatusUnauthorized)

	ms := tel.collect(t)
	for _, c := range []struct {
		name  string
		attrs []attribute.KeyValue
		want  int64
	}{
		{"dpop.server.verified", nil, 1},
		{"dpop.server.verified", []attribute.KeyValue{attribute.String("dpop.scheme", "DPoP"), attribute.String("dpop.proof.alg", "ES256"), attribute.Bool("dpop.proof.nonce", true)}, 1},
		{"dpop.server.refusals", nil, 3},
		{"dpop.server.refusals", []attribute.KeyValue{attribute.String("dpop.refusal.reason", "nonce"), attribute.String("dpop.error", "use_dpop_nonce"), attribute.Int("http.response.status_code", 401)}, 1},
		{"dpop.server.refusals", []attribute.KeyValue{attribute.String("dpop.refusal.reason", "replay"), attribute.String("dpop.error", "invalid_dpop_proof")}, 1},
		{"dpop.server.refusals", []attribute.KeyValue{attribute.String("dpop.refusal.reason", "missing_token")}, 1},
		{"dpop.server.replays", nil, 1},
		{"dpop.server.nonce.challenges", []attribute.KeyValue{attribute.Bool("dpop.nonce.stale", false)}, 1},
	} {
		if got := count(t, ms, c.name, c.attrs...); got != c.want {
			t.Errorf("%s%v = %d; want %d", c.name, c.attrs, got, c.want)
		}
	}
	// Three proofs had their signature verified: the challenged one, the
	// good one and its replay.
	if got := histogramCount(t, ms, "dpop.server.iat.offset"); got != 3 {
		t.Errorf("dpop.server.iat.offset count = %d; want 3", got)
	}
	if got := histogramCount(t, ms, "dpop.server.verify.duration"); got != 1 {
		t.Errorf("dpop.server.verify.duration count = %d; want 1", got)
	}
	for _, s := range allAttributeValues(ms) {
		if strings.Contains(s, signer.Thumbprint()) || strings.Contains(s, token) || strings.Contains(s, nonce) {
			t.Errorf("a metric attribute holds what the client sent: %q", s)
		}
	}

	var names []string
	for _, s := range tel.spans.GetSpans() {
		for _, e := range s.Events {
			names = append(names, e.Name)
			for _, kv := range e.Attributes {
				if v := kv.Value.Emit(); strings.Contains(v, signer.Thumbprint()) || strings.Contains(v, token) {
					t.Errorf("event %s attribute %s holds what the client sent", e.Name, kv.Key)
				}
			}
		}
	}
	for _, want := range []string{"dpop.server.iat.offset", "dpop.server.refused", "dpop.server.nonce.challenge", "dpop.server.verified", "dpop.server.replayed"} {
		if !slices.Contains(names, want) {
			t.Errorf("events %v; want %s among them", names, want)
		}
	}
}

// allAttributeValues returns every attribute value of every data point.
func allAttributeValues(ms []metricdata.Metrics) []string {
	var out []string
	add := func(set attribute.Set) {
		for _, kv := range set.ToSlice() {
			out = append(out, kv.Value.Emit())
		}
	}
	for _, m := range ms {
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, dp := range d.DataPoints {
				add(dp.Attributes)
			}
		case metricdata.Histogram[float64]:
			for _, dp := range d.DataPoints {
				add(dp.Attributes)
			}
		}
	}
	return out
}
