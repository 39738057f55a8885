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
	"github.com/dpopkit/dpop/internal/htu"
	jose "github.com/go-jose/go-jose/v4"
)

// TestHTUNeverNamesAnotherHost: a request whose URL path does not start
// with "/" (which would make the htu "https://example.com.evil.com/x") is
// refused before anything is sent; Signer.Proof refuses the URLs that parse
// to such a path.
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
// server sees it in its Host header; the proof verifies with go-jose.
// A dialer sends every connection to the test server.
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

// proofHTU returns the htu claim of proof, after go-jose verified it with
// its own jwk: the client's proofs are checked by a verifier that shares no
// code with it.
func proofHTU(t testing.TB, proof string) string {
	t.Helper()
	jws, err := jose.ParseSigned(proof, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("go-jose: %v", err)
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
	return c.HTU
}

// checkHTUAgrees checks the htu the client made for a request to rawURL
// against internal/htu, the normalisation the resource server and dpoptest
// compare with (RFC 9449 §4.3 point 9):
//   - the scheme and authority the client writes (its own normalisation:
//     case, default and empty port, IDNA, userinfo dropped) are a fixed
//     point of htu.Normalize;
//   - the path is the one net/http puts on the wire, unchanged, so that a
//     server comparing htu string-equal with the request (FAPI 2.0) accepts
//     it; it is a fixed point whenever that path is in normal form;
//   - in every case the htu normalises to what the request URL on the wire
//     normalises to, so a verifier that normalises both sides accepts it.
func checkHTUAgrees(t testing.TB, rawURL, got string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	base, ok := strings.CutSuffix(got, path)
	if !ok {
		t.Fatalf("htu %q of %q does not end in the path on the wire %q", got, rawURL, path)
	}
	if n, err := htu.Normalize(base + "/"); err != nil || n != base+"/" {
		t.Errorf("htu %q of %q: scheme and authority normalise to %q (%v); want a fixed point", got, rawURL, n, err)
	}
	n, err := htu.Normalize(got)
	if err != nil {
		t.Fatalf("htu.Normalize(%q) of %q: %v", got, rawURL, err)
	}
	if wp, err := htu.Normalize("http://h" + path); err == nil && wp == "http://h"+path && n != got {
		t.Errorf("htu %q of %q with a path in normal form normalises to %q; want a fixed point", got, rawURL, n)
	}
	// What the server sees: the Host header and the path on the wire. (Not
	// rawURL itself: net/url percent-encodes some reserved characters, such
	// as "!" in a path with a space, which no normalisation may decode.)
	wire := u.Scheme + "://" + u.Host + path
	if want, err := htu.Normalize(wire); err == nil && n != want {
		t.Errorf("htu %q of %q normalises to %q; the request URL %q normalises to %q", got, rawURL, n, wire, want)
	}
}

// TestHTUIsNormal: the htu of a proof is in the normal form of
// internal/htu, over the normalisations of RFC 3986 §6.2.2 and §6.2.3;
// where the path on the wire is not in normal form the htu keeps it and
// still normalises to the same URL.
func TestHTUIsNormal(t *testing.T) {
	s := newSigner(t)
	for _, tc := range []struct{ url, want string }{
		{"http://example.com/a", "http://example.com/a"},
		{"HTTP://Example.COM/a", "http://example.com/a"},                       // §6.2.2.1 case
		{"https://example.com:443/", "https://example.com/"},                   // §6.2.3 default port
		{"http://example.com:80/x", "http://example.com/x"},                    // §6.2.3
		{"http://example.com:/x", "http://example.com/x"},                      // §6.2.3 empty port
		{"http://example.com", "http://example.com/"},                          // §6.2.3 empty path
		{"https://example.com:8443/x", "https://example.com:8443/x"},           // another port kept
		{"http://example.com/a?q=1#f", "http://example.com/a"},                 // RFC 9449 §4.2
		{"https://user:pw@example.com/a", "https://example.com/a"},             // userinfo
		{"http://example.com/a%2Fb", "http://example.com/a%2Fb"},               // §6.2.2.2 reserved kept
		{"http://example.com/caf%C3%A9", "http://example.com/caf%C3%A9"},       // §6.2.2.1
		{"http://example.com/café", "http://example.com/caf%C3%A9"},            // RFC 3987 §3.1
		{"http://Bücher.example/", "http://xn--bcher-kva.example/"},            // RFC 5891
		{"http://[2001:DB8::1]:8080/x", "http://[2001:db8::1]:8080/x"},         // §6.2.2.1 IP literal
		{"http://127.0.0.1:80/x", "http://127.0.0.1/x"},                        // IPv4
		{"http://example.com/~user", "http://example.com/~user"},               // §6.2.2.2 unreserved
		{"http://example.com/%7euser", "http://example.com/%7euser"},           // as on the wire
		{"http://example.com/a/./b/../c", "http://example.com/a/./b/../c"},     // as on the wire
		{"http://example.com/%e2%82%ac", "http://example.com/%e2%82%ac"},       // as on the wire
		{"http://example.com/a;p=1/b,c/$d", "http://example.com/a;p=1/b,c/$d"}, // sub-delims
		{"http://example.com:080/x", "http://example.com/x"},                   // §6.2.3, found by FuzzHTUIsNormal
		{"http://ü:00", "http://xn--tda:0/"},                                   // found by FuzzHTUIsNormal
	} {
		p, err := s.Proof("GET", tc.url, nil)
		if err != nil {
			t.Errorf("Proof(%q): %v", tc.url, err)
			continue
		}
		got := proofHTU(t, p)
		if got != tc.want {
			t.Errorf("htu of %q = %q; want %q", tc.url, got, tc.want)
		}
		checkHTUAgrees(t, tc.url, got)
	}
	// Hosts internal/htu refuses: the client signs no proof a verifier
	// cannot read (found by FuzzHTUIsNormal).
	for _, raw := range []string{"https://]", "http://a]b/", "http://[::1]x/", "http://[example.com]/"} {
		if p, err := s.Proof("GET", raw, nil); err == nil {
			t.Errorf("Proof(%q) = %s; want an error", raw, p)
		}
	}
}

// FuzzHTUIsNormal: for any URL the client accepts, its htu agrees with
// internal/htu as checkHTUAgrees says.
func FuzzHTUIsNormal(f *testing.F) {
	for _, u := range []string{
		"HTTP://Example.COM:80", "https://[2001:DB8::1]:443/a/../b?q#f", "http://Bücher.example/caf%c3%a9",
		"http://u@example.com:/%7E/./x", "https://example.com/a%2Fb;c", "http://127.0.0.1:8080/é",
		"https://]", "http://ü:00",
	} {
		f.Add(u)
	}
	s := newSigner(f)
	f.Fuzz(func(t *testing.T, raw string) {
		if len(raw) > 512 {
			return
		}
		p, err := s.Proof("GET", raw, nil)
		if err != nil {
			return
		}
		checkHTUAgrees(t, raw, proofHTU(t, p))
	})
}
