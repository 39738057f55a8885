package dpopotel_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	dpopotel "github.com/dpopkit/dpop/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"golang.org/x/oauth2"
)

// A request to a resource server that wants a nonce: the first proof is
// challenged, the retry carries the nonce, and the next request has it
// from the start. The metrics count it all; the events land on the
// caller's span, in order, without the query or a secret.
func TestTraceNonceChallenge(t *testing.T) {
	tel := newTelemetry(t)
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	signer := newSigner(t)
	src := backend(srv, signer).TokenSource(context.Background())
	client := &http.Client{Transport: &dpop.Transport{Signer: signer, Source: src, Trace: tel.trace}}

	ctx, parent := tel.tp.Tracer("test").Start(context.Background(), "parent")
	get(t, ctx, client, srv.URL+"/api/items?q=1", http.StatusOK)
	get(t, ctx, client, srv.URL+"/api/items?q=2", http.StatusOK)
	parent.End()

	ms := tel.collect(t)
	for _, c := range []struct {
		name  string
		attrs []attribute.KeyValue
		want  int64
	}{
		{"dpop.proofs", nil, 3},
		{"dpop.proofs", []attribute.KeyValue{attribute.String("dpop.proof.alg", "ES256"), attribute.String("http.request.method", "GET"), attribute.Bool("dpop.proof.ath", true)}, 3},
		{"dpop.proofs", []attribute.KeyValue{attribute.Bool("dpop.proof.nonce", true)}, 2},
		{"dpop.challenges", nil, 1},
		{"dpop.challenges", []attribute.KeyValue{attribute.String("dpop.error", "use_dpop_nonce"), attribute.Int("http.response.status_code", 401)}, 1},
		{"dpop.retries", nil, 1},
		{"dpop.retries", []attribute.KeyValue{attribute.String("dpop.retry.reason", "nonce")}, 1},
		{"dpop.nonce.updates", []attribute.KeyValue{attribute.Bool("dpop.nonce.changed", false)}, 1},
		{"dpop.downgrades", nil, 0},
	} {
		if got := count(t, ms, c.name, c.attrs...); got != c.want {
			t.Errorf("%s%v = %d; want %d", c.name, c.attrs, got, c.want)
		}
	}
	if got := histogramCount(t, ms, "dpop.proof.duration"); got != 3 {
		t.Errorf("dpop.proof.duration count = %d; want 3", got)
	}

	evs := events(t, tel.spans.GetSpans(), "parent")
	want := []string{"dpop.proof.signed", "dpop.nonce", "dpop.challenge", "dpop.retry", "dpop.proof.signed", "dpop.proof.signed"}
	if got := eventNames(evs); !slices.Equal(got, want) {
		t.Fatalf("events = %q; want %q", got, want)
	}
	for _, c := range []struct {
		ev   int
		key  attribute.Key
		want attribute.Value
	}{
		{0, "dpop.proof.htu", attribute.StringValue(srv.URL + "/api/items")},
		{0, "dpop.proof.nonce", attribute.BoolValue(false)},
		{1, "dpop.origin", attribute.StringValue(srv.URL)},
		{2, "dpop.error", attribute.StringValue("use_dpop_nonce")},
		{3, "dpop.retry.reason", attribute.StringValue("nonce")},
		{3, "dpop.attempt", attribute.IntValue(2)},
		{4, "dpop.proof.nonce", attribute.BoolValue(true)},
	} {
		if got := attr(evs[c.ev], c.key); got != c.want {
			t.Errorf("event %d %s: %s = %v; want %v", c.ev, evs[c.ev].Name, c.key, got.Emit(), c.want.Emit())
		}
	}
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{tok.AccessToken, srv.RSNonce(), "?"}
	for _, r := range srv.Requests() {
		if r.Proof != nil {
			secrets = append(secrets, r.Proof.JTI, r.Proof.Raw)
		}
	}
	for _, e := range evs {
		for _, kv := range e.Attributes {
			for _, s := range secrets {
				if s != "" && strings.Contains(kv.Value.Emit(), s) {
					t.Errorf("event %s: %s = %q holds %q", e.Name, kv.Key, kv.Value.Emit(), s)
				}
			}
		}
	}
}

func attr(e sdktrace.Event, key attribute.Key) attribute.Value {
	for _, kv := range e.Attributes {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// The other two reasons to retry, each on a real flow: a server whose
// clock is ten minutes ahead, and an access token revoked behind the
// client's back.
func TestTraceRetryReasons(t *testing.T) {
	t.Run("clock", func(t *testing.T) {
		tel := newTelemetry(t)
		srv := dpoptest.NewServer(&dpoptest.Config{ClockOffset: 10 * time.Minute})
		defer srv.Close()
		signer := newSigner(t)
		src := backend(srv, signer).TokenSource(context.Background())
		client := &http.Client{Transport: &dpop.Transport{Signer: signer, Source: src, Trace: tel.trace}}
		get(t, context.Background(), client, srv.URL+"/api/items", http.StatusOK)

		ms := tel.collect(t)
		if got := count(t, ms, "dpop.retries", attribute.String("dpop.retry.reason", "clock")); got != 1 {
			t.Errorf("dpop.retries{clock} = %d; want 1", got)
		}
		if got := count(t, ms, "dpop.challenges", attribute.String("dpop.error", "invalid_dpop_proof")); got != 1 {
			t.Errorf("dpop.challenges{invalid_dpop_proof} = %d; want 1", got)
		}
		got, ok := gauge(t, ms, "dpop.clock.offset", attribute.String("dpop.target", "resource"))
		if !ok || got < 590 || got > 610 {
			t.Errorf("dpop.clock.offset = %v (found: %t); want about 600", got, ok)
		}
	})
	t.Run("invalid_token", func(t *testing.T) {
		tel := newTelemetry(t)
		srv := dpoptest.NewServer(nil)
		defer srv.Close()
		signer := newSigner(t)
		src := backend(srv, signer).TokenSource(context.Background())
		client := &http.Client{Transport: &dpop.Transport{Signer: signer, Source: src, Trace: tel.trace}}
		tok, err := src.Token()
		if err != nil {
			t.Fatal(err)
		}
		srv.Revoke(tok.AccessToken)
		get(t, context.Background(), client, srv.URL+"/api/items", http.StatusOK)

		ms := tel.collect(t)
		if got := count(t, ms, "dpop.retries", attribute.String("dpop.retry.reason", "invalid_token")); got != 1 {
			t.Errorf("dpop.retries{invalid_token} = %d; want 1", got)
		}
		if got := count(t, ms, "dpop.challenges", attribute.String("dpop.error", "invalid_token"), attribute.Int("http.response.status_code", 401)); got != 1 {
			t.Errorf("dpop.challenges{invalid_token, 401} = %d; want 1", got)
		}
	})
}

// gauge returns the value of the gauge name with the attributes want.
func gauge(t *testing.T, ms []metricdata.Metrics, name string, want ...attribute.KeyValue) (float64, bool) {
	t.Helper()
	for _, m := range ms {
		if m.Name != name {
			continue
		}
		g, ok := m.Data.(metricdata.Gauge[float64])
		if !ok {
			t.Fatalf("%s is a %T; want a Gauge[float64]", name, m.Data)
		}
		for _, dp := range g.DataPoints {
			if hasAll(dp.Attributes, want) {
				return dp.Value, true
			}
		}
	}
	return 0, false
}

// A Bearer token where a DPoP one was expected is refused before it is
// sent, and counted.
func TestTraceDowngrade(t *testing.T) {
	tel := newTelemetry(t)
	srv := dpoptest.NewServer(nil)
	defer srv.Close()
	signer := newSigner(t)
	token := srv.IssueToken(signer.Thumbprint(), "alice", "api:read")
	client := &http.Client{Transport: &dpop.Transport{
		Signer: signer,
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token, TokenType: "bearer"}),
		Trace:  tel.trace,
	}}
	ctx, parent := tel.tp.Tracer("test").Start(context.Background(), "parent")
	if resp, err := client.Get(srv.URL + "/api/items"); err == nil {
		resp.Body.Close()
		t.Fatal("GET with a Bearer token succeeded; want an error")
	}
	// The event needs the span in the request's context.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/items", nil)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
	}
	parent.End()

	if got := count(t, tel.collect(t), "dpop.downgrades", attribute.String("dpop.token_type", "Bearer")); got != 2 {
		t.Errorf("dpop.downgrades{Bearer} = %d; want 2", got)
	}
	evs := events(t, tel.spans.GetSpans(), "parent")
	if got, want := eventNames(evs), []string{"dpop.downgrade.refused"}; !slices.Equal(got, want) {
		t.Errorf("events = %q; want %q", got, want)
	}
	if got := srv.Requests(); len(got) != 0 {
		t.Errorf("the server saw %d requests; want none", len(got))
	}
}

// Token requests are counted by grant type and by outcome, with the error
// a real server answered.
func TestTraceTokenObtained(t *testing.T) {
	tel := newTelemetry(t)
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	signer := newSigner(t)
	ctx, parent := tel.tp.Tracer("test").Start(context.Background(), "parent")

	token := func(cc *dpop.ClientCredentials) {
		cc.Trace = tel.trace // the grant reports its own token requests
		cc.Token(ctx)
	}
	token(backend(srv, signer))
	bad := backend(srv, signer)
	bad.OAuth2.ClientSecret = "wrong"
	token(bad)
	for _, err := range []error{
		context.DeadlineExceeded,
		fmt.Errorf("dpop: client credentials: %w", context.Canceled),
		&dpop.TokenTypeError{TokenType: "Bearer"},
		&dpop.TokenError{ErrorCode: "made_up"},
		errors.New("something else"),
	} {
		tel.trace.TokenObtained(dpop.TokenRequestInfo{GrantType: dpop.GrantRefreshToken, Err: err}) // no context: allowed
	}
	parent.End()

	ms := tel.collect(t)
	grant := func(g string) attribute.KeyValue { return attribute.String("oauth.grant_type", g) }
	errType := func(e string) attribute.KeyValue { return attribute.String("error.type", e) }
	for _, c := range []struct {
		attrs []attribute.KeyValue
		want  int64
	}{
		{[]attribute.KeyValue{grant("client_credentials")}, 2},
		{[]attribute.KeyValue{grant("client_credentials"), errType("invalid_client")}, 1},
		{[]attribute.KeyValue{grant("refresh_token"), errType("timeout")}, 1},
		{[]attribute.KeyValue{grant("refresh_token"), errType("canceled")}, 1},
		{[]attribute.KeyValue{grant("refresh_token"), errType("token_type")}, 1},
		{[]attribute.KeyValue{grant("refresh_token"), errType("_OTHER")}, 2},
	} {
		if got := count(t, ms, "dpop.token.requests", c.attrs...); got != c.want {
			t.Errorf("dpop.token.requests%v = %d; want %d", c.attrs, got, c.want)
		}
	}
	// The success has no error.type at all.
	for _, m := range ms {
		if m.Name != "dpop.token.requests" {
			continue
		}
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			if _, hasErr := dp.Attributes.Value("error.type"); !hasErr && dp.Value != 1 {
				t.Errorf("dpop.token.requests without error.type = %d; want 1", dp.Value)
			}
		}
	}
	if got := histogramCount(t, ms, "dpop.token.duration"); got != 7 {
		t.Errorf("dpop.token.duration count = %d; want 7", got)
	}
	var evs []sdktrace.Event
	for _, ev := range events(t, tel.spans.GetSpans(), "parent") {
		if ev.Name == "dpop.token" { // the token requests' proofs and challenges are there too
			evs = append(evs, ev)
		}
	}
	if got, want := eventNames(evs), []string{"dpop.token", "dpop.token"}; !slices.Equal(got, want) {
		t.Fatalf("events = %q; want %q", got, want)
	}
	if got := attr(evs[1], "error.type"); got != attribute.StringValue("invalid_client") {
		t.Errorf("second token event: error.type = %v; want invalid_client", got.Emit())
	}
}

// NewTrace(nil) uses the global MeterProvider (a no-op one here), and every
// callback copes with a missing context.
func TestNewTraceGlobal(t *testing.T) {
	tr, err := dpopotel.NewTrace(nil)
	if err != nil {
		t.Fatalf("NewTrace(nil): %v", err)
	}
	tr.ProofSigned(dpop.ProofInfo{Alg: "ES256", Method: "BREW"})
	tr.ChallengeReceived(dpop.ChallengeInfo{ErrorCode: "x"})
	tr.Retry(dpop.RetryInfo{Reason: "y"})
	tr.NonceLearned(dpop.NonceInfo{})
	tr.ClockOffsetLearned(dpop.ClockOffsetInfo{Offset: time.Minute})
	tr.TokenObtained(dpop.TokenRequestInfo{GrantType: "z"})
	tr.DowngradeRefused(dpop.DowngradeInfo{TokenType: "Bearer"})
}

// roundTripFunc is a Base answering requests in memory.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// attributeSets returns the attribute sets of the data points of m.
func attributeSets(t *testing.T, m metricdata.Metrics) []attribute.Set {
	t.Helper()
	var sets []attribute.Set
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			sets = append(sets, dp.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			sets = append(sets, dp.Attributes)
		}
	case metricdata.Gauge[float64]:
		for _, dp := range d.DataPoints {
			sets = append(sets, dp.Attributes)
		}
	default:
		t.Fatalf("%s is a %T", m.Name, m.Data)
	}
	return sets
}

// A hostile server chooses origins (one per request, as redirects can)
// and error codes; the metrics take none of them as an attribute, so
// fifty requests make a handful of series, not one per origin or code.
func TestMetricAttributesBounded(t *testing.T) {
	tel := newTelemetry(t)
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		code := dpop.CodeInvalidProof // with a Date ten minutes ahead: a clock offset, learned per origin
		if strings.HasPrefix(r.URL.Host, "odd") {
			code = "made_up_" + strings.TrimSuffix(r.URL.Host, ".example")
		}
		h := http.Header{
			"Date":             {time.Now().Add(10 * time.Minute).UTC().Format(http.TimeFormat)},
			"Www-Authenticate": {`DPoP error="` + code + `"`},
			"Dpop-Nonce":       {"n-" + r.URL.Host},
		}
		return &http.Response{StatusCode: http.StatusUnauthorized, Header: h, Body: http.NoBody, Request: r}, nil
	})
	client := &http.Client{Transport: &dpop.Transport{Base: base, Signer: newSigner(t), Trace: tel.trace}}
	for i := range 50 {
		host := fmt.Sprintf("h%d.example", i)
		if i%2 == 1 {
			host = "odd" + host
		}
		get(t, context.Background(), client, "https://"+host+"/x", http.StatusUnauthorized)
	}
	ms := tel.collect(t)
	if len(ms) == 0 {
		t.Fatal("no metrics")
	}
	for _, m := range ms {
		sets := attributeSets(t, m)
		if len(sets) > 8 {
			t.Errorf("%s has %d series; want a handful", m.Name, len(sets))
		}
		for _, s := range sets {
			for _, kv := range s.ToSlice() {
				if v := kv.Value.Emit(); strings.Contains(v, "example") || strings.Contains(v, "made_up") || strings.Contains(v, "n-") {
					t.Errorf("%s has the attribute %s=%q, chosen by the server", m.Name, kv.Key, v)
				}
			}
		}
	}
	if got := count(t, ms, "dpop.challenges", attribute.String("dpop.error", "_OTHER")); got != 25 {
		t.Errorf("dpop.challenges{dpop.error=_OTHER} = %d; want 25", got)
	}
}
