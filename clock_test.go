package dpop_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
)

// get sends a GET to u through c and returns the answer, its body read
// and closed.
func get(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
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

// TestTransportNowSetsIAT: the Transport's clock is the proofs' iat.
func TestTransportNowSetsIAT(t *testing.T) {
	srv := newServer(t, nil)
	client, _ := loadClient(t, srv, 1, nil)
	at := time.Now().Add(-42 * time.Second).Truncate(time.Second)
	client.Transport.(*dpop.Transport).Now = func() time.Time { return at }
	get(t, client, srv.URL+"/api/items")
	rs := srv.Requests()
	if len(rs) != 1 || rs[0].Proof == nil {
		t.Fatalf("records %+v; want one request with a valid proof", rs)
	}
	if got := rs[0].Proof.IAT; !got.Equal(at) {
		t.Errorf("iat = %v; want the Transport's clock, %v", got, at)
	}
}

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
			// Date has a resolution of a second: allow one either way.
			if tc.attempts == 2 {
				secs := int(ce.ClockSkew.Round(time.Second) / time.Second)
				want := strings.Fields(tc.want)[4]
				var ok bool
				for _, d := range []int{-1, 0, 1} {
					v := fmt.Sprintf("%ds", abs(secs)+d)
					ok = ok || v == want && strings.Contains(err.Error(), v)
				}
				if !ok {
					t.Errorf("error %q, ClockSkew %v; want it to say %q", err, ce.ClockSkew, tc.want)
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
