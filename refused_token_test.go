package dpop_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"github.com/dpopkit/dpop/keystore"
	"golang.org/x/oauth2"
)

// refreshes counts the token requests with grant_type=refresh_token that
// got a token.
func refreshes(srv *dpoptest.Server) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Kind == dpoptest.KindToken && r.GrantType == "refresh_token" && r.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// loggedIn logs "cli" in at srv and returns its Config and token.
func loggedIn(t *testing.T, srv *dpoptest.Server) (*dpop.Config, *oauth2.Token) {
	t.Helper()
	cfg := publicConfig(srv, newSigner(t))
	tok, err := login(t, cfg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("login gave no refresh token")
	}
	srv.ResetRequests()
	return cfg, tok
}

// TestRefusedTokenReplaced: a token the server revoked is answered with
// 401 invalid_token; the Transport has its Source refresh it once and
// sends the request once more with the new token, and 64 goroutines that
// all meet the refusal cause one refresh between them.
func TestRefusedTokenReplaced(t *testing.T) {
	for _, c := range []int{1, 64} {
		t.Run(fmt.Sprintf("C=%d", c), func(t *testing.T) {
			srv := newServer(t, &dpoptest.Config{RequireNonce: true})
			cfg, tok := loggedIn(t, srv)
			base := &http.Transport{MaxIdleConnsPerHost: c}
			t.Cleanup(base.CloseIdleConnections)
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: base})
			client := cfg.Client(ctx, tok)
			get(t, client, srv.URL+"/api/items") // learn the resource server's nonce
			srv.Revoke(tok.AccessToken)
			srv.ResetRequests()

			a := hammer(client, srv.URL+"/api/items", c, 1)
			if a.ok != c || len(a.other) != 0 {
				t.Fatalf("answers: %d ok, other %v; want %d ok", a.ok, a.other, c)
			}
			if n := refreshes(srv); n != 1 {
				t.Errorf("refreshes = %d; want 1", n)
			}
			w := wireOf(t, srv, dpoptest.KindResource)
			checkFresh(t, w)
			refused := count(srv, dpoptest.KindResource, dpop.CodeInvalidToken)
			if refused < 1 || refused > c || w.requests != c+refused {
				t.Errorf("resource requests = %d with %d invalid_token; want %d and one retry for each refusal", w.requests, refused, c)
			}
		})
	}
}

// TestRefusedTokenNotReplaced: a refused token is replaced at most once per
// request, never for a body that cannot be sent again, and never when the
// source has no refresh token.
func TestRefusedTokenNotReplaced(t *testing.T) {
	t.Run("refused again", func(t *testing.T) {
		// The resource server is another server's: it refuses every token.
		srv := newServer(t, nil)
		rs := newServer(t, nil)
		cfg, tok := loggedIn(t, srv)
		client := cfg.Client(context.Background(), tok)
		for i := range 3 {
			if resp := get(t, client, rs.URL+"/api/items"); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("request %d: status %d; want 401", i, resp.StatusCode)
			}
		}
		if n, m := refreshes(srv), count(rs, dpoptest.KindResource, dpop.CodeInvalidToken); n != 3 || m != 6 {
			t.Errorf("refreshes = %d, refusals = %d; want 3 and 6 (one refresh and one retry per request)", n, m)
		}
	})
	t.Run("one-shot body", func(t *testing.T) {
		srv := newServer(t, nil)
		cfg, tok := loggedIn(t, srv)
		client := cfg.Client(context.Background(), tok)
		srv.Revoke(tok.AccessToken)
		req, _ := http.NewRequest("POST", srv.URL+"/api/items", oneShot{strings.NewReader("payload")})
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d; want 401", resp.StatusCode)
		}
		if n, m := refreshes(srv), count(srv, dpoptest.KindResource, dpop.CodeInvalidToken); n != 0 || m != 1 {
			t.Errorf("refreshes = %d, refusals = %d; want 0 and 1", n, m)
		}
	})
	t.Run("no refresh token", func(t *testing.T) {
		srv := newServer(t, nil)
		cfg, tok := loggedIn(t, srv)
		tok.RefreshToken = ""
		client := cfg.Client(context.Background(), tok)
		srv.Revoke(tok.AccessToken)
		resp := get(t, client, srv.URL+"/api/items")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d; want 401", resp.StatusCode)
		}
		err := dpop.CheckResponse(resp)
		if ce, ok := err.(*dpop.ChallengeError); !ok || ce.ErrorCode != dpop.CodeInvalidToken {
			t.Errorf("CheckResponse = %v; want invalid_token", err)
		}
		if n, m := count(srv, dpoptest.KindToken, ""), count(srv, dpoptest.KindResource, dpop.CodeInvalidToken); n != 0 || m != 1 {
			t.Errorf("token requests = %d, refusals = %d; want 0 and 1", n, m)
		}
	})
}

// TestRefusedTokenSaved: with keystore.SavingTokenSource around the Config's
// source, the token that replaces a refused one is saved, with its
// rotated refresh token.
func TestRefusedTokenSaved(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true})
	cfg, tok := loggedIn(t, srv)
	store := new(keystore.MemoryStore)
	jkt := cfg.Signer.Thumbprint()
	ctx := context.Background()
	src := keystore.SavingTokenSource(store, "alice", jkt, cfg.TokenSource(ctx, tok))
	client := &http.Client{Transport: &dpop.Transport{Signer: cfg.Signer, Source: src}}
	get(t, client, srv.URL+"/api/items")
	for i := range 3 {
		saved, err := keystore.LoadToken(store, "alice", jkt)
		if err != nil {
			t.Fatal(err)
		}
		srv.Revoke(saved.AccessToken)
		if resp := get(t, client, srv.URL+"/api/items"); resp.StatusCode != 200 {
			t.Fatalf("round %d: status %d %s; want 200", i, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		now, err := keystore.LoadToken(store, "alice", jkt)
		if err != nil {
			t.Fatal(err)
		}
		if now.AccessToken == saved.AccessToken || now.RefreshToken == saved.RefreshToken {
			t.Errorf("round %d: the saved token was not replaced by the refreshed one", i)
		}
	}
	if n := refreshes(srv); n != 3 {
		t.Errorf("refreshes = %d; want 3", n)
	}
}
