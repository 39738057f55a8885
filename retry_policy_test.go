package dpop_test

import (
	"encoding/base64"
	"encoding/json"
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
)

// permissive is a Transport.NonceRetries policy that allows every request
// the most nonce retries there are.
func permissive(*http.Request) int { return 5 } // values above 5 count as 5

// TestNonceRotationByCount measures the use_dpop_nonce challenges handed
// back to callers when the server rotates every 3 accepted proofs and
// accepts the newest 2: 32 goroutines × 100 requests with the default bound
// and with a permissive one. The permissive policy leaves no more
// unanswered than the default; run with -v for the figures.
func TestNonceRotationByCount(t *testing.T) {
	goroutines, perG := 32, 100
	if testing.Short() {
		perG = 10
	}
	run := func(t *testing.T, retries func(*http.Request) int) (unanswered int, w wire) {
		srv := newServer(t, &dpoptest.Config{RequireNonce: true, NonceEvery: 3, NonceWindow: 2})
		client, _ := loadClient(t, srv, goroutines, retries)
		a := hammer(client, srv.URL+"/api/items", goroutines, perG)
		if len(a.other) != 0 {
			t.Errorf("answers other than 200 and use_dpop_nonce: %v", a.other)
		}
		if a.ok+a.unanswered != goroutines*perG {
			t.Errorf("%d answered + %d unanswered; want %d in all", a.ok, a.unanswered, goroutines*perG)
		}
		w = wireOf(t, srv, dpoptest.KindResource)
		checkFresh(t, w)
		if w.requests > a.ok+a.unanswered+w.challenges {
			t.Errorf("%d requests on the wire > %d answers + %d challenges", w.requests, a.ok+a.unanswered, w.challenges)
		}
		return a.unanswered, w
	}
	n := goroutines * perG
	def, dw := run(t, nil)
	per, pw := run(t, permissive)
	t.Logf("default (1 retry): %d of %d unanswered (%.1f%%), %d requests on the wire, %d challenges", def, n, 100*float64(def)/float64(n), dw.requests, dw.challenges)
	t.Logf("permissive (%d retries): %d of %d unanswered (%.1f%%), %d requests on the wire, %d challenges", permissive(nil), per, n, 100*float64(per)/float64(n), pw.requests, pw.challenges)
	if per > def {
		t.Errorf("permissive policy left %d unanswered; want at most the default's %d", per, def)
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
