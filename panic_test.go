package dpop

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// recovered runs f and returns what it panicked with.
func recovered(f func()) (r any) {
	defer func() { r = recover() }()
	f()
	return nil
}

type panicBase struct{}

func (panicBase) RoundTrip(*http.Request) (*http.Response, error) { panic("base broke") }

// TestProbeReleasedOnPanic: the first request to an origin panics in its
// Base; the panic reaches the caller, and the origin's turn is released,
// so later requests do not wait for it.
func TestProbeReleasedOnPanic(t *testing.T) {
	nonces := new(NonceCache)
	tr := &Transport{Base: panicBase{}, Signer: newTestSigner(t, algEdDSA), Nonces: nonces}
	req, _ := http.NewRequest("GET", "https://api.example.com/x", nil)
	if r := recovered(func() { tr.RoundTrip(req) }); r != "base broke" {
		t.Fatalf("recovered %v; want the Base's panic", r)
	}
	nonces.mu.Lock()
	n := len(nonces.probes)
	nonces.mu.Unlock()
	if n != 0 {
		t.Errorf("%d origins still held by a first request; want 0", n)
	}
}

// TestTokenFetchPanic: a token request that panics passes the panic to the
// caller's goroutine, and does not leave later callers waiting for it.
func TestTokenFetchPanic(t *testing.T) {
	calls := 0
	s := newReuseSource(context.Background(), nil, func(context.Context, *oauth2.Token) (*oauth2.Token, error) {
		calls++
		if calls == 1 {
			panic("fetch broke")
		}
		return &oauth2.Token{AccessToken: "second", TokenType: "DPoP"}, nil
	}, func(*oauth2.Token) bool { return true })
	if r := recovered(func() { s.Token() }); r != "fetch broke" {
		t.Fatalf("recovered %v; want the fetch's panic", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := s.TokenContext(ctx)
	if err != nil || tok.AccessToken != "second" {
		t.Errorf("after the panic: %v, %v; want a new token request", tok, err)
	}
}

type panicSource struct{}

func (panicSource) Token() (*oauth2.Token, error) { panic("source broke") }

// TestPlainSourcePanic: a plain oauth2.TokenSource waited for in a
// goroutine (the request's context can end) panics on the caller's
// goroutine, where a synchronous call would have.
func TestPlainSourcePanic(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if r := recovered(func() { sourceToken(ctx, panicSource{}) }); r != "source broke" {
		t.Errorf("recovered %v; want the source's panic", r)
	}
}

// countingBody counts its reads; it is not safe for concurrent use, as
// bodies of a user's Base may not be.
type countingBody struct {
	r      io.Reader
	reads  int
	closed int
}

func (b *countingBody) Read(p []byte) (int, error) { b.reads++; return b.r.Read(p) }
func (b *countingBody) Close() error               { b.closed++; return nil }

// TestDrainClose: a challenge's body of known small length is read to its
// end; one larger than maxDrain is closed unread; each is closed once.
func TestDrainClose(t *testing.T) {
	for _, tt := range []struct {
		name      string
		length    int64
		size      int
		wantReads bool
	}{
		{"small", 100, 100, true},
		{"unknown length", -1, 100, true},
		{"empty", 0, 0, false},
		{"large", maxDrain + 1, maxDrain + 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := &countingBody{r: strings.NewReader(strings.Repeat("x", tt.size))}
			drainClose(&http.Response{ContentLength: tt.length, Body: b})
			if (b.reads > 0) != tt.wantReads || b.closed != 1 {
				t.Errorf("%d reads, closed %d times; want reads %t, closed once", b.reads, b.closed, tt.wantReads)
			}
		})
	}
}

// TestPeekOnlyJSON: a 400 whose Content-Type is not JSON is not read to
// find a DPoP error code (RFC 6749 §5.2 error bodies are JSON).
func TestPeekOnlyJSON(t *testing.T) {
	for _, tt := range []struct {
		ct   string
		want bool
	}{
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"application/problem+json", true},
		{"", true},
		{"text/html", false},
		{"text/plain", false},
		{"application/json; bad=", false},
	} {
		body := &countingBody{r: strings.NewReader(`{"error":"use_dpop_nonce"}`)}
		resp := &http.Response{StatusCode: 400, Header: http.Header{"Dpop-Nonce": {"n1"}}, Body: body}
		if tt.ct != "" {
			resp.Header.Set("Content-Type", tt.ct)
		}
		ce := responseError(resp)
		if got := ce != nil; got != tt.want {
			t.Errorf("Content-Type %q: challenge found %t; want %t", tt.ct, got, tt.want)
		}
		if !tt.want && body.reads != 0 {
			t.Errorf("Content-Type %q: body read %d times; want 0", tt.ct, body.reads)
		}
	}
}
