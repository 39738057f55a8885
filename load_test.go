package dpop_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// These tests hold the promise of issue 11 in counts read from dpoptest's
// request records, never in timings: how many requests go on the wire per
// answer at a cold start, how many nonce challenges are handed back to the
// caller under rotation, and that every attempt is a new proof.

// loadClient returns an http.Client whose Transport presents a token srv
// issued for a new Ed25519 key (cheap to sign under -race), with the nonce
// cache it uses, and enough idle connections for conns goroutines.
func loadClient(t testing.TB, srv *dpoptest.Server, conns int, retries func(*http.Request) int) (*http.Client, *dpop.NonceCache) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := &http.Transport{MaxIdleConnsPerHost: conns}
	t.Cleanup(base.CloseIdleConnections)
	nonces := dpop.NewNonceCache(0)
	tok := srv.IssueToken(s.Thumbprint(), "alice", "api:read")
	tr := &dpop.Transport{
		Base:         base,
		Signer:       s,
		Source:       oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok, TokenType: "DPoP"}),
		Nonces:       nonces,
		NonceRetries: retries,
	}
	return &http.Client{Transport: tr}, nonces
}

// answers counts what the callers got back.
type answers struct {
	mu         sync.Mutex
	ok         int // 2xx
	unanswered int // a use_dpop_nonce challenge handed back to the caller
	other      map[string]int
}

func (a *answers) add(resp *http.Response, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case err != nil:
		a.otherf("error %v", err)
	case resp.StatusCode/100 == 2:
		a.ok++
	default:
		var ce *dpop.ChallengeError
		if errors.As(dpop.CheckResponse(resp), &ce) && ce.ErrorCode == dpop.CodeUseNonce && ce.Nonce != "" {
			a.unanswered++
			return
		}
		a.otherf("%d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func (a *answers) otherf(format string, args ...any) {
	if a.other == nil {
		a.other = make(map[string]int)
	}
	a.other[fmt.Sprintf(format, args...)]++
}

// hammer sends goroutines×perG GETs to u through c, all goroutines
// starting together, and counts the answers.
func hammer(c *http.Client, u string, goroutines, perG int) *answers {
	a := new(answers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range perG {
				resp, err := c.Get(u)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				a.add(resp, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	return a
}

// wire is what a server's records say of the requests of one kind.
type wire struct {
	requests, ok, challenges int
	badProofs                []string // invalid_dpop_proof: a replayed jti, a stale iat, ...
	jtiDup                   int      // proofs whose jti was sent before
}

func wireOf(t testing.TB, srv *dpoptest.Server, kind dpoptest.Kind) wire {
	t.Helper()
	var w wire
	jtis := make(map[string]bool)
	for _, r := range srv.Requests() {
		if r.Kind != kind {
			continue
		}
		w.requests++
		switch {
		case r.Status/100 == 2:
			w.ok++
		case r.Error == dpop.CodeUseNonce:
			w.challenges++
		case r.Error == dpop.CodeInvalidProof:
			w.badProofs = append(w.badProofs, r.ProofErr)
		}
		if r.Proof != nil {
			if jtis[r.Proof.JTI] {
				w.jtiDup++
			}
			jtis[r.Proof.JTI] = true
		}
	}
	return w
}

// checkFresh fails t when a proof was sent twice or refused: every attempt,
// retries included, carries a new jti and iat (RFC 9449 §11.1), and
// dpoptest's jti cache answers a replay with invalid_dpop_proof.
func checkFresh(t *testing.T, w wire) {
	t.Helper()
	if w.jtiDup != 0 {
		t.Errorf("%d proofs reused a jti; want 0", w.jtiDup)
	}
	if len(w.badProofs) != 0 {
		t.Errorf("%d invalid_dpop_proof answers (first: %s); want 0", len(w.badProofs), w.badProofs[0])
	}
}

// TestColdStartRequiredNonce: C concurrent first requests to a resource
// server that requires a nonce cost at most C+1 requests on the wire: one
// goes first and is challenged, the others wait for its answer.
func TestColdStartRequiredNonce(t *testing.T) {
	for _, c := range []int{1, 8, 64, 128} {
		t.Run(fmt.Sprintf("C=%d", c), func(t *testing.T) {
			srv := newServer(t, &dpoptest.Config{RequireNonce: true})
			client, _ := loadClient(t, srv, c, nil)
			a := hammer(client, srv.URL+"/api/items", c, 1)
			if a.ok != c || len(a.other) != 0 {
				t.Fatalf("answers: %d ok, %d unanswered, other %v; want %d ok", a.ok, a.unanswered, a.other, c)
			}
			w := wireOf(t, srv, dpoptest.KindResource)
			checkFresh(t, w)
			if w.requests > c+1 {
				t.Errorf("requests on the wire = %d (%d challenges) for %d answers; want at most %d", w.requests, w.challenges, c, c+1)
			}
			t.Logf("C=%d: %d requests on the wire, %d challenged", c, w.requests, w.challenges)
		})
	}
}

// TestColdStartNoNonce: against a server that needs no nonce, C concurrent
// first requests cost exactly C requests, and once the first answer is in
// the cache knows the origin, so later requests do not wait.
func TestColdStartNoNonce(t *testing.T) {
	for _, c := range []int{1, 8, 64, 128} {
		t.Run(fmt.Sprintf("C=%d", c), func(t *testing.T) {
			srv := newServer(t, nil)
			client, nonces := loadClient(t, srv, c, nil)
			a := hammer(client, srv.URL+"/api/items", c, 1)
			if a.ok != c || len(a.other) != 0 {
				t.Fatalf("answers: %d ok, other %v; want %d ok", a.ok, a.other, c)
			}
			w := wireOf(t, srv, dpoptest.KindResource)
			checkFresh(t, w)
			if w.requests != c {
				t.Errorf("requests on the wire = %d; want %d", w.requests, c)
			}
			// The origin is known ("needs no nonce"): a later request
			// neither probes nor waits.
			if got := nonces.Len(); got != 1 {
				t.Errorf("nonce cache knows %d origins after the first answer; want 1", got)
			}
			if got := nonces.Get(srv.URL); got != "" {
				t.Errorf("nonce for %s = %q; want none", srv.URL, got)
			}
		})
	}
}

// TestColdStartTokenEndpoint: the authorization server side. C goroutines
// asking ClientCredentials for tokens at once share its nonce cache, and
// cost at most C+1 token requests; C goroutines calling the API through
// its client cause one token request and its challenge.
func TestColdStartTokenEndpoint(t *testing.T) {
	for _, c := range []int{8, 64} {
		t.Run(fmt.Sprintf("Token/C=%d", c), func(t *testing.T) {
			srv := newServer(t, &dpoptest.Config{RequireNonce: true})
			cc := &dpop.ClientCredentials{
				OAuth2: &clientcredentials.Config{ClientID: "backend", ClientSecret: "backend-secret", TokenURL: srv.Endpoint().TokenURL},
				Signer: newSigner(t),
			}
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c}})
			start := make(chan struct{})
			errs := make(chan error, c)
			for range c {
				go func() {
					<-start
					_, err := cc.Token(ctx)
					errs <- err
				}()
			}
			close(start)
			for range c {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			w := wireOf(t, srv, dpoptest.KindToken)
			checkFresh(t, w)
			if w.ok != c || w.requests > c+1 {
				t.Errorf("token requests on the wire = %d (%d ok, %d challenged); want %d ok and at most %d", w.requests, w.ok, w.challenges, c, c+1)
			}
		})
		t.Run(fmt.Sprintf("Client/C=%d", c), func(t *testing.T) {
			srv := newServer(t, &dpoptest.Config{RequireNonce: true})
			cc := &dpop.ClientCredentials{
				OAuth2: &clientcredentials.Config{ClientID: "backend", ClientSecret: "backend-secret", TokenURL: srv.Endpoint().TokenURL},
				Signer: newSigner(t),
			}
			base := &http.Transport{MaxIdleConnsPerHost: c}
			t.Cleanup(base.CloseIdleConnections)
			client := cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: base}))
			a := hammer(client, srv.URL+"/api/items", c, 1)
			if a.ok != c || len(a.other) != 0 {
				t.Fatalf("answers: %d ok, %d unanswered, other %v; want %d ok", a.ok, a.unanswered, a.other, c)
			}
			tw, rw := wireOf(t, srv, dpoptest.KindToken), wireOf(t, srv, dpoptest.KindResource)
			checkFresh(t, tw)
			checkFresh(t, rw)
			if tw.requests != 2 || tw.ok != 1 {
				t.Errorf("token requests = %d (%d ok); want 2 (a challenge and one token)", tw.requests, tw.ok)
			}
			if rw.requests > c+1 {
				t.Errorf("resource requests = %d; want at most %d", rw.requests, c+1)
			}
		})
	}
}
