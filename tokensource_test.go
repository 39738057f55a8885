package dpop_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// blockingSource is an oauth2.TokenSource whose Token waits for stall.
type blockingSource struct{ stall <-chan struct{} }

func (b blockingSource) Token() (*oauth2.Token, error) {
	<-b.stall
	return &oauth2.Token{AccessToken: "late", TokenType: "DPoP"}, nil
}

// waitGoroutines waits, within maxWait, for the number of goroutines to
// come back to baseline.
func waitGoroutines(t *testing.T, baseline int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), maxWait)
	defer cancel()
	for runtime.NumGoroutine() > baseline {
		select {
		case <-ctx.Done():
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines; want at most %d as before the test:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestDeadlineBoundsTokenFetch: a request whose context ends in 300 ms
// returns context.DeadlineExceeded while the token endpoint stalls, for
// the clients of Config and ClientCredentials, for a plain Source that
// blocks, and for an http.Client with a Timeout; the token request still
// running finishes for the next request, and no goroutine is left once
// the server is released.
func TestDeadlineBoundsTokenFetch(t *testing.T) {
	tests := []struct {
		name    string
		timeout bool // http.Client.Timeout instead of a context deadline
		client  func(ctx context.Context, tokenURL string, s *dpop.Signer, stall <-chan struct{}) *http.Client
		fetches int // token requests the second call sees in all
	}{
		{"Config.Client", false, configClient, 1},
		{"ClientCredentials.Client", false, ccClient, 1},
		{"plain Source", false, func(ctx context.Context, _ string, s *dpop.Signer, stall <-chan struct{}) *http.Client {
			return &http.Client{Transport: &dpop.Transport{Signer: s, Source: blockingSource{stall}, Base: ctx.Value(oauth2.HTTPClient).(*http.Client).Transport}}
		}, 0},
		{"Client.Timeout", true, configClient, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			baseline := runtime.NumGoroutine()
			stall := make(chan struct{})
			var once sync.Once
			release := func() { once.Do(func() { close(stall) }) }
			var fetches atomic.Int32
			as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/token" {
					fetches.Add(1)
					<-stall
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, `{"access_token":"fresh","token_type":"DPoP","expires_in":3600}`)
					return
				}
				io.WriteString(w, "api")
			})
			t.Cleanup(release) // before the server closes
			base := &http.Transport{}
			hc := tt.client(withClient(&http.Client{Transport: base}), as.URL+"/token", newSigner(t), stall)

			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if tt.timeout {
				hc.Timeout = 300 * time.Millisecond
				ctx = context.Background()
			}
			errc := make(chan error, 1)
			go func() {
				req, _ := http.NewRequestWithContext(ctx, "GET", as.URL+"/api", nil)
				resp, err := hc.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				errc <- err
			}()
			select {
			case err := <-errc:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v; want context.DeadlineExceeded", err)
				}
			case <-time.After(maxWait):
				t.Fatalf("the request did not return within %v of its 300 ms deadline", maxWait)
			}

			release()
			hc.Timeout = 0
			ctx2, cancel2 := context.WithTimeout(context.Background(), maxWait)
			defer cancel2()
			req, _ := http.NewRequestWithContext(ctx2, "GET", as.URL+"/api", nil)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("after the release: %v", err)
			}
			resp.Body.Close()
			if got := int(fetches.Load()); got != tt.fetches {
				t.Errorf("%d token requests; want %d (the stalled one, finished for the next caller)", got, tt.fetches)
			}
			as.Close()
			base.CloseIdleConnections()
			waitGoroutines(t, baseline)
		})
	}
}

func configClient(ctx context.Context, tokenURL string, s *dpop.Signer, _ <-chan struct{}) *http.Client {
	cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: tokenURL}}, Signer: s}
	return cfg.Client(ctx, &oauth2.Token{AccessToken: "old", RefreshToken: "r", TokenType: "DPoP", Expiry: time.Now().Add(-time.Hour)})
}

func ccClient(ctx context.Context, tokenURL string, s *dpop.Signer, _ <-chan struct{}) *http.Client {
	cc := &dpop.ClientCredentials{OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: tokenURL}, Signer: s}
	return cc.Client(ctx)
}

// TestShortLivedTokenNoRefreshLoop: a server whose tokens live 1 second
// (or 0, or "1") is asked for a token once or twice over 20 calls, not
// once a call.
func TestShortLivedTokenNoRefreshLoop(t *testing.T) {
	for _, expiresIn := range []string{`1`, `0`, `"1"`} {
		var n atomic.Int32
		as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":"a","refresh_token":"r","token_type":"DPoP","expires_in":`+expiresIn+`}`)
		})
		s := newSigner(t)
		cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: as.URL}}, Signer: s}
		cc := &dpop.ClientCredentials{OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: as.URL}, Signer: s}
		expired := &oauth2.Token{AccessToken: "old", RefreshToken: "r", Expiry: time.Now().Add(-time.Hour)}
		for name, src := range map[string]oauth2.TokenSource{
			"Config":            cfg.TokenSource(context.Background(), expired),
			"ClientCredentials": cc.TokenSource(context.Background()),
		} {
			t.Run(name+"/"+expiresIn, func(t *testing.T) {
				before := n.Load()
				for i := 0; i < 20; i++ {
					if _, err := src.Token(); err != nil {
						t.Fatal(err)
					}
				}
				if got := n.Load() - before; got > 2 {
					t.Errorf("%d token requests for 20 Token calls; want 1 or 2", got)
				}
			})
		}
	}
}

// TestTokenSourceRefreshTokenOnly: a stored token with a refresh token
// and no access token is a valid start, as for x/oauth2: the source
// refreshes it instead of handing out an empty access token.
func TestTokenSourceRefreshTokenOnly(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true})
	cfg, tok := loggedIn(t, srv)
	ctx := context.Background()
	got, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || got.AccessToken == "" || refreshes(srv) != 1 {
		t.Fatalf("Token = %v, %v after %d refreshes; want a refreshed token after 1", got, err, refreshes(srv))
	}
	res := getAPI(t, cfg.Client(ctx, &oauth2.Token{RefreshToken: got.RefreshToken}), srv.URL+"/api/me")
	if res.Subject != "alice" || refreshes(srv) != 2 {
		t.Errorf("API saw %+v after %d refreshes; want alice after 2", res, refreshes(srv))
	}
}

// waitCounter is a request context that counts, once, the first time a
// caller waits on it: a token source's TokenContext selects on Done only
// when it has to wait for a token request.
type waitCounter struct {
	context.Context
	once    sync.Once
	waiting *atomic.Int32
	all     chan struct{} // closed when the count reaches want
	want    int32
}

func (c *waitCounter) Done() <-chan struct{} {
	c.once.Do(func() {
		if c.waiting.Add(1) == c.want {
			close(c.all)
		}
	})
	return c.Context.Done()
}

// TestRefreshFailsOnce: 64 requests meet an expired token, all wait for
// one refresh, and the token endpoint answers that one 503. The source
// tries once more for all of them (x/oauth2's reuse source lets the next
// caller try again), and every request succeeds after two token requests.
// A second failure, or a refusal that is final (invalid_grant), is every
// waiter's answer: never more than one more token request.
func TestRefreshFailsOnce(t *testing.T) {
	const n = 64
	for _, tt := range []struct {
		name       string
		failures   []int // statuses of the token endpoint's first answers
		wantTokens int   // token requests
		wantOK     bool  // whether the API requests succeed
	}{
		{"one 503", []int{503}, 2, true},
		{"one 429", []int{429}, 2, true},
		{"two 503", []int{503, 503}, 2, false},
		{"invalid_grant", []int{400}, 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var waiting atomic.Int32
			all := make(chan struct{})
			var tokenRequests, apiOK atomic.Int32
			as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/token" {
					if r.Header.Get("Authorization") != "DPoP fresh" {
						w.WriteHeader(http.StatusUnauthorized)
						return
					}
					apiOK.Add(1)
					io.WriteString(w, "ok")
					return
				}
				i := int(tokenRequests.Add(1)) - 1
				if i == 0 {
					select { // hold the first refresh until every request waits for it
					case <-all:
					case <-time.After(maxWait):
						t.Errorf("only %d of %d requests waited for the refresh", waiting.Load(), n)
					}
				}
				w.Header().Set("Content-Type", "application/json")
				if i < len(tt.failures) {
					w.WriteHeader(tt.failures[i])
					if tt.failures[i] == 400 {
						io.WriteString(w, `{"error":"invalid_grant"}`)
					}
					return
				}
				json.NewEncoder(w).Encode(map[string]any{"access_token": "fresh", "token_type": "DPoP", "expires_in": 3600})
			})
			base := &http.Transport{MaxIdleConnsPerHost: n}
			t.Cleanup(base.CloseIdleConnections)
			ctx := withClient(&http.Client{Transport: base})
			cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: as.URL + "/token"}}, Signer: newSigner(t)}
			client := cfg.Client(ctx, &oauth2.Token{AccessToken: "old", TokenType: "DPoP", RefreshToken: "rt", Expiry: time.Now().Add(-time.Minute)})

			errs := make(chan error, n)
			var wg sync.WaitGroup
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rctx := &waitCounter{Context: context.Background(), waiting: &waiting, all: all, want: n}
					req, _ := http.NewRequestWithContext(rctx, "GET", as.URL+"/api", nil)
					resp, err := client.Do(req)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("status %d", resp.StatusCode)
						}
					}
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			failed := 0
			var first error
			for err := range errs {
				if err != nil {
					failed++
					if first == nil {
						first = err
					}
				}
			}
			if tt.wantOK && failed != 0 {
				t.Errorf("%d of %d requests failed (first: %v); want none", failed, n, first)
			}
			if !tt.wantOK {
				var te *dpop.TokenError
				if failed != n || !errors.As(first, &te) {
					t.Errorf("%d of %d requests failed (first: %v); want all, with the token endpoint's error", failed, n, first)
				}
			}
			if got := int(tokenRequests.Load()); got != tt.wantTokens {
				t.Errorf("%d token requests; want %d", got, tt.wantTokens)
			}
		})
	}
}
