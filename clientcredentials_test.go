package dpop_test

import (
	"context"
	"testing"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"golang.org/x/oauth2/clientcredentials"
)

func TestClientCredentials(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true})
	s := newSigner(t)
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{ClientID: "backend", ClientSecret: "backend-secret", TokenURL: srv.Endpoint().TokenURL},
		Signer: s,
	}
	ctx := context.Background()
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "DPoP" || tok.Type() != "DPoP" {
		t.Errorf("token type %q; want DPoP", tok.TokenType)
	}
	if n := count(srv, "token", "use_dpop_nonce"); n != 1 {
		t.Errorf("%d nonce challenges at the token endpoint; want 1", n)
	}
	checkClientAuth(t, srv, dpoptest.ClientSecretBasic)

	c := cc.Client(ctx)
	for range 3 {
		if got := getAPI(t, c, srv.URL+"/api/items"); got.JKT != s.Thumbprint() {
			t.Errorf("resource server saw jkt %q; want %q", got.JKT, s.Thumbprint())
		}
	}
	// One challenge per server, not one per request: the authorization
	// server's nonce and the resource server's live in different caches
	// though they share an origin.
	if _, err := cc.Token(ctx); err != nil {
		t.Fatal(err)
	}
	if n, m := count(srv, "token", "use_dpop_nonce"), count(srv, "resource", "use_dpop_nonce"); n != 1 || m != 1 {
		t.Errorf("nonce challenges: token %d, resource %d; want 1 and 1", n, m)
	}
}
