package resource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dpopkit/dpop/resource"
)

// introspector is an introspection endpoint on 127.0.0.1 that checks the
// client authentication, knows the tokens the test gives it, and counts
// the requests.
type introspector struct {
	URL      string
	srv      *httptest.Server
	requests atomic.Int64

	mu      sync.Mutex // guards answers and handler
	answers map[string]map[string]any
	handler http.HandlerFunc // when set, answers instead
}

const (
	introClientID = "rs:api"  // ':' is escaped in Basic (RFC 6749 §2.3.1)
	introSecret   = "s3cr%t+" // so are '%' and '+'
)

func newIntrospector(t testing.TB) *introspector {
	t.Helper()
	in := &introspector{answers: make(map[string]map[string]any)}
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.requests.Add(1)
		in.mu.Lock()
		h := in.handler
		in.mu.Unlock()
		if h != nil {
			// Read the body first: the server notices a client that went
			// away (and ends r.Context()) only once the body is read.
			r.ParseForm()
			h(w, r)
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		id, secret, ok := r.BasicAuth()
		if ok {
			id, _ = url.QueryUnescape(id)
			secret, _ = url.QueryUnescape(secret)
		} else {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if id != introClientID || secret != introSecret {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		if r.PostForm.Get("token_type_hint") != "access_token" {
			http.Error(w, "no token_type_hint", http.StatusBadRequest)
			return
		}
		in.mu.Lock()
		ans, ok := in.answers[r.PostForm.Get("token")]
		in.mu.Unlock()
		if !ok {
			ans = map[string]any{"active": false}
		}
		writeJSON(w, ans)
	}))
	t.Cleanup(in.srv.Close)
	in.URL = in.srv.URL + "/introspect"
	return in
}

// set makes the endpoint answer ans for tok.
func (in *introspector) set(tok string, ans map[string]any) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.answers[tok] = ans
}

func (in *introspector) serve(h http.HandlerFunc) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.handler = h
}

// active returns the answer for an active token bound to testJKT, at now.
func active(now time.Time) map[string]any {
	return map[string]any{
		"active":     true,
		"iss":        "https://as.example.com",
		"aud":        []string{audience},
		"sub":        "alice",
		"client_id":  "backend",
		"scope":      "read write",
		"exp":        now.Add(time.Hour).Unix(),
		"iat":        now.Unix(),
		"token_type": "DPoP",
		"cnf":        map[string]any{"jkt": testJKT},
	}
}

func newIntrospection(in *introspector, clock *testClock) *resource.Introspection {
	return &resource.Introspection{
		URL:          in.URL,
		ClientID:     introClientID,
		ClientSecret: introSecret,
		Issuer:       "https://as.example.com",
		Audience:     audience,
		Now:          clock.Now,
	}
}

func TestIntrospection(t *testing.T) {
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleAutoDetect, oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		t.Run(fmt.Sprint("AuthStyle ", style), func(t *testing.T) {
			in := newIntrospector(t)
			clock := newClock()
			in.set("tok-1", active(clock.Now()))
			ti := newIntrospection(in, clock)
			ti.AuthStyle = style
			at, err := ti.VerifyToken(t.Context(), "tok-1")
			if err != nil {
				t.Fatal(err)
			}
			want := &resource.AccessToken{
				Issuer:   "https://as.example.com",
				Subject:  "alice",
				ClientID: "backend",
				Audience: []string{audience},
				Scopes:   []string{"read", "write"},
				Expiry:   clock.Now().Add(time.Hour),
				JKT:      testJKT,
			}
			got := *at
			got.Claims = nil
			if !reflect.DeepEqual(&got, want) {
				t.Errorf("VerifyToken = %+v; want %+v", &got, want)
			}
			if at.Claims["token_type"] != "DPoP" {
				t.Errorf("Claims[token_type] = %v; want DPoP", at.Claims["token_type"])
			}
		})
	}
}

// TestIntrospectionRefusals: answers the token fails on, each a
// *TokenError naming the member.
func TestIntrospectionRefusals(t *testing.T) {
	in := newIntrospector(t)
	clock := newClock()
	now := clock.Now()
	edit := func(f func(a map[string]any)) map[string]any {
		a := active(now)
		f(a)
		return a
	}
	tests := []struct {
		name   string
		answer map[string]any
		claim  string
	}{
		{"inactive", map[string]any{"active": false}, "active"},
		{"inactive with members", edit(func(a map[string]any) { a["active"] = false }), "active"},
		{"other issuer", edit(func(a map[string]any) { a["iss"] = "https://evil.example.com" }), "iss"},
		{"no issuer", edit(func(a map[string]any) { delete(a, "iss") }), "iss"},
		{"other audience", edit(func(a map[string]any) { a["aud"] = "https://other.example.com" }), "aud"},
		{"no audience", edit(func(a map[string]any) { delete(a, "aud") }), "aud"},
		{"expired", edit(func(a map[string]any) { a["exp"] = now.Add(-time.Hour).Unix() }), "exp"},
		{"nbf ahead", edit(func(a map[string]any) { a["nbf"] = now.Add(time.Hour).Unix() }), "nbf"},
		{"malformed jkt", edit(func(a map[string]any) { a["cnf"] = map[string]any{"jkt": testJKT + "A"} }), "cnf"},
	}
	ti := newIntrospection(in, clock)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := fmt.Sprintf("token-%d", i)
			in.set(tok, tt.answer)
			_, err := ti.VerifyToken(t.Context(), tok)
			if te := tokenErr(t, err); te.Claim != tt.claim {
				t.Errorf("Claim = %q; want %q (%v)", te.Claim, tt.claim, err)
			}
			checkNoSecret(t, err, tok, introSecret)
		})
	}
	// Without Issuer and Audience configured, neither is required.
	in.set("bare", map[string]any{"active": true})
	bare := &resource.Introspection{URL: in.URL, ClientID: introClientID, ClientSecret: introSecret}
	if at, err := bare.VerifyToken(t.Context(), "bare"); err != nil || at.JKT != "" {
		t.Errorf("bare active answer: %+v, %v; want an unbound token", at, err)
	}

	// Not a b64token: refused without a request.
	n := in.requests.Load()
	for _, tok := range []string{"", "a b", "tok\n", "tök", "=abc", strings.Repeat("a", 16<<10+1)} {
		_, err := ti.VerifyToken(t.Context(), tok)
		if te := tokenErr(t, err); te.Claim != "" {
			t.Errorf("token %q: Claim = %q; want \"\"", tok, te.Claim)
		}
	}
	if got := in.requests.Load(); got != n {
		t.Errorf("%d requests for tokens that are not b64tokens; want 0", got-n)
	}
}

// TestIntrospectionCache: answers are reused no longer than MaxCache and
// the token's exp; refusals no longer than MaxCacheInactive.
func TestIntrospectionCache(t *testing.T) {
	in := newIntrospector(t)
	clock := newClock()
	ti := newIntrospection(in, clock)
	ti.MaxCache = time.Minute
	ti.MaxCacheInactive = 5 * time.Second

	in.set("long", active(clock.Now()))
	short := active(clock.Now())
	short["exp"] = clock.Now().Add(20 * time.Second).Unix()
	in.set("short", short)

	verify := func(tok string) error {
		_, err := ti.VerifyToken(t.Context(), tok)
		return err
	}
	requests := func(want int64) {
		t.Helper()
		if got := in.requests.Load(); got != want {
			t.Errorf("requests = %d; want %d", got, want)
		}
	}
	for range 3 {
		if err := verify("long"); err != nil {
			t.Fatal(err)
		}
		if err := verify("short"); err != nil {
			t.Fatal(err)
		}
		if err := verify("unknown"); err == nil {
			t.Fatal("inactive token accepted")
		}
	}
	requests(3)

	// After 10 s: the refusal is asked again, the others are cached.
	clock.Add(10 * time.Second)
	verify("long")
	verify("short")
	verify("unknown")
	requests(4)

	// After 30 s: "short" has expired, in the cache too; the endpoint now
	// says it is inactive (revoked meanwhile, or expired).
	clock.Add(20 * time.Second)
	in.set("short", map[string]any{"active": false})
	if err := verify("short"); err == nil {
		t.Error("short: accepted after its exp")
	}
	verify("long")
	requests(5)

	// After 70 s: MaxCache is over for "long".
	clock.Add(40 * time.Second)
	in.set("long", map[string]any{"active": false})
	if err := verify("long"); err == nil {
		t.Error("long: revoked token accepted after MaxCache")
	}
	requests(6)

	// MaxCache negative: every call asks.
	ti2 := newIntrospection(in, clock)
	ti2.MaxCache = -1
	in.set("again", active(clock.Now()))
	for range 3 {
		if _, err := ti2.VerifyToken(t.Context(), "again"); err != nil {
			t.Fatal(err)
		}
	}
	requests(9)
}

// TestIntrospectionCacheBounded: a flood of distinct tokens keeps the
// cache within MaxEntries, refusals within a quarter of it, and the active
// tokens cached before stay.
func TestIntrospectionCacheBounded(t *testing.T) {
	in := newIntrospector(t)
	clock := newClock()
	ti := newIntrospection(in, clock)
	ti.MaxEntries = 40
	for i := range 20 {
		tok := fmt.Sprintf("good-%d", i)
		in.set(tok, active(clock.Now()))
		if _, err := ti.VerifyToken(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 500 {
		ti.VerifyToken(t.Context(), fmt.Sprintf("junk-%d", i))
	}
	entries, refused := resource.CacheLen(ti)
	if entries > 40 || refused > 10 {
		t.Errorf("cache: %d entries, %d refusals; want at most 40 and 10", entries, refused)
	}
	n := in.requests.Load()
	for i := range 20 {
		ti.VerifyToken(t.Context(), fmt.Sprintf("good-%d", i))
	}
	if got := in.requests.Load(); got != n {
		t.Errorf("the junk pushed %d good answers out of the cache", got-n)
	}
}

// TestIntrospectionShared: concurrent calls for one token make one
// request.
func TestIntrospectionShared(t *testing.T) {
	in := newIntrospector(t)
	clock := newClock()
	release := make(chan struct{})
	in.serve(func(w http.ResponseWriter, r *http.Request) {
		<-release
		writeJSON(w, active(clock.Now()))
	})
	ti := newIntrospection(in, clock)
	const n = 16
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := ti.VerifyToken(t.Context(), "tok")
			errs <- err
		}()
	}
	for in.requests.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := in.requests.Load(); got != 1 {
		t.Errorf("requests = %d; want 1", got)
	}
}

// TestIntrospectionEndpointFailures: an endpoint that is down, refuses the
// client, answers garbage, too much or too slowly gives an *IssuerError
// (the token may be valid), not cached, holding neither the token nor the
// secret.
func TestIntrospectionEndpointFailures(t *testing.T) {
	const tok = "the-token-Zm9vYmFy"
	for _, tt := range []struct {
		name string
		h    http.HandlerFunc
		code string // the OAuth error code the message names
	}{
		{"invalid_client", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid_client","error_description":"bad secret s3cr%t+ for ` + tok + `"}`))
		}, "invalid_client"},
		{"error code echoing the token", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"` + tok + `"}`))
		}, ""},
		{"status 500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, ""},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>" + tok)) }, ""},
		{"no active", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"sub":"alice"}`)) }, ""},
		{"ACTIVE for active", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"ACTIVE":true}`)) }, ""},
		{"active not a boolean", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"active":"true"}`)) }, ""},
		{"scope not a string", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"active":true,"scope":["a"]}`)) }, ""},
		{"huge", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"active":true,"x":"`))
			w.Write(bytes.Repeat([]byte("a"), 1<<20))
		}, ""},
		{"slow", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"active":`))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, ""},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := newIntrospector(t)
			in.serve(tt.h)
			clock := newClock()
			ti := newIntrospection(in, clock)
			ti.Timeout = 300 * time.Millisecond
			for range 2 {
				_, err := ti.VerifyToken(t.Context(), tok)
				var ie *resource.IssuerError
				if !errors.As(err, &ie) {
					t.Fatalf("error = %v (%T); want an *IssuerError", err, err)
				}
				checkNoSecret(t, err, tok, introSecret, "s3cr")
				if tt.code != "" && !strings.Contains(err.Error(), tt.code) {
					t.Errorf("error %q does not name %s", err, tt.code)
				}
			}
			if got := in.requests.Load(); got != 2 {
				t.Errorf("requests = %d; want 2 (failures are not cached)", got)
			}
		})
	}

	t.Run("down", func(t *testing.T) {
		in := newIntrospector(t)
		in.srv.Close()
		ti := newIntrospection(in, newClock())
		_, err := ti.VerifyToken(t.Context(), tok)
		var ie *resource.IssuerError
		if !errors.As(err, &ie) || ie.StatusCode != 0 {
			t.Fatalf("error = %v; want an *IssuerError without status", err)
		}
		checkNoSecret(t, err, tok, introSecret)
	})

	t.Run("caller gives up", func(t *testing.T) {
		in := newIntrospector(t)
		in.serve(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		ti := newIntrospection(in, newClock())
		ti.Timeout = time.Minute
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := ti.VerifyToken(ctx, tok)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error = %v; want context.DeadlineExceeded", err)
		}
		checkNoSecret(t, err, tok, introSecret)
		in.srv.CloseClientConnections() // end the shared request now, not in a minute
	})

	// Configuration refused before any request.
	for _, u := range []string{"", "http://as.example.com/introspect", "https://as.example.com/x#f", "ftp://127.0.0.1/"} {
		ti := &resource.Introspection{URL: u, ClientSecret: introSecret}
		_, err := ti.VerifyToken(t.Context(), tok)
		if err == nil {
			t.Errorf("URL %q: VerifyToken succeeded; want an error", u)
		}
		checkNoSecret(t, err, tok, introSecret)
	}
}

// TestIntrospectionSecret: the client secret never shows in fmt, slog or
// JSON output.
func TestIntrospectionSecret(t *testing.T) {
	ti := &resource.Introspection{URL: "https://as.example.com/introspect", ClientID: "rs", ClientSecret: introSecret}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outputs = append(outputs, fmt.Sprintf(verb, ti))
	}
	outputs = append(outputs, fmt.Sprint(ti), fmt.Sprintln(ti))
	type config struct {
		Name  string
		Intro *resource.Introspection
	}
	c := config{"api", ti}
	outputs = append(outputs, fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c))
	for _, v := range []any{ti, c, []any{ti}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, string(b))
	}
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		l := slog.New(h(&buf))
		l.Info("configured", "introspection", ti, "config", c)
		l.Info("configured", slog.Any("introspection", ti))
		outputs = append(outputs, buf.String())
	}
	for _, out := range outputs {
		if strings.Contains(out, introSecret) || strings.Contains(out, "s3cr") {
			t.Errorf("output holds the secret: %s", out)
		}
	}
	const want = `resource.Introspection{URL: "https://as.example.com/introspect", ClientID: "rs", ClientSecret: set, Issuer: "", Audience: ""}`
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d"} {
		if s := fmt.Sprintf(verb, ti); s != want {
			t.Errorf("%s: %s; want %s", verb, s, want)
		}
	}
	var nilIntro *resource.Introspection
	if s := fmt.Sprint(nilIntro); s != "<nil>" {
		t.Errorf("nil: %s", s)
	}
}

// FuzzIntrospectionAnswer feeds the answer parser arbitrary documents: it
// must not panic, and what it accepts must be active and well formed.
func FuzzIntrospectionAnswer(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	for _, s := range []string{
		`{"active":true}`,
		`{"active":false}`,
		`{"active":true,"iss":"https://as.example.com","aud":["https://api.example.com"],"exp":1800003600,"cnf":{"jkt":"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},"scope":"a b"}`,
		`{"active":true,"aud":"https://api.example.com","exp":1.8e9,"nbf":0,"iat":1799999999}`,
		`{"active":true,"cnf":null,"scope":"  a   b "}`,
		`{"active":true,"exp":1e400}`,
		`{"active":1}`,
		`[]`, `null`, `{"active":true,"active":false}`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		at, err := resource.ParseIntrospection(body, now, "", "")
		if err != nil {
			if at != nil {
				t.Fatal("both an AccessToken and an error")
			}
			var te *resource.TokenError
			var ie *resource.IssuerError
			if !errors.As(err, &te) && !errors.As(err, &ie) {
				t.Fatalf("error %T is neither a TokenError nor an IssuerError", err)
			}
			if !strings.HasPrefix(err.Error(), "dpop: ") {
				t.Fatalf("error %q without the prefix", err)
			}
			return
		}
		if at.Claims["active"] != true {
			t.Fatalf("accepted an answer whose active is %v", at.Claims["active"])
		}
		if at.JKT != "" && len(at.JKT) != 43 {
			t.Fatalf("JKT %q", at.JKT)
		}
		if !at.Expiry.IsZero() && !now.Before(at.Expiry.Add(30*time.Second)) {
			t.Fatalf("accepted a token expired at %v", at.Expiry)
		}
		for _, s := range at.Scopes {
			if s == "" || strings.ContainsAny(s, " \t\n") {
				t.Fatalf("scope %q", s)
			}
		}
	})
}

// BenchmarkIntrospectionCached measures a token whose answer is cached:
// the price of every request but the first for a token.
func BenchmarkIntrospectionCached(b *testing.B) {
	in := newIntrospector(b)
	in.set("tok", active(time.Now()))
	ti := &resource.Introspection{URL: in.URL, ClientID: introClientID, ClientSecret: introSecret}
	if _, err := ti.VerifyToken(b.Context(), "tok"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ti.VerifyToken(b.Context(), "tok"); err != nil {
			b.Fatal(err)
		}
	}
	if n := in.requests.Load(); n != 1 {
		b.Errorf("requests = %d; want 1", n)
	}
}
