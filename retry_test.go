package dpop_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"github.com/dpopkit/dpop/keystore"
	"golang.org/x/oauth2"
)

// permissive is a Transport.NonceRetries policy that allows every request
// the most nonce retries there are.
func permissive(*http.Request) int { return 5 } // values above 5 count as 5

// BenchmarkNonceRotationByCount measures the use_dpop_nonce challenges
// handed back to callers when the server rotates its nonce every 3
// accepted proofs and accepts the newest 2, for 32 goroutines sharing a
// Transport, with the default bound and with the most nonce retries:
// unanswered/op is the share of requests answered with a challenge,
// requests/op the requests on the wire per answer. Whatever the figures,
// every answer is a 200 or a challenge, and every attempt a new proof.
func BenchmarkNonceRotationByCount(b *testing.B) {
	const goroutines = 32
	for _, bc := range []struct {
		name    string
		retries func(*http.Request) int
	}{{"default", nil}, {"permissive", permissive}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := newServer(b, &dpoptest.Config{RequireNonce: true, NonceEvery: 3, NonceWindow: 2})
			client, _ := loadClient(b, srv, goroutines, bc.retries)
			u := srv.URL + "/api/items"
			a := new(answers)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range goroutines {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						resp, err := client.Get(u)
						if err == nil {
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
						a.add(resp, err)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			if len(a.other) != 0 {
				b.Errorf("answers other than 200 and use_dpop_nonce: %v", a.other)
			}
			if a.ok+a.unanswered != b.N {
				b.Errorf("%d answered + %d unanswered; want %d in all", a.ok, a.unanswered, b.N)
			}
			w := wireOf(b, srv, dpoptest.KindResource)
			checkFresh(b, w)
			b.ReportMetric(float64(a.unanswered)/float64(b.N), "unanswered/op")
			b.ReportMetric(float64(w.requests)/float64(b.N), "requests/op")
		})
	}
}

// TestNonceRotationByTime: a server rotating every second and accepting
// the newest two leaves no challenge unanswered, 64 goroutines × 100.
func TestNonceRotationByTime(t *testing.T) {
	goroutines, perG := 64, 100
	if testing.Short() {
		perG = 10
	}
	srv := newServer(t, &dpoptest.Config{RequireNonce: true, NonceTTL: time.Second, NonceWindow: 2})
	client, _ := loadClient(t, srv, goroutines, nil)
	a := hammer(client, srv.URL+"/api/items", goroutines, perG)
	if a.ok != goroutines*perG || a.unanswered != 0 || len(a.other) != 0 {
		t.Errorf("answers: %d ok, %d unanswered, other %v; want %d ok", a.ok, a.unanswered, a.other, goroutines*perG)
	}
	w := wireOf(t, srv, dpoptest.KindResource)
	checkFresh(t, w)
	t.Logf("%d requests on the wire for %d answers, %d challenges", w.requests, a.ok, w.challenges)
}

// TestNonceAnnouncedOnSuccess: a server that announces each new nonce on
// its 200s challenges the first request only; the client learns every
// rotation from the answers.
func TestNonceAnnouncedOnSuccess(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true, NonceEvery: 3})
	client, _ := loadClient(t, srv, 1, nil)
	a := hammer(client, srv.URL+"/api/items", 1, 50)
	if a.ok != 50 {
		t.Fatalf("answers: %d ok, %d unanswered, other %v; want 50 ok", a.ok, a.unanswered, a.other)
	}
	w := wireOf(t, srv, dpoptest.KindResource)
	checkFresh(t, w)
	if w.challenges != 1 || w.requests != 51 {
		t.Errorf("%d requests on the wire, %d challenges; want 51 and 1 (the first)", w.requests, w.challenges)
	}
}

// TestNonceRetryFreshProofs: with a clock that moves a second on every
// reading, each attempt of a request (the first, and the retries after
// challenges) carries a new jti and a later iat, taken when it is signed.
func TestNonceRetryFreshProofs(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true, NonceEvery: 1, NoNonceOnSuccess: true, MaxSkew: time.Hour})
	client, _ := loadClient(t, srv, 1, nil)
	var tick atomic.Int64
	start := time.Now()
	client.Transport.(*dpop.Transport).Now = func() time.Time {
		return start.Add(time.Duration(tick.Add(1)) * time.Second)
	}
	a := hammer(client, srv.URL+"/api/items", 1, 10)
	if a.ok != 10 {
		t.Fatalf("answers: %d ok, %d unanswered, other %v; want 10 ok", a.ok, a.unanswered, a.other)
	}
	w := wireOf(t, srv, dpoptest.KindResource)
	checkFresh(t, w)
	if w.requests != 20 {
		t.Errorf("%d requests on the wire; want 20 (each challenged once: the nonce rotated after every proof)", w.requests)
	}
	var last time.Time
	for i, r := range srv.Requests() {
		if r.Proof == nil {
			t.Errorf("request %d: no valid proof (%s)", i, r.ProofErr)
			continue
		}
		if !r.Proof.IAT.After(last) {
			t.Errorf("request %d: iat %v not after the previous attempt's %v", i, r.Proof.IAT, last)
		}
		last = r.Proof.IAT
	}
}

// hostile is a resource server that answers every request with a
// use_dpop_nonce challenge carrying nonces[i % len(nonces)], and records
// the nonce claim of every proof.
type hostile struct {
	*httptest.Server
	mu   sync.Mutex
	sent []string // the nonce claim of each attempt
}

func newNonceHostile(t *testing.T, nonces func(i int) string) *hostile {
	h := &hostile{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		h.mu.Lock()
		i := len(h.sent)
		h.sent = append(h.sent, proofNonce(t, r.Header.Get("DPoP")))
		h.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
		w.Header().Set("DPoP-Nonce", nonces(i))
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, "challenge body")
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hostile) attempts() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.sent...)
}

// proofNonce returns the nonce claim of proof (not verified here: the
// other tests verify proofs with go-jose through dpoptest).
func proofNonce(t *testing.T, proof string) string {
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Errorf("proof has %d parts; want 3", len(parts))
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct{ Nonce string }
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		t.Errorf("proof claims: %v", err)
	}
	return c.Nonce
}

// oneShot is a request body that cannot be rewound (no GetBody).
type oneShot struct{ io.Reader }

func (oneShot) Close() error { return nil }

// TestNonceRetryBound: a server that answers every attempt with yet
// another nonce gets at most 1 + the bound attempts per request; a nonce
// already refused is never sent again; a one-shot body is never sent
// twice; and the caller gets the last challenge with its body intact.
func TestNonceRetryBound(t *testing.T) {
	fresh := func(i int) string { return fmt.Sprintf("n%d", i) }
	pingPong := func(i int) string { return []string{"a", "b"}[i%2] }
	for _, tc := range []struct {
		name    string
		nonces  func(int) string
		retries func(*http.Request) int
		body    bool // a one-shot body
		want    []string
	}{
		{"default", fresh, nil, false, []string{"", "n0"}},
		{"permissive", fresh, permissive, false, []string{"", "n0", "n1", "n2", "n3", "n4"}},
		{"above max", fresh, func(*http.Request) int { return 1000 }, false, []string{"", "n0", "n1", "n2", "n3", "n4"}},
		{"none", fresh, func(*http.Request) int { return -1 }, false, []string{""}},
		{"refused nonce again", pingPong, permissive, false, []string{"", "a", "b"}},
		{"one-shot body", fresh, permissive, true, []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newNonceHostile(t, tc.nonces)
			tr := &dpop.Transport{Signer: newSigner(t), NonceRetries: tc.retries, Base: &http.Transport{}}
			t.Cleanup(tr.Base.(*http.Transport).CloseIdleConnections)
			var req *http.Request
			if tc.body {
				req, _ = http.NewRequest("POST", h.URL+"/x", oneShot{strings.NewReader("payload")})
			} else {
				req, _ = http.NewRequest("GET", h.URL+"/x", nil)
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || string(body) != "challenge body" {
				t.Errorf("answer %d %q; want the last challenge, 401 \"challenge body\"", resp.StatusCode, body)
			}
			if got := h.attempts(); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("nonces sent = %q; want %q", got, tc.want)
			}
		})
	}
}

// statuses returns "status error" of each recorded request of kind, in
// order, e.g. "401 invalid_dpop_proof", "200 ".
func statuses(srv *dpoptest.Server, kind dpoptest.Kind) []string {
	var out []string
	for _, r := range srv.Requests() {
		if r.Kind == kind {
			out = append(out, http.StatusText(r.Status)+" "+r.Error)
		}
	}
	return out
}

func checkStatuses(t *testing.T, srv *dpoptest.Server, want ...string) {
	t.Helper()
	if got := statuses(srv, dpoptest.KindResource); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("server saw %q; want %q", got, want)
	}
}

const (
	refusedIAT = "Unauthorized invalid_dpop_proof"
	passed     = "OK "
)

// TestClockOffsetLearned: a server whose clock is 2 minutes ahead of the
// client's refuses the first proof for its iat; the Transport reads the
// difference from the Date header, retries once with a corrected iat, and
// sends later requests to that origin, and only to it, corrected.
func TestClockOffsetLearned(t *testing.T) {
	ahead := newServer(t, &dpoptest.Config{ClockOffset: 2 * time.Minute})
	other := newServer(t, nil)
	client, _ := loadClient(t, ahead, 1, nil)
	for range 5 {
		if resp := get(t, client, ahead.URL+"/api/items"); resp.StatusCode != 200 {
			t.Fatalf("status %d %s; want 200", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	checkStatuses(t, ahead, refusedIAT, passed, passed, passed, passed, passed)
	for i, r := range ahead.Requests()[1:] {
		if r.Proof == nil {
			continue // refused, and reported by checkStatuses
		}
		if d := r.Proof.IAT.Sub(time.Now()); d < time.Minute {
			t.Errorf("request %d: iat is %v from the client's clock; want the server's, 2m ahead", i+1, d.Round(time.Second))
		}
	}

	// The same Transport on another origin: its own clock, no refusal.
	// (The token is other's own; the offset is a property of the origin.)
	tok := other.IssueToken(client.Transport.(*dpop.Transport).Signer.Thumbprint(), "alice", "")
	req, _ := http.NewRequest("GET", other.URL+"/api/items", nil)
	req.Header.Set("Authorization", "DPoP "+tok)
	first := client.Transport.(*dpop.Transport)
	// The same signer and nonce cache, a proof only: the request carries
	// other's token.
	tr := &dpop.Transport{Base: first.Base, Signer: first.Signer, Nonces: first.Nonces}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := statuses(other, dpoptest.KindResource); len(got) != 1 || got[0] != passed {
		t.Errorf("other origin saw %q; want one request, passed", got)
	}
	if r := other.Requests(); len(r) == 1 && r[0].Proof != nil {
		if d := r[0].Proof.IAT.Sub(time.Now()); d > 10*time.Second || d < -10*time.Second {
			t.Errorf("other origin: iat %v from the client's clock; want its own clock", d.Round(time.Second))
		}
	}
}

// shiftable is a dpoptest server whose clock offset can change.
func shiftable(t *testing.T, cfg *dpoptest.Config) (*dpoptest.Server, *atomic.Int64) {
	var off atomic.Int64
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(off.Load())) }
	return newServer(t, cfg), &off
}

// TestClockOffsetResets: when the server's clock comes back to the
// client's, the first proof with the learned offset is refused; the
// Transport drops the offset, sends that request again with its own clock
// (one clock retry, as for any iat refusal with a Date that disagrees),
// and later requests pass first time.
func TestClockOffsetResets(t *testing.T) {
	srv, off := shiftable(t, &dpoptest.Config{})
	client, _ := loadClient(t, srv, 1, nil)
	off.Store(int64(2 * time.Minute))
	get(t, client, srv.URL+"/api/items")
	off.Store(0)
	var got []int
	for range 3 {
		got = append(got, get(t, client, srv.URL+"/api/items").StatusCode)
	}
	if got[0] != 200 || got[1] != 200 || got[2] != 200 {
		t.Errorf("statuses after the server's clock came back = %v; want [200 200 200]", got)
	}
	checkStatuses(t, srv, refusedIAT, passed, refusedIAT, passed, passed, passed)
	if r := srv.Requests(); len(r) > 0 && r[len(r)-1].Proof != nil {
		if d := r[len(r)-1].Proof.IAT.Sub(time.Now()); d > 10*time.Second || d < -10*time.Second {
			t.Errorf("last iat %v from the client's clock; want the offset dropped", d.Round(time.Second))
		}
	}
}

// refuser is a resource server that refuses every proof for its iat, with
// a Date header date() (none when it returns "").
func refuser(t *testing.T, date func() string) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header()["Date"] = nil // no Date unless set below
		if d := date(); d != "" {
			w.Header().Set("Date", d)
		}
		w.Header().Set("WWW-Authenticate", `DPoP error="invalid_dpop_proof", error_description="invalid iat: too far from now"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestClockOffsetUncorrectable: when the clock difference cannot be
// mended, the request is sent at most twice and the error says why: by how
// many seconds the clocks differ when the Date header tells, that the
// clocks may differ when it does not.
func TestClockOffsetUncorrectable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		date     func() string
		attempts int32
		want     string
	}{
		{"keeps refusing", func() string {
			return time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)
		}, 2, "the server's clock is 120s ahead of this client's"},
		{"behind", func() string {
			return time.Now().Add(-90 * time.Second).UTC().Format(http.TimeFormat)
		}, 2, "the server's clock is 90s behind this client's"},
		{"no Date", func() string { return "" }, 1, "the client's and the server's clocks may differ"},
		{"Date agrees", func() string { return time.Now().UTC().Format(http.TimeFormat) }, 1, "the client's and the server's clocks may differ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, n := refuser(t, tc.date)
			tr := &dpop.Transport{Signer: newSigner(t), Base: &http.Transport{}}
			t.Cleanup(tr.Base.(*http.Transport).CloseIdleConnections)
			req, _ := http.NewRequest("GET", srv.URL+"/x", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := n.Load(); got != tc.attempts {
				t.Errorf("attempts = %d; want %d", got, tc.attempts)
			}
			err = dpop.CheckResponse(resp)
			var ce *dpop.ChallengeError
			if !errors.As(err, &ce) || ce.ErrorCode != dpop.CodeInvalidProof {
				t.Fatalf("CheckResponse = %v; want a ChallengeError invalid_dpop_proof", err)
			}
			// Date has a resolution of a second: the skew read from it may
			// be a second off the server's offset. The error must say the
			// skew it reports.
			if tc.attempts == 2 {
				var want int
				fmt.Sscanf(strings.Fields(tc.want)[4], "%ds", &want)
				got := abs(int(ce.ClockSkew.Round(time.Second) / time.Second))
				said := strings.Replace(tc.want, fmt.Sprintf("%ds", want), fmt.Sprintf("%ds", got), 1)
				if got < want-1 || got > want+1 || !strings.Contains(err.Error(), said) {
					t.Errorf("error %q, ClockSkew %v; want it to say %q, give or take a second", err, ce.ClockSkew, tc.want)
				}
				return
			}
			if ce.ClockSkew != 0 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, ClockSkew %v; want %q and no skew", err, ce.ClockSkew, tc.want)
			}
		})
	}
}

func abs(n int) int { return max(n, -n) }

// refreshes counts the token requests with grant_type=refresh_token that
// got a token.
func refreshes(srv *dpoptest.Server) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Kind == dpoptest.KindToken && r.GrantType == "refresh_token" && r.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// loggedIn logs "cli" in at srv and returns its Config and token.
func loggedIn(t *testing.T, srv *dpoptest.Server) (*dpop.Config, *oauth2.Token) {
	t.Helper()
	cfg := publicConfig(srv, newSigner(t))
	tok, err := login(t, cfg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("login gave no refresh token")
	}
	srv.ResetRequests()
	return cfg, tok
}

// TestRefusedTokenReplaced: a token the server revoked is answered with
// 401 invalid_token; the Transport has its Source refresh it once and
// sends the request once more with the new token, and 64 goroutines that
// all meet the refusal cause one refresh between them.
func TestRefusedTokenReplaced(t *testing.T) {
	for _, c := range []int{1, 64} {
		t.Run(fmt.Sprintf("C=%d", c), func(t *testing.T) {
			srv := newServer(t, &dpoptest.Config{RequireNonce: true})
			cfg, tok := loggedIn(t, srv)
			base := &http.Transport{MaxIdleConnsPerHost: c}
			t.Cleanup(base.CloseIdleConnections)
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: base})
			client := cfg.Client(ctx, tok)
			get(t, client, srv.URL+"/api/items") // learn the resource server's nonce
			srv.Revoke(tok.AccessToken)
			srv.ResetRequests()

			a := hammer(client, srv.URL+"/api/items", c, 1)
			if a.ok != c || len(a.other) != 0 {
				t.Fatalf("answers: %d ok, other %v; want %d ok", a.ok, a.other, c)
			}
			if n := refreshes(srv); n != 1 {
				t.Errorf("refreshes = %d; want 1", n)
			}
			w := wireOf(t, srv, dpoptest.KindResource)
			checkFresh(t, w)
			refused := count(srv, dpoptest.KindResource, dpop.CodeInvalidToken)
			if refused < 1 || refused > c || w.requests != c+refused {
				t.Errorf("resource requests = %d with %d invalid_token; want %d and one retry for each refusal", w.requests, refused, c)
			}
		})
	}
}

// TestRefusedTokenNotReplaced: a refused token is replaced at most once per
// request, never for a body that cannot be sent again, and never when the
// source has no refresh token.
func TestRefusedTokenNotReplaced(t *testing.T) {
	t.Run("refused again", func(t *testing.T) {
		// The resource server is another server's: it refuses every token.
		srv := newServer(t, nil)
		rs := newServer(t, nil)
		cfg, tok := loggedIn(t, srv)
		client := cfg.Client(context.Background(), tok)
		for i := range 3 {
			if resp := get(t, client, rs.URL+"/api/items"); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("request %d: status %d; want 401", i, resp.StatusCode)
			}
		}
		if n, m := refreshes(srv), count(rs, dpoptest.KindResource, dpop.CodeInvalidToken); n != 3 || m != 6 {
			t.Errorf("refreshes = %d, refusals = %d; want 3 and 6 (one refresh and one retry per request)", n, m)
		}
	})
	t.Run("one-shot body", func(t *testing.T) {
		srv := newServer(t, nil)
		cfg, tok := loggedIn(t, srv)
		client := cfg.Client(context.Background(), tok)
		srv.Revoke(tok.AccessToken)
		req, _ := http.NewRequest("POST", srv.URL+"/api/items", oneShot{strings.NewReader("payload")})
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d; want 401", resp.StatusCode)
		}
		if n, m := refreshes(srv), count(srv, dpoptest.KindResource, dpop.CodeInvalidToken); n != 0 || m != 1 {
			t.Errorf("refreshes = %d, refusals = %d; want 0 and 1", n, m)
		}
	})
	t.Run("no refresh token", func(t *testing.T) {
		srv := newServer(t, nil)
		cfg, tok := loggedIn(t, srv)
		tok.RefreshToken = ""
		client := cfg.Client(context.Background(), tok)
		srv.Revoke(tok.AccessToken)
		resp := get(t, client, srv.URL+"/api/items")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d; want 401", resp.StatusCode)
		}
		err := dpop.CheckResponse(resp)
		if ce, ok := err.(*dpop.ChallengeError); !ok || ce.ErrorCode != dpop.CodeInvalidToken {
			t.Errorf("CheckResponse = %v; want invalid_token", err)
		}
		if n, m := count(srv, dpoptest.KindToken, ""), count(srv, dpoptest.KindResource, dpop.CodeInvalidToken); n != 0 || m != 1 {
			t.Errorf("token requests = %d, refusals = %d; want 0 and 1", n, m)
		}
	})
}

// TestRefusedTokenSaved: with keystore.SavingTokenSource around the Config's
// source, the token that replaces a refused one is saved, with its
// rotated refresh token.
func TestRefusedTokenSaved(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true})
	cfg, tok := loggedIn(t, srv)
	store := new(keystore.MemoryStore)
	jkt := cfg.Signer.Thumbprint()
	ctx := context.Background()
	src := keystore.SavingTokenSource(store, "alice", jkt, cfg.TokenSource(ctx, tok))
	client := &http.Client{Transport: &dpop.Transport{Signer: cfg.Signer, Source: src}}
	get(t, client, srv.URL+"/api/items")
	for i := range 3 {
		saved, err := keystore.LoadToken(store, "alice", jkt)
		if err != nil {
			t.Fatal(err)
		}
		srv.Revoke(saved.AccessToken)
		if resp := get(t, client, srv.URL+"/api/items"); resp.StatusCode != 200 {
			t.Fatalf("round %d: status %d %s; want 200", i, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		now, err := keystore.LoadToken(store, "alice", jkt)
		if err != nil {
			t.Fatal(err)
		}
		if now.AccessToken == saved.AccessToken || now.RefreshToken == saved.RefreshToken {
			t.Errorf("round %d: the saved token was not replaced by the refreshed one", i)
		}
	}
	if n := refreshes(srv); n != 3 {
		t.Errorf("refreshes = %d; want 3", n)
	}
}

// TestClockOffsetBounded: a server whose Date is years away is not taken
// for a clock to follow: no clock retry, the refusal is returned.
func TestClockOffsetBounded(t *testing.T) {
	requests := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		w.Header().Set("Date", "Fri, 31 Dec 9999 23:59:59 GMT")
		w.Header().Set("WWW-Authenticate", `DPoP error="invalid_dpop_proof", error_description="iat out of range"`)
		w.WriteHeader(401)
	}))
	defer ts.Close()
	c := &http.Client{Transport: &dpop.Transport{Signer: newSigner(t)}}
	resp, err := c.Get(ts.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || requests != 1 {
		t.Errorf("status %d after %d requests; want the 401 after 1", resp.StatusCode, requests)
	}
}

// bearerAfterRefusal hands out a DPoP token, then, once told it was
// refused, a Bearer one.
type bearerAfterRefusal struct{ refused bool }

func (s *bearerAfterRefusal) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

func (s *bearerAfterRefusal) TokenContext(context.Context) (*oauth2.Token, error) {
	if s.refused {
		return &oauth2.Token{AccessToken: "bearer-token", TokenType: "Bearer"}, nil
	}
	return &oauth2.Token{AccessToken: "first", TokenType: "DPoP"}, nil
}

func (s *bearerAfterRefusal) Invalidate(*oauth2.Token) bool { s.refused = true; return true }

// TestReplacementTokenChecked: the token that replaces a refused one is
// checked as the first was: a Bearer token is refused, not sent as DPoP.
func TestReplacementTokenChecked(t *testing.T) {
	var auths []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auths = append(auths, r.Header.Get("Authorization"))
		w.Header().Set("WWW-Authenticate", `DPoP error="invalid_token"`)
		w.WriteHeader(401)
	}))
	defer ts.Close()
	c := &http.Client{Transport: &dpop.Transport{Signer: newSigner(t), Source: &bearerAfterRefusal{}}}
	_, err := c.Get(ts.URL + "/x")
	var te *dpop.TokenTypeError
	if !errors.As(err, &te) || len(auths) != 1 {
		t.Errorf("err = %v after %d requests; want a TokenTypeError after 1", err, len(auths))
	}
}
