package dpop_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// The cold-start tests count, from dpoptest's request records and never
// by timing, how many requests go on the wire per answer while the nonce
// cache knows nothing of an origin, and check that every attempt is a new
// proof.

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
