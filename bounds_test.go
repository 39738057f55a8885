package dpop_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// maxWait bounds how long a test waits for a call that must return at a
// deadline far shorter; reaching it is a failure, not a measurement.
const maxWait = 10 * time.Second

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
// the server is released (issue 10 #6).
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

// trickle writes body one byte every 20 ms, until it is written, the
// client goes away or done is closed.
func trickle(w http.ResponseWriter, r *http.Request, body []byte, done <-chan struct{}) {
	f := w.(http.Flusher)
	for i := range body {
		if _, err := w.Write(body[i : i+1]); err != nil {
			return
		}
		f.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-done:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestSlowBodyDoesNotStall: a 401 nonce challenge whose 64 KiB body
// trickles in (which would take 20 minutes) is answered at once; a 400
// use_dpop_nonce whose JSON trickles is handed back unanswered, without
// waiting for its body, and its body reads whole, byte for byte (issue 10
// #7).
func TestSlowBodyDoesNotStall(t *testing.T) {
	t.Run("401", func(t *testing.T) {
		done := make(chan struct{})
		var n atomic.Int32
		rs := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", algs="ES256"`)
				w.Header().Set("DPoP-Nonce", "n1")
				w.WriteHeader(http.StatusUnauthorized)
				trickle(w, r, bytes.Repeat([]byte("x"), 64<<10), done)
				return
			}
			io.WriteString(w, "ok")
		})
		t.Cleanup(func() { close(done) })
		hc := &http.Client{Transport: &dpop.Transport{Signer: newSigner(t)}}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", rs.URL+"/api", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("request with a 3 s deadline: %v; want the retry's answer", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" || err != nil {
			t.Errorf("answer %d %q, %v; want 200 \"ok\"", resp.StatusCode, body, err)
		}
		if got := n.Load(); got != 2 {
			t.Errorf("%d requests; want 2", got)
		}
	})
	t.Run("400", func(t *testing.T) {
		done := make(chan struct{})
		want := []byte(`{"error":"use_dpop_nonce","error_description":"` + strings.Repeat("slow ", 20) + `"}`)
		var n atomic.Int32
		as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("DPoP-Nonce", "n1")
			w.WriteHeader(http.StatusBadRequest)
			trickle(w, r, want, done)
		})
		t.Cleanup(func() { close(done) })
		hc := &http.Client{Transport: &dpop.Transport{Signer: newSigner(t)}}
		// The body takes about 2.5 s to arrive; a client that waits for it
		// before it answers the challenge (or before it returns) takes
		// twice that.
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", as.URL+"/token", strings.NewReader("grant_type=x"))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("request with a 4 s deadline: %v; want the 400", err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !bytes.Equal(got, want) || err != nil {
			t.Errorf("answer %d %q, %v; want 400 %q", resp.StatusCode, got, err, want)
		}
		if got := n.Load(); got != 1 {
			t.Errorf("%d requests; want 1 (not answered: its body did not come in time)", got)
		}
	})
}

// TestNegativeExpiresIn: a negative expires_in is refused as a JSON
// number, a JSON string and a form value (issue 10 #8).
func TestNegativeExpiresIn(t *testing.T) {
	tests := []struct{ name, contentType, body string }{
		{"JSON number", "application/json", `{"access_token":"a","token_type":"DPoP","expires_in":-5}`},
		{"JSON string", "application/json", `{"access_token":"a","token_type":"DPoP","expires_in":"-5"}`},
		{"form", "application/x-www-form-urlencoded", `access_token=a&token_type=DPoP&expires_in=-5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				io.WriteString(w, tt.body)
			})
			cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: as.URL}}, Signer: newSigner(t)}
			tok, err := cfg.Exchange(context.Background(), "code")
			if err == nil || !strings.Contains(err.Error(), "expires_in") {
				t.Errorf("Exchange = %v, %v; want an error about expires_in", tok, err)
			}
		})
	}
}

// TestShortLivedTokenNoRefreshLoop: a server whose tokens live 1 second
// (or 0, or "1") is asked for a token once or twice over 20 calls, not
// once a call (issue 10 #8).
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

// TestHugeTokenBodyReleased: a token-side answer larger than the SDK reads
// has its body closed, for every grant (x/oauth2's device authorization
// never closes it): the server writing it is not blocked for ever.
func TestHugeTokenBodyReleased(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusBadRequest} {
		handlerDone := make(chan struct{}, 1)
		as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
			defer func() { handlerDone <- struct{}{} }()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			chunk := bytes.Repeat([]byte(" "), 32<<10)
			for i := 0; i < 2048; i++ { // 64 MiB, far more than socket buffers hold
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		})
		t.Cleanup(as.CloseClientConnections) // before Close, or a leaked body would hold it for ever
		for _, op := range tokenOps(t, as.URL, oauth2.AuthStyleInHeader) {
			t.Run(strconv.Itoa(status)+"/"+op.name, func(t *testing.T) {
				if err := op.call(context.Background()); err == nil {
					t.Error("no error")
				}
				select {
				case <-handlerDone:
				case <-time.After(maxWait):
					t.Fatalf("the server is still writing %v after the call returned: the body was not closed", maxWait)
				}
			})
		}
	}
}

// TestEveryRequestEndsWithContext sends every request of every grant to
// a server that never answers, each with a 300 ms deadline: each returns
// context.DeadlineExceeded within maxWait. (Config.DeviceAuth did not:
// x/oauth2 builds that request without the context.)
func TestEveryRequestEndsWithContext(t *testing.T) {
	stall := make(chan struct{})
	as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(stall) }) // before the server closes
	s := newSigner(t)
	cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{AuthURL: as.URL + "/auth",
		TokenURL: as.URL + "/token", DeviceAuthURL: as.URL + "/device"}}, Signer: s, PARURL: as.URL + "/par", RevocationURL: as.URL + "/revoke"}
	cc := &dpop.ClientCredentials{OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: as.URL + "/token"}, Signer: s}
	expired := &oauth2.Token{AccessToken: "old", TokenType: "DPoP", RefreshToken: "rt", Expiry: time.Now().Add(-time.Hour)}
	for _, tt := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Exchange", func(ctx context.Context) error { _, err := cfg.Exchange(ctx, "code"); return err }},
		{"refresh", func(ctx context.Context) error { _, err := cfg.TokenSource(ctx, expired).Token(); return err }},
		{"PushAuthCodeURL", func(ctx context.Context) error { _, err := cfg.PushAuthCodeURL(ctx, "st"); return err }},
		{"DeviceAuth", func(ctx context.Context) error { _, err := cfg.DeviceAuth(ctx); return err }},
		{"DeviceAccessToken", func(ctx context.Context) error {
			_, err := cfg.DeviceAccessToken(ctx, &oauth2.DeviceAuthResponse{DeviceCode: "dc", Interval: 1, Expiry: time.Now().Add(time.Minute)})
			return err
		}},
		{"Revoke", func(ctx context.Context) error { return cfg.Revoke(ctx, "rt", "") }},
		{"ClientCredentials.Token", func(ctx context.Context) error { _, err := cc.Token(ctx); return err }},
		{"Discover", func(ctx context.Context) error { _, err := dpop.Discover(ctx, as.URL); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			timeout := 300 * time.Millisecond
			if tt.name == "DeviceAccessToken" {
				timeout += time.Second // the first poll waits the interval
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- tt.call(ctx) }()
			select {
			case err := <-errc:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v; want context.DeadlineExceeded", err)
				}
			case <-time.After(maxWait):
				t.Fatalf("did not return within %v of its deadline", maxWait)
			}
		})
	}
}
