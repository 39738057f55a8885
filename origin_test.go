package dpop_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/dpopkit/dpop"
	jose "github.com/go-jose/go-jose/v4"
)

// TestHTUNeverNamesAnotherHost: a request whose URL path does not start
// with "/" (which would make the htu "https://example.com.evil.com/x") is
// refused before anything is sent; Signer.Proof refuses the URLs that parse
// to such a path (issue 10 #11).
func TestHTUNeverNamesAnotherHost(t *testing.T) {
	s := newSigner(t)
	sent := 0
	hc := &http.Client{Transport: &dpop.Transport{Signer: s, Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent++
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})}}
	for _, u := range []*url.URL{
		{Scheme: "https", Host: "example.com", Path: ".evil.com/x"},
		{Scheme: "https", Host: "example.com", Path: "@evil.com/x"},
		{Scheme: "https", Host: "example.com", RawPath: ".evil.com/x", Path: ".evil.com/x"},
	} {
		req := &http.Request{Method: "GET", URL: u, Header: http.Header{}}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Errorf("request to %#v sent", u)
		}
	}
	if sent != 0 {
		t.Errorf("Base received %d requests; want 0", sent)
	}
	for _, raw := range []string{"https:.evil.com/x", "//example.com.evil.com/x", "example.com.evil.com/x"} {
		if p, err := s.Proof("GET", raw, nil); err == nil {
			t.Errorf("Proof(%q) = %s; want an error", raw, p)
		}
	}
}

// TestHTUInternationalHost: a request to an internationalized host name
// carries the htu net/http puts on the wire, the punycode form, as the
// server sees it in its Host header; the proof verifies with go-jose
// (issue 10 #11). A dialer sends every connection to the test server.
func TestHTUInternationalHost(t *testing.T) {
	var seen struct {
		sync.Mutex
		host, proof string
	}
	srv := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		seen.Lock()
		seen.host, seen.proof = r.Host, r.Header.Get("DPoP")
		seen.Unlock()
	})
	addr := srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	base := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return new(net.Dialer).DialContext(ctx, network, addr)
	}}
	defer base.CloseIdleConnections()
	hc := &http.Client{Transport: &dpop.Transport{Signer: newSigner(t), Base: base}}
	resp, err := hc.Get("http://bücher.example:" + port + "/caf%C3%A9?q=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	seen.Lock()
	defer seen.Unlock()
	if want := "xn--bcher-kva.example:" + port; seen.host != want {
		t.Fatalf("server saw Host %q; want %q", seen.host, want)
	}
	jws, err := jose.ParseSigned(seen.proof, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	jwk := jws.Signatures[0].Protected.JSONWebKey
	if jwk == nil {
		t.Fatal("proof has no jwk")
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		t.Fatalf("go-jose: %v", err)
	}
	var c struct {
		HTU string `json:"htu"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if want := "http://" + seen.host + "/caf%C3%A9"; c.HTU != want {
		t.Errorf("htu = %q; want %q", c.HTU, want)
	}
	if strings.Contains(c.HTU, "ü") {
		t.Errorf("htu %q names the host in Unicode", c.HTU)
	}
}

// TestEmptyHostRefused: a URL whose host is only a port names no server:
// Proof and Discover refuse it (found by FuzzDiscover: a token_endpoint
// "https://:" was accepted).
func TestEmptyHostRefused(t *testing.T) {
	s := newSigner(t)
	for _, raw := range []string{"https://:", "https://:443/x", "http://[]:80/"} {
		if p, err := s.Proof("GET", raw, nil); err == nil {
			t.Errorf("Proof(%q) = %s; want an error", raw, p)
		}
	}
}
