package dpop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
)

// traceRecorder keeps every event of a dpop.Trace.
type traceRecorder struct {
	mu         sync.Mutex
	proofs     []dpop.ProofInfo
	challenges []dpop.ChallengeInfo
	retries    []dpop.RetryInfo
	nonces     []dpop.NonceInfo
	clocks     []dpop.ClockOffsetInfo
	tokens     []dpop.TokenRequestInfo
	downgrades []dpop.DowngradeInfo
}

func (r *traceRecorder) trace() *dpop.Trace {
	rec := func(f func()) { r.mu.Lock(); f(); r.mu.Unlock() }
	return &dpop.Trace{
		ProofSigned:        func(i dpop.ProofInfo) { rec(func() { r.proofs = append(r.proofs, i) }) },
		ChallengeReceived:  func(i dpop.ChallengeInfo) { rec(func() { r.challenges = append(r.challenges, i) }) },
		Retry:              func(i dpop.RetryInfo) { rec(func() { r.retries = append(r.retries, i) }) },
		NonceLearned:       func(i dpop.NonceInfo) { rec(func() { r.nonces = append(r.nonces, i) }) },
		ClockOffsetLearned: func(i dpop.ClockOffsetInfo) { rec(func() { r.clocks = append(r.clocks, i) }) },
		TokenObtained:      func(i dpop.TokenRequestInfo) { rec(func() { r.tokens = append(r.tokens, i) }) },
		DowngradeRefused:   func(i dpop.DowngradeInfo) { rec(func() { r.downgrades = append(r.downgrades, i) }) },
	}
}

func newCCWithTrace(t *testing.T, srv *dpoptest.Server, tr *dpop.Trace) *dpop.ClientCredentials {
	t.Helper()
	return &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{ClientID: "backend", ClientSecret: "backend-secret", TokenURL: srv.Endpoint().TokenURL},
		Signer: newSigner(t),
		Trace:  tr,
	}
}

// getStatus GETs url and returns the status, the body read and closed.
func getStatus(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestTraceFlow follows a client-credentials flow against servers that
// demand nonces: every proof on the wire is reported, both challenges and
// their retries, the nonces learned and the token request.
func TestTraceFlow(t *testing.T) {
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	var r traceRecorder
	c := newCCWithTrace(t, srv, r.trace()).Client(context.Background())
	for range 3 {
		if got := getStatus(t, c, srv.URL+"/api/items"); got != 200 {
			t.Fatalf("GET = %d; want 200", got)
		}
	}
	wire := len(srv.Requests())
	if len(r.proofs) != wire {
		t.Errorf("ProofSigned %d times; want %d (one per request on the wire)", len(r.proofs), wire)
	}
	if len(r.tokens) != 1 || r.tokens[0].GrantType != dpop.GrantClientCredentials || r.tokens[0].Err != nil {
		t.Errorf("TokenObtained = %+v; want one successful client_credentials request", r.tokens)
	}
	if len(r.challenges) != 2 || len(r.retries) != 2 {
		t.Fatalf("%d challenges, %d retries; want 2 and 2 (the AS's and the RS's first nonce)", len(r.challenges), len(r.retries))
	}
	for i, ch := range r.challenges {
		if ch.ErrorCode != dpop.CodeUseNonce || ch.Origin != srv.URL || ch.Context == nil {
			t.Errorf("challenge %d = %+v; want use_dpop_nonce from %s with a context", i, ch, srv.URL)
		}
		if r.retries[i].Reason != dpop.RetryNonce || r.retries[i].Attempt != 2 {
			t.Errorf("retry %d = %+v; want reason nonce, attempt 2", i, r.retries[i])
		}
	}
	if r.challenges[0].StatusCode != 400 || r.challenges[1].StatusCode != 401 {
		t.Errorf("challenge statuses %d, %d; want 400 (AS) then 401 (RS)", r.challenges[0].StatusCode, r.challenges[1].StatusCode)
	}
	for _, p := range r.proofs {
		if p.Alg != "ES256" || strings.Contains(p.HTU, "?") || !strings.HasPrefix(p.HTU, srv.URL+"/") {
			t.Errorf("ProofSigned %+v; want ES256 and an htu on %s", p, srv.URL)
		}
	}
	if last := r.proofs[len(r.proofs)-1]; !last.ATH || !last.Nonce {
		t.Errorf("last proof %+v; want ath and nonce", last)
	}
	if len(r.nonces) < 2 {
		t.Errorf("NonceLearned %d times; want at least the AS's and the RS's", len(r.nonces))
	}
}

// TestTraceDowngradeAndClock reports a refused Bearer token, and a clock
// offset learned from a server whose clock is two minutes ahead.
func TestTraceDowngradeAndClock(t *testing.T) {
	t.Run("downgrade", func(t *testing.T) {
		srv := dpoptest.NewServer(&dpoptest.Config{TokenType: "Bearer"})
		defer srv.Close()
		var r traceRecorder
		cc := newCCWithTrace(t, srv, r.trace())
		if _, err := cc.Token(context.Background()); err == nil {
			t.Fatal("Token succeeded with a Bearer answer")
		}
		if len(r.downgrades) != 1 || r.downgrades[0].TokenType != "Bearer" {
			t.Errorf("DowngradeRefused = %+v; want one, Bearer", r.downgrades)
		}
		if len(r.tokens) != 1 || r.tokens[0].Err == nil {
			t.Errorf("TokenObtained = %+v; want one failed request", r.tokens)
		}
	})
	t.Run("clock", func(t *testing.T) {
		srv := dpoptest.NewServer(&dpoptest.Config{ClockOffset: 2 * time.Minute})
		defer srv.Close()
		var r traceRecorder
		c := newCCWithTrace(t, srv, r.trace()).Client(context.Background())
		if got := getStatus(t, c, srv.URL+"/api/x"); got != 200 {
			t.Fatalf("GET = %d; want 200 after the clock retry", got)
		}
		if len(r.clocks) == 0 {
			t.Fatal("ClockOffsetLearned never called")
		}
		if off := r.clocks[0].Offset; off < 110*time.Second || off > 130*time.Second {
			t.Errorf("offset %v; want about 2m", off)
		}
		var clockRetries int
		for _, rt := range r.retries {
			if rt.Reason == dpop.RetryClock {
				clockRetries++
			}
		}
		if clockRetries == 0 {
			t.Errorf("retries %+v; want a clock retry", r.retries)
		}
	})
}

// TestLogTrace logs a flow at debug level, and no line holds a secret.
func TestLogTrace(t *testing.T) {
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	var buf bytes.Buffer
	var mu sync.Mutex
	l := slog.New(slog.NewJSONHandler(lockedWriter{&buf, &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var r traceRecorder
	cc := newCCWithTrace(t, srv, dpop.JoinTraces(dpop.NewLogTrace(l), nil, r.trace()))
	hc := cc.Client(context.Background())
	if got := getStatus(t, hc, srv.URL+"/api/x"); got != 200 {
		t.Fatalf("GET = %d", got)
	}
	tok, err := cc.TokenSource(context.Background()).Token()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{`"msg":"dpop: proof signed"`, `"msg":"dpop: challenge received"`, `"msg":"dpop: retry"`, `"msg":"dpop: token request"`, `"level":"DEBUG"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	for _, secret := range []string{tok.AccessToken, "backend-secret", "eyJ"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds a secret (%.12s…)", secret)
		}
	}
	if len(r.proofs) == 0 {
		t.Error("JoinTraces did not call the second trace")
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestTraceServerStrings: what a hostile server chooses (an error code of
// 64 KiB with bidi characters, a redirect to a huge host and path) reaches
// the trace events cut short and printable, and NewLogTrace writes no
// line longer than a few KiB.
func TestTraceServerStrings(t *testing.T) {
	challenge := `DPoP error="` + strings.Repeat("\u202e", 3) + strings.Repeat("E", 64<<10) + `"`
	far := "https://" + strings.Repeat("h", 10000) + ".example/" + strings.Repeat("p", 10000)
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp := &http.Response{StatusCode: http.StatusUnauthorized, Header: http.Header{"Www-Authenticate": {challenge}}, Body: http.NoBody, Request: r}
		if r.URL.Path == "/start" {
			resp.StatusCode, resp.Header = http.StatusFound, http.Header{"Location": {far}}
		}
		return resp, nil
	})
	var buf bytes.Buffer
	var mu sync.Mutex
	l := slog.New(slog.NewJSONHandler(lockedWriter{&buf, &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var r traceRecorder
	c := &http.Client{Transport: &dpop.Transport{Base: base, Signer: newSigner(t), Trace: dpop.JoinTraces(dpop.NewLogTrace(l), r.trace())}}
	if got := getStatus(t, c, "https://api.example/start"); got != http.StatusUnauthorized {
		t.Fatalf("GET = %d; want 401", got)
	}
	if len(r.challenges) == 0 || len(r.proofs) < 2 {
		t.Fatalf("%d challenges, %d proofs; want the redirected request's", len(r.challenges), len(r.proofs))
	}
	for _, ch := range r.challenges {
		checkClean(t, "ChallengeInfo.ErrorCode", ch.ErrorCode, 80)
		checkClean(t, "ChallengeInfo.Origin", ch.Origin, 600)
	}
	for _, p := range r.proofs {
		checkClean(t, "ProofInfo.HTU", p.HTU, 600)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		checkCleanText(t, "log line", line, 2<<10)
	}
}

// logLine is one line of a JSON slog handler, as TestLogTraceLevels
// reads it.
type logLine struct {
	Level, Msg, Server, Method, Path, Origin, HTU, Error, Scheme string
}

// logLines parses the lines a JSON slog handler wrote.
func logLines(t *testing.T, out string) []logLine {
	t.Helper()
	var lines []logLine
	for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
		var l logLine
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("log line %q: %v", s, err)
		}
		lines = append(lines, l)
	}
	return lines
}

// TestLogTraceLevels: NewLogTrace's lines serve an operator. Refusals,
// downgrades and failed token requests come at warn level, the routine
// (proofs, nonce challenges, retries) at debug; every line says which
// server it came from (the authorization server or the API), the
// request's method and path and never its query.
func TestLogTraceLevels(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true})
	var buf bytes.Buffer
	var mu sync.Mutex
	l := slog.New(slog.NewJSONHandler(lockedWriter{&buf, &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr := dpop.NewLogTrace(l)
	ctx := context.Background()

	// A good flow: the AS's and the RS's nonce challenges, at debug.
	cc := newCCWithTrace(t, srv, tr)
	if got := getStatus(t, cc.Client(ctx), srv.URL+"/api/items?q=query-secret"); got != 200 {
		t.Fatalf("GET = %d", got)
	}
	// A revoked token, refused by the API.
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.Revoke(tok.AccessToken)
	c := &http.Client{Transport: &dpop.Transport{Signer: cc.Signer, Source: oauth2.StaticTokenSource(tok), Trace: tr}}
	if got := getStatus(t, c, srv.URL+"/api/items?q=query-secret"); got != 401 {
		t.Fatalf("GET with a revoked token = %d; want 401", got)
	}
	// A failed token request, and a downgrade.
	bad := newCCWithTrace(t, srv, tr)
	bad.OAuth2.ClientSecret = "wrong"
	bad.Token(ctx)
	c = &http.Client{Transport: &dpop.Transport{Signer: cc.Signer, Trace: tr,
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "a", TokenType: "Bearer"})}}
	c.Get(srv.URL + "/api/items?q=query-secret")

	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if strings.Contains(out, "query-secret") {
		t.Errorf("the log holds a request's query")
	}
	var warns []string
	for _, line := range logLines(t, out) {
		if line.Server != "authorization" && line.Server != "resource" {
			t.Errorf("line %+v: server = %q; want authorization or resource", line, line.Server)
		}
		if line.Method == "" || line.Path == "" && line.HTU == "" {
			t.Errorf("line %+v: want the request's method and path", line)
		}
		if line.Level == "WARN" {
			warns = append(warns, line.Msg+" ("+line.Server+")")
		}
		if line.Level != "WARN" && (line.Error != "" && line.Error != dpop.CodeUseNonce || strings.Contains(line.Msg, "refused") || strings.Contains(line.Msg, "failed")) {
			t.Errorf("line %+v: a refusal or a failure below warn level", line)
		}
	}
	want := []string{"dpop: access token refused (resource)", "dpop: token request failed (authorization)", "dpop: Bearer token refused (downgrade) (resource)"}
	if !slices.Equal(warns, want) {
		t.Errorf("warnings %q; want %q", warns, want)
	}
}

// TestLogTraceNonceOnce: a nonce that many responses bring, while the
// requests that get them carried the old one, is one line, not one per
// response.
func TestLogTraceNonceOnce(t *testing.T) {
	const n = 20
	var calls atomic.Int32
	arrived := make(chan struct{})
	var once sync.Once
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		nonce := "n2"
		if calls.Add(1) == 1 {
			nonce = "n1"
		} else if calls.Load() == n+1 {
			once.Do(func() { close(arrived) })
		}
		if nonce == "n2" {
			<-arrived // every request carried n1
		}
		return &http.Response{StatusCode: 200, Header: http.Header{"Dpop-Nonce": {nonce}}, Body: http.NoBody, Request: r}, nil
	})
	var r traceRecorder
	c := &http.Client{Transport: &dpop.Transport{Base: base, Signer: newSigner(t), Trace: r.trace()}}
	getStatus(t, c, "https://api.example/first")
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { getStatus(t, c, "https://api.example/next") })
	}
	wg.Wait()
	if len(r.nonces) != 2 || r.nonces[0].Changed || !r.nonces[1].Changed {
		t.Errorf("NonceLearned = %+v; want two: n1 (none before), then n2 (changed)", r.nonces)
	}
}

// TestLogTraceNilLogger: NewLogTrace, which has no error result, refuses
// a nil logger at once with a message naming it, instead of a nil
// dereference later, inside some request's trace callback.
func TestLogTraceNilLogger(t *testing.T) {
	r := noPanic(func() {
		tr := dpop.NewLogTrace(nil)
		tr.ProofSigned(dpop.ProofInfo{Context: context.Background()})
	})
	if s, ok := r.(string); !ok || !strings.Contains(s, "NewLogTrace") || !strings.Contains(s, "nil") {
		t.Errorf("NewLogTrace(nil): recovered %v; want a panic naming NewLogTrace's nil logger", r)
	}
}
