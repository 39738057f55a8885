package dpop_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"golang.org/x/oauth2"
)

// TestConcurrentRequests shares one Transport between 64 goroutines of
// 1000 requests each, against a server that rotates its nonce every five
// accepted proofs and remembers every jti: every request must end 200, and
// no proof may be sent twice.
func TestConcurrentRequests(t *testing.T) {
	goroutines, perG := 64, 1000
	switch {
	case testing.Short():
		perG = 50
	case raceOn:
		perG = 200 // 12,800 requests: still every rotation race, in a fifth of the time
	}
	// The server rotates every 5 accepted proofs and accepts the newest
	// 1024 nonces (about 5000 requests' worth): a real server's window is
	// measured in time, and on a loaded machine a goroutine can stall
	// between a challenge and its retry while the others send hundreds of
	// requests. The clients must keep learning the rotated nonces from 200
	// responses, concurrently, through one cache.
	srv := newServer(t, &dpoptest.Config{RequireNonce: true, NonceEvery: 5, NonceWindow: 1024})
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	s, err := dpop.NewSigner(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := srv.IssueToken(s.Thumbprint(), "alice", "api:read")
	tr := &dpop.Transport{
		Base:   &http.Transport{MaxIdleConnsPerHost: goroutines},
		Signer: s,
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok, TokenType: "DPoP"}),
	}
	defer tr.Base.(*http.Transport).CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perG {
				resp, err := c.Get(srv.URL + "/api/items")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d: %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
					return
				}
			}
		}()
	}
	wg.Wait()

	jtis := make(map[string]bool)
	ok, challenged := 0, 0
	for _, r := range srv.Requests() {
		if r.Kind != "resource" {
			continue
		}
		if r.Proof == nil {
			t.Fatalf("request without a valid proof: %+v", r)
		}
		if jtis[r.Proof.JTI] {
			t.Fatalf("jti %q seen twice", r.Proof.JTI)
		}
		jtis[r.Proof.JTI] = true
		switch {
		case r.Status == 200:
			ok++
		case r.Error == "use_dpop_nonce":
			challenged++
		default:
			t.Errorf("unexpected answer %d %s", r.Status, r.Error)
		}
	}
	if ok != goroutines*perG {
		t.Errorf("%d requests succeeded; want %d", ok, goroutines*perG)
	}
	t.Logf("%d requests, %d nonce challenges retried", ok, challenged)
}
