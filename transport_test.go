package dpop

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"
)

// hop is what a test server saw of one request.
type hop struct {
	Method, Path, Authorization string
	Claims                      proofClaims
	BodySHA256                  [32]byte
	BodyLen                     int64
}

// wireServer is an httptest server whose handler verifies each proof with
// go-jose, records it, and answers through respond (n counts from 0).
type wireServer struct {
	*httptest.Server
	mu   sync.Mutex // guards hops
	hops []hop
}

func newWireServer(t *testing.T, alg string, respond func(w http.ResponseWriter, r *http.Request, n int, h hop)) *wireServer {
	t.Helper()
	ws := &wireServer{}
	ws.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var h hop
		h.Method, h.Path, h.Authorization = r.Method, r.URL.Path, r.Header.Get("Authorization")
		if p := r.Header.Values("DPoP"); len(p) != 1 {
			t.Errorf("request %s %s has %d DPoP headers; want 1", r.Method, r.URL, len(p))
		} else {
			h.Claims, _ = verifyJOSE(t, p[0], alg)
		}
		sum := sha256.New()
		h.BodyLen, _ = io.Copy(sum, r.Body)
		copy(h.BodySHA256[:], sum.Sum(nil))
		ws.mu.Lock()
		n := len(ws.hops)
		ws.hops = append(ws.hops, h)
		ws.mu.Unlock()
		respond(w, r, n, h)
	}))
	t.Cleanup(ws.Close)
	return ws
}

func (ws *wireServer) seen() []hop {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return append([]hop(nil), ws.hops...)
}

// rsNonce answers like a resource server that requires nonce "n<k>" and
// rotates it each rotate requests (never, when 0).
func rsChallenge(w http.ResponseWriter, nonce string) {
	w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="ES256 EdDSA"`)
	w.Header().Set("DPoP-Nonce", nonce)
	w.WriteHeader(http.StatusUnauthorized)
	io.WriteString(w, "nonce please")
}

func asChallenge(w http.ResponseWriter, nonce string) {
	w.Header().Set("DPoP-Nonce", nonce)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	io.WriteString(w, `{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}`)
}

// closeCounter is a request body that counts Close calls.
type closeCounter struct {
	io.Reader
	closed atomic.Int32
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }

func staticToken(s string) oauth2.TokenSource {
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: s, TokenType: "DPoP"})
}

func TestTransportSendsProofAndToken(t *testing.T) {
	ws := newWireServer(t, algEdDSA, func(w http.ResponseWriter, r *http.Request, n int, h hop) {
		w.Header().Set("DPoP-Nonce", "fresh-1")
		io.WriteString(w, "ok")
	})
	tr := &Transport{Signer: newTestSigner(t, algEdDSA), Source: staticToken("tok-1")}
	req, _ := http.NewRequest("GET", ws.URL+"/a%2Fb?q=1", nil)
	req.Header.Set("X-Caller", "v")
	before := req.Header.Clone()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Errorf("body = %q; want ok", body)
	}
	if len(req.Header) != len(before) || req.Header.Get("DPoP") != "" || req.Header.Get("Authorization") != "" {
		t.Errorf("caller's request was modified: %v", req.Header)
	}
	h := ws.seen()[0]
	if h.Authorization != "DPoP tok-1" {
		t.Errorf("Authorization = %q; want DPoP tok-1", h.Authorization)
	}
	if want := ws.URL + "/a%2Fb"; h.Claims.HTU != want {
		t.Errorf("htu = %q; want %q", h.Claims.HTU, want)
	}
	if h.Claims.ATH != accessTokenHash("tok-1") {
		t.Errorf("ath = %q; want hash of tok-1", h.Claims.ATH)
	}
	if got := tr.nonces().Get(ws.URL); got != "fresh-1" {
		t.Errorf("nonce from a 200 not stored: Get = %q; want fresh-1", got)
	}
}

func TestTransportRetries(t *testing.T) {
	tests := []struct {
		name      string
		respond   func(w http.ResponseWriter, r *http.Request, n int, h hop)
		wantHops  int
		wantCode  int
		wantNonce []string // nonce of each hop
	}{
		{"resource server 401", func(w http.ResponseWriter, r *http.Request, n int, h hop) {
			if h.Claims.Nonce != "rs-1" {
				rsChallenge(w, "rs-1")
				return
			}
			io.WriteString(w, "ok")
		}, 2, 200, []string{"", "rs-1"}},
		{"authorization server 400", func(w http.ResponseWriter, r *http.Request, n int, h hop) {
			if h.Claims.Nonce != "as-1" {
				asChallenge(w, "as-1")
				return
			}
			io.WriteString(w, "ok")
		}, 2, 200, []string{"", "as-1"}},
		{"second challenge is returned", func(w http.ResponseWriter, r *http.Request, n int, h hop) {
			rsChallenge(w, fmt.Sprintf("rs-%d", n))
		}, 2, 401, []string{"", "rs-0"}},
		{"no nonce header, no retry", func(w http.ResponseWriter, r *http.Request, n int, h hop) {
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
			w.WriteHeader(401)
		}, 1, 401, []string{""}},
		{"invalid nonce, no retry", func(w http.ResponseWriter, r *http.Request, n int, h hop) {
			rsChallenge(w, `bad "nonce"`)
		}, 1, 401, []string{""}},
		{"Bearer challenge, no retry", func(w http.ResponseWriter, r *http.Request, n int, h hop) {
			w.Header().Set("WWW-Authenticate", `Bearer error="use_dpop_nonce"`)
			w.Header().Set("DPoP-Nonce", "x")
			w.WriteHeader(401)
		}, 1, 401, []string{""}},
		{"other DPoP error, no retry", func(w http.ResponseWriter, r *http.Request, n int, h hop) {
			w.Header().Set("WWW-Authenticate", `DPoP error="invalid_dpop_proof"`)
			w.Header().Set("DPoP-Nonce", "x")
			w.WriteHeader(401)
		}, 1, 401, []string{""}},
		{"403 with nonce, no retry", func(w http.ResponseWriter, r *http.Request, n int, h hop) {
			w.Header().Set("DPoP-Nonce", "x")
			w.WriteHeader(403)
		}, 1, 403, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := newWireServer(t, algES256, tt.respond)
			tr := &Transport{Signer: newTestSigner(t, algES256), Source: staticToken("tok")}
			resp, err := (&http.Client{Transport: tr}).Get(ws.URL + "/r")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			hops := ws.seen()
			if len(hops) != tt.wantHops || resp.StatusCode != tt.wantCode {
				t.Fatalf("%d requests, status %d; want %d, %d", len(hops), resp.StatusCode, tt.wantHops, tt.wantCode)
			}
			for i, h := range hops {
				if h.Claims.Nonce != tt.wantNonce[i] {
					t.Errorf("request %d nonce = %q; want %q", i, h.Claims.Nonce, tt.wantNonce[i])
				}
				if i > 0 && h.Claims.JTI == hops[0].Claims.JTI {
					t.Errorf("retry reused jti %q", h.Claims.JTI)
				}
			}
		})
	}
}

// TestTransportSameNonceNoRetry: a challenge repeating the nonce just sent
// is not retried (the server refused it; sending it again cannot help).
func TestTransportSameNonceNoRetry(t *testing.T) {
	ws := newWireServer(t, algES256, func(w http.ResponseWriter, r *http.Request, n int, h hop) {
		rsChallenge(w, "stuck")
	})
	tr := &Transport{Signer: newTestSigner(t, algES256), Nonces: new(NonceCache)}
	tr.Nonces.Put(ws.URL, "stuck")
	resp, err := (&http.Client{Transport: tr}).Get(ws.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := len(ws.seen()); n != 1 || resp.StatusCode != 401 {
		t.Errorf("%d requests, status %d; want 1, 401", n, resp.StatusCode)
	}
}

func TestTransportOneShotBodyNotRetried(t *testing.T) {
	ws := newWireServer(t, algES256, func(w http.ResponseWriter, r *http.Request, n int, h hop) {
		asChallenge(w, "as-1")
	})
	tr := &Transport{Signer: newTestSigner(t, algES256)}
	body := &closeCounter{Reader: strings.NewReader("grant_type=x")}
	req, _ := http.NewRequest("POST", ws.URL+"/token", body)
	req.GetBody = nil // one shot
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := len(ws.seen()); n != 1 || resp.StatusCode != 400 {
		t.Errorf("%d requests, status %d; want 1, 400 returned as is", n, resp.StatusCode)
	}
	if !strings.Contains(string(got), "use_dpop_nonce") {
		t.Errorf("body = %q; want the server's JSON error", got)
	}
	if body.closed.Load() == 0 {
		t.Error("request body not closed")
	}
}

// TestTransportLargeBodyRetried sends a 3 MiB POST that is challenged, and
// checks the retry delivers every byte.
func TestTransportLargeBodyRetried(t *testing.T) {
	ws := newWireServer(t, algES256, func(w http.ResponseWriter, r *http.Request, n int, h hop) {
		if h.Claims.Nonce == "" {
			rsChallenge(w, "rs-1")
			return
		}
		io.WriteString(w, "ok")
	})
	payload := make([]byte, 3<<20)
	rand.Read(payload)
	tr := &Transport{Signer: newTestSigner(t, algES256), Source: staticToken("tok")}
	resp, err := (&http.Client{Transport: tr}).Post(ws.URL+"/upload", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	hops := ws.seen()
	if len(hops) != 2 || resp.StatusCode != 200 {
		t.Fatalf("%d requests, status %d; want 2, 200", len(hops), resp.StatusCode)
	}
	if want := sha256.Sum256(payload); hops[1].BodySHA256 != want || hops[1].BodyLen != int64(len(payload)) {
		t.Errorf("retried body: %d bytes, sha256 %x; want %d bytes, %x", hops[1].BodyLen, hops[1].BodySHA256, len(payload), want)
	}
}

// TestTransportNonNonce400 checks that a 400 that is not a nonce challenge
// reaches the caller whole, even when larger than the peek.
func TestTransportNonNonce400(t *testing.T) {
	for _, size := range []int{10, maxPeek, maxPeek + 1, 1 << 20} {
		body := `{"error":"invalid_grant","pad":"` + strings.Repeat("x", size) + `"}`
		ws := newWireServer(t, algES256, func(w http.ResponseWriter, r *http.Request, n int, h hop) {
			w.Header().Set("DPoP-Nonce", "as-1")
			w.WriteHeader(400)
			io.WriteString(w, body)
		})
		tr := &Transport{Signer: newTestSigner(t, algES256)}
		resp, err := (&http.Client{Transport: tr}).Post(ws.URL, "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(got) != body {
			t.Errorf("size %d: caller read %d bytes (err %v); want the whole %d-byte body", size, len(got), err, len(body))
		}
		if n := len(ws.seen()); n != 1 {
			t.Errorf("size %d: %d requests; want 1", size, n)
		}
	}
}

// TestTransportCancelledMidRetry cancels the context while the server
// answers the challenge: no second request goes out, and the caller gets the
// context's error.
// TestTransportAuthorizationFromHeader: with no Source, a DPoP token set on
// the request by a layer above (oauth2.Transport here) is hashed into ath.
func TestTransportAuthorizationFromHeader(t *testing.T) {
	ws := newWireServer(t, algEdDSA, func(w http.ResponseWriter, r *http.Request, n int, h hop) {})
	tr := &oauth2.Transport{
		Source: staticToken("stacked"),
		Base:   &Transport{Signer: newTestSigner(t, algEdDSA)},
	}
	resp, err := (&http.Client{Transport: tr}).Get(ws.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := ws.seen()[0]
	if h.Authorization != "DPoP stacked" || h.Claims.ATH != accessTokenHash("stacked") {
		t.Errorf("Authorization %q, ath %q; want DPoP stacked with its hash", h.Authorization, h.Claims.ATH)
	}
}

// TestTransportNoTokenNoATH: proof-only requests (token endpoint) carry no
// ath and no Authorization.
func TestTransportNoTokenNoATH(t *testing.T) {
	ws := newWireServer(t, algEdDSA, func(w http.ResponseWriter, r *http.Request, n int, h hop) {})
	resp, err := (&http.Client{Transport: &Transport{Signer: newTestSigner(t, algEdDSA)}}).Get(ws.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := ws.seen()[0]; h.Authorization != "" || h.Claims.ATH != "" {
		t.Errorf("Authorization %q, ath %q; want neither", h.Authorization, h.Claims.ATH)
	}
}

// TestTransportBearerToken: a token whose type is Bearer is refused unless
// AllowBearer is set; then it goes with the Bearer scheme and a proof
// without ath. An empty type means DPoP.
// TestTransportEmptyMethod: net/http sends an empty Method as GET, and the
// proof must say so.
// recordingBase answers every request with resp and remembers the requests.
// TestTransportRedirectChainBroken: a redirected request whose Response has
// no Request (a nonconforming Base made it) cannot be traced to its first
// origin, so it gets no token.
// TestTransportNonconformingBase: a Base that returns a nil body or header,
// or neither response nor error, gets an error or a usable response, never
// a panic.
