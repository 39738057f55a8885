package dpoptest

import (
	"net/http"
	"testing"
	"time"
)

func TestNonceWindow(t *testing.T) {
	n := newNonceState(&Config{NonceEvery: 1, NonceWindow: 3}, time.Now)
	first := n.get()
	n.accept() // rotation 1
	n.accept() // rotation 2
	if !n.valid(first) {
		t.Errorf("nonce from 2 rotations ago refused; want accepted with window 3")
	}
	n.accept() // rotation 3
	if n.valid(first) {
		t.Errorf("nonce from 3 rotations ago accepted; want refused with window 3")
	}
	strict := newNonceState(&Config{NonceEvery: 1}, time.Now)
	old := strict.get()
	strict.accept()
	if strict.valid(old) || !strict.valid(strict.get()) {
		t.Errorf("window 0: previous accepted or current refused")
	}
}

func TestNonceTTL(t *testing.T) {
	clock := newFakeClock()
	n := newNonceState(&Config{NonceTTL: 10 * time.Second, NonceWindow: 2}, clock.now)
	first := n.get()
	clock.add(9 * time.Second)
	if got := n.get(); got != first {
		t.Fatalf("nonce rotated before its TTL")
	}
	clock.add(time.Second)
	second := n.get()
	if second == first || !n.valid(first) {
		t.Fatalf("after one TTL: rotated %v, first valid %v; want rotated, first still in the window of 2", second != first, n.valid(first))
	}
	clock.add(10 * time.Second)
	if n.valid(first) || !n.valid(second) {
		t.Errorf("after two TTLs: first valid %v, second valid %v; want false, true", n.valid(first), n.valid(second))
	}
	// An idle server has rotated on its timer all along.
	third := n.get()
	clock.add(50 * time.Second)
	if n.valid(third) {
		t.Errorf("nonce valid 5 TTLs later with a window of 2")
	}
	// A rotation on demand starts a new period.
	clock.add(5 * time.Second)
	fresh := n.rotate()
	clock.add(9 * time.Second)
	if n.get() != fresh {
		t.Errorf("nonce rotated 9s after RotateNonces with a TTL of 10s")
	}
}

// TestNonceTTLServer: both servers challenge a nonce that outlived
// NonceTTL, and accept the new one.
func TestNonceTTLServer(t *testing.T) {
	clock := newFakeClock()
	s := newTestServer(t, &Config{RequireNonce: true, NonceTTL: 30 * time.Second, Now: clock.now})
	k := newClientKey(t, "ES256")
	tu := s.Endpoint().TokenURL
	cc := form("grant_type", "client_credentials")
	as := s.ASNonce()
	tr := post(t, tu, k, basic("backend", "backend-secret"), cc, withNonce(as))
	if tr.status != 200 {
		t.Fatalf("token: %+v", tr)
	}
	rs := s.RSNonce()
	if resp, _ := callAPI(t, k, "GET", s.URL+"/api/x", tr.AT, rs); resp.StatusCode != 200 {
		t.Fatalf("api: status %d", resp.StatusCode)
	}
	clock.add(30 * time.Second) // within the proofs' iat skew
	wantOAuthError(t, post(t, tu, k, basic("backend", "backend-secret"), cc, withNonce(as)), 400, "use_dpop_nonce")
	resp, _ := callAPI(t, k, "GET", s.URL+"/api/x", tr.AT, rs)
	wantChallenge(t, resp, "use_dpop_nonce")
	if got := resp.Header.Get("DPoP-Nonce"); got == rs || got != s.RSNonce() {
		t.Errorf("challenge nonce = %q; want the new current one, not the expired %q", got, rs)
	}
	if resp, _ := callAPI(t, k, "GET", s.URL+"/api/x", tr.AT, s.RSNonce()); resp.StatusCode != 200 {
		t.Errorf("api with the new nonce: status %d", resp.StatusCode)
	}
}

func TestNoNonceOnSuccess(t *testing.T) {
	for _, hide := range []bool{false, true} {
		s := newTestServer(t, &Config{RequireNonce: true, NoNonceOnSuccess: hide})
		k := newClientKey(t, "ES256")
		tu := s.Endpoint().TokenURL
		cc := form("grant_type", "client_credentials")
		auth := basic("backend", "backend-secret")

		first := post(t, tu, k, auth, cc)
		wantOAuthError(t, first, 400, "use_dpop_nonce")
		if first.header.Get("DPoP-Nonce") == "" {
			t.Errorf("hide=%v: token challenge without DPoP-Nonce", hide)
		}
		tr := post(t, tu, k, auth, cc, withNonce(first.header.Get("DPoP-Nonce")))
		if tr.status != 200 {
			t.Fatalf("hide=%v: token: %+v", hide, tr)
		}
		if got := tr.header.Get("DPoP-Nonce") != ""; got == hide {
			t.Errorf("hide=%v: token 200 carries DPoP-Nonce: %v; want %v", hide, got, !hide)
		}

		resp, _ := callAPI(t, k, "GET", s.URL+"/api/x", tr.AT, "")
		wantChallenge(t, resp, "use_dpop_nonce")
		nonce := resp.Header.Get("DPoP-Nonce")
		if nonce == "" {
			t.Errorf("hide=%v: resource challenge without DPoP-Nonce", hide)
		}
		resp, _ = callAPI(t, k, "GET", s.URL+"/api/x", tr.AT, nonce)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("hide=%v: api: status %d", hide, resp.StatusCode)
		}
		if got := resp.Header.Get("DPoP-Nonce") != ""; got == hide {
			t.Errorf("hide=%v: resource 200 carries DPoP-Nonce: %v; want %v", hide, got, !hide)
		}
	}
}
