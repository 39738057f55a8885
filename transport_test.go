package dpop_test

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"golang.org/x/oauth2"
)

// TestTransportNowSetsIAT: the Transport's clock is the proofs' iat.
func TestTransportNowSetsIAT(t *testing.T) {
	srv := newServer(t, nil)
	client, _ := loadClient(t, srv, 1, nil)
	at := time.Now().Add(-42 * time.Second).Truncate(time.Second)
	client.Transport.(*dpop.Transport).Now = func() time.Time { return at }
	get(t, client, srv.URL+"/api/items")
	rs := srv.Requests()
	if len(rs) != 1 || rs[0].Proof == nil {
		t.Fatalf("records %+v; want one request with a valid proof", rs)
	}
	if got := rs[0].Proof.IAT; !got.Equal(at) {
		t.Errorf("iat = %v; want the Transport's clock, %v", got, at)
	}
}

// TestRedirectBetweenZones: two IPv6 link-local addresses in different
// zones are different servers, so a redirect from one to the other does
// not carry the access token. The Base records requests
// instead of dialing link-local addresses.
func TestRedirectBetweenZones(t *testing.T) {
	var mu sync.Mutex
	var seen []*http.Request
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		resp := &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}
		if r.URL.Path == "/start" {
			resp.StatusCode = http.StatusTemporaryRedirect
			resp.Header.Set("Location", "http://[fe80::1%25b]:8080/next")
		}
		return resp, nil
	})
	hc := &http.Client{Transport: &dpop.Transport{
		Base:   base,
		Signer: newSigner(t),
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessSecret, TokenType: "DPoP"}),
	}}
	resp, err := hc.Get("http://[fe80::1%25a]:8080/start")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(seen) != 2 {
		t.Fatalf("Base saw %d requests; want 2", len(seen))
	}
	if got := seen[0].Header.Get("Authorization"); got != "DPoP "+accessSecret {
		t.Errorf("first hop Authorization = %q; want the token", got)
	}
	if got := seen[1].Header.Get("Authorization"); got != "" {
		t.Errorf("hop to another zone carries Authorization %q; want none", got)
	}
}

// TestTransportZeroSigner: a Transport whose Signer was not made by
// NewSigner returns an error naming the Signer, and sends nothing.
func TestTransportZeroSigner(t *testing.T) {
	var sent int
	hc := &http.Client{Transport: &dpop.Transport{Signer: new(dpop.Signer), Base: roundTripFunc(func(*http.Request) (*http.Response, error) {
		sent++
		return nil, errors.New("Base must not be called")
	})}}
	var err error
	if p := noPanic(func() { _, err = hc.Get("https://rs.example/") }); p != nil {
		t.Fatalf("panic: %v", p)
	}
	if err == nil || !strings.Contains(err.Error(), "Signer") || sent != 0 {
		t.Errorf("err = %v after %d requests; want an error naming Signer after none", err, sent)
	}
}
