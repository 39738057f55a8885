package dpoptest

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// proofTransport is a minimal test-only DPoP client made with go-jose: it
// signs a proof for every request and retries once on a nonce challenge.
type proofTransport struct {
	k *clientKey

	mu    sync.Mutex
	nonce string
}

func (p *proofTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		r := req.Clone(req.Context())
		if req.GetBody != nil {
			r.Body, _ = req.GetBody()
		}
		p.mu.Lock()
		n := p.nonce
		p.mu.Unlock()
		u := *req.URL
		u.RawQuery = ""
		r.Header.Set("DPoP", p.k.proof(req.Method, u.String(), withNonce(n)))
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		if nn := resp.Header.Get("DPoP-Nonce"); nn != "" {
			p.mu.Lock()
			p.nonce = nn
			p.mu.Unlock()
		}
		if attempt == 0 && resp.StatusCode == 400 && resp.Header.Get("DPoP-Nonce") != n {
			resp.Body.Close()
			continue
		}
		return resp, nil
	}
}

func TestWithOAuth2ClientCredentials(t *testing.T) {
	s := newTestServer(t, &Config{RequireNonce: true})
	k := newClientKey(t, "ES256")
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: &proofTransport{k: k}})
	cc := clientcredentials.Config{ClientID: "backend", ClientSecret: "backend-secret", TokenURL: s.Endpoint().TokenURL, AuthStyle: oauth2.AuthStyleInParams}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "DPoP" {
		t.Errorf("TokenType = %q; want DPoP", tok.TokenType)
	}
	recs := s.Requests()
	if len(recs) != 2 || recs[0].Error != "use_dpop_nonce" || recs[1].Status != 200 || recs[1].ClientAuth != ClientSecretPost {
		t.Errorf("records = %+v", recs)
	}
}

func TestWithOAuth2Device(t *testing.T) {
	if testing.Short() {
		t.Skip("polls for about a second")
	}
	s := newTestServer(t, nil)
	k := newClientKey(t, "EdDSA")
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: &proofTransport{k: k}})
	conf := &oauth2.Config{ClientID: "cli", Endpoint: s.Endpoint(), Scopes: []string{"read"}}
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		s.ApproveDevice(da.UserCode)
	}()
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "DPoP" || tok.RefreshToken == "" {
		t.Errorf("token = %+v", tok)
	}
	var poll Request
	for _, r := range s.Requests() {
		if r.GrantType == grantDeviceCode {
			poll = r
		}
	}
	// Raw x/oauth2 with AuthStyleInHeader sends a public client's id as
	// "Basic cli:"; the server accepts it and records it as basic.
	if poll.ClientAuth != ClientSecretBasic || poll.Status != 200 || !strings.HasPrefix(poll.Proof.Thumbprint, k.jkt[:5]) {
		t.Errorf("poll record = %+v", poll)
	}
}
