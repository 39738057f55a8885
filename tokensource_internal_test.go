package dpop

import (
	"context"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

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
