package dpop

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dpopkit/dpop/dpoptest"
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

type errTransport struct {
	err    error
	bodies atomic.Int32
}

func (e *errTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
		e.bodies.Add(1)
	}
	return nil, e.err
}

func TestTransportErrors(t *testing.T) {
	boom := errors.New("boom")
	t.Run("nil Signer", func(t *testing.T) {
		body := &closeCounter{Reader: strings.NewReader("x")}
		req, _ := http.NewRequest("POST", "https://example.com/", body)
		_, err := (&Transport{}).RoundTrip(req)
		if err == nil || !strings.Contains(err.Error(), "dpop: Transport's Signer is nil") {
			t.Errorf("err = %v; want dpop: Transport's Signer is nil", err)
		}
		if body.closed.Load() != 1 {
			t.Errorf("body closed %d times; want 1", body.closed.Load())
		}
	})
	t.Run("Base error", func(t *testing.T) {
		base := &errTransport{err: boom}
		body := &closeCounter{Reader: strings.NewReader("x")}
		req, _ := http.NewRequest("POST", "https://example.com/", body)
		_, err := (&Transport{Base: base, Signer: newTestSigner(t, algEdDSA)}).RoundTrip(req)
		if !errors.Is(err, boom) {
			t.Errorf("err = %v; want boom", err)
		}
		if base.bodies.Load() != 1 {
			t.Errorf("Base saw %d bodies; want 1", base.bodies.Load())
		}
	})
	t.Run("Source error", func(t *testing.T) {
		body := &closeCounter{Reader: strings.NewReader("x")}
		req, _ := http.NewRequest("POST", "https://example.com/", body)
		src := oauth2.TokenSource(errSource{boom})
		_, err := (&Transport{Base: &errTransport{}, Signer: newTestSigner(t, algEdDSA), Source: src}).RoundTrip(req)
		if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "dpop: ") {
			t.Errorf("err = %v; want a dpop: error wrapping boom", err)
		}
		if body.closed.Load() != 1 {
			t.Errorf("body closed %d times; want 1", body.closed.Load())
		}
	})
	t.Run("cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://example.com/", nil)
		_, err := (&Transport{Base: &errTransport{}, Signer: newTestSigner(t, algEdDSA)}).RoundTrip(req)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v; want context.Canceled", err)
		}
	})
}

type errSource struct{ err error }

func (e errSource) Token() (*oauth2.Token, error) { return nil, e.err }

func TestTransportCancelledMidRetry(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ws := newWireServer(t, algES256, func(w http.ResponseWriter, r *http.Request, n int, h hop) {
		cancel()
		rsChallenge(w, "rs-1")
	})
	tr := &Transport{Signer: newTestSigner(t, algES256)}
	req, _ := http.NewRequestWithContext(ctx, "GET", ws.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v; want context.Canceled", err)
	}
	if n := len(ws.seen()); n != 1 {
		t.Errorf("%d requests; want 1", n)
	}
}

func TestTransportRedirects(t *testing.T) {
	other := newWireServer(t, algEdDSA, func(w http.ResponseWriter, r *http.Request, n int, h hop) {})
	var home *wireServer
	home = newWireServer(t, algEdDSA, func(w http.ResponseWriter, r *http.Request, n int, h hop) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
		case "/here":
			http.Redirect(w, r, home.URL+"/landing", http.StatusFound)
		}
	})
	tr := &Transport{Signer: newTestSigner(t, algEdDSA), Source: staticToken("secret-token")}
	c := &http.Client{Transport: tr}
	for _, path := range []string{"/away", "/here"} {
		resp, err := c.Get(home.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if hops := other.seen(); len(hops) != 1 || hops[0].Authorization != "" || hops[0].Claims.ATH != "" {
		t.Errorf("cross-origin hop saw %+v; want one request with no token and no ath", hops)
	} else if hops[0].Claims.HTU != other.URL+"/landing" {
		t.Errorf("cross-origin hop htu = %q; want %q", hops[0].Claims.HTU, other.URL+"/landing")
	}
	hops := home.seen()
	if len(hops) != 3 || hops[2].Path != "/landing" || hops[2].Authorization != "DPoP secret-token" {
		t.Errorf("same-origin redirect: %+v; want the token on /landing", hops)
	}
}

func TestTransportBearerToken(t *testing.T) {
	ws := newWireServer(t, algEdDSA, func(w http.ResponseWriter, r *http.Request, n int, h hop) {})
	for _, tt := range []struct {
		tokenType         string
		allow             bool
		wantAuth, wantATH string
	}{
		{"Bearer", true, "Bearer plain", ""},
		{"bearer", true, "Bearer plain", ""},
		{"", false, "DPoP plain", accessTokenHash("plain")},
		{"DPoP", false, "DPoP plain", accessTokenHash("plain")},
	} {
		tr := &Transport{Signer: newTestSigner(t, algEdDSA), AllowBearer: tt.allow, Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "plain", TokenType: tt.tokenType})}
		resp, err := (&http.Client{Transport: tr}).Get(ws.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		hops := ws.seen()
		h := hops[len(hops)-1]
		if h.Authorization != tt.wantAuth || h.Claims.ATH != tt.wantATH {
			t.Errorf("token type %q: Authorization %q, ath %q; want %q, %q", tt.tokenType, h.Authorization, h.Claims.ATH, tt.wantAuth, tt.wantATH)
		}
	}
	n := len(ws.seen())
	tr := &Transport{Signer: newTestSigner(t, algEdDSA), Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "plain", TokenType: "Bearer"})}
	_, err := (&http.Client{Transport: tr}).Get(ws.URL)
	var te *TokenTypeError
	if !errors.As(err, &te) || !te.Downgrade() {
		t.Errorf("Bearer token without AllowBearer: err = %v; want a *TokenTypeError", err)
	}
	if len(ws.seen()) != n {
		t.Error("a Bearer token was sent without AllowBearer")
	}
}

func TestTransportEmptyMethod(t *testing.T) {
	ws := newWireServer(t, algEdDSA, func(w http.ResponseWriter, r *http.Request, n int, h hop) {})
	u, _ := url.Parse(ws.URL + "/x")
	resp, err := (&Transport{Signer: newTestSigner(t, algEdDSA)}).RoundTrip(&http.Request{URL: u, Header: http.Header{}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := ws.seen()[0]; h.Method != "GET" || h.Claims.HTM != "GET" {
		t.Errorf("method %q, htm %q; want GET, GET", h.Method, h.Claims.HTM)
	}
}

type recordingBase struct {
	resp func(*http.Request) *http.Response
	reqs []*http.Request
}

func (b *recordingBase) RoundTrip(r *http.Request) (*http.Response, error) {
	b.reqs = append(b.reqs, r)
	return b.resp(r), nil
}

func TestTransportRedirectChainBroken(t *testing.T) {
	base := &recordingBase{resp: func(r *http.Request) *http.Response {
		if r.URL.Host == "api.example" {
			return &http.Response{StatusCode: 302, Header: http.Header{"Location": {"https://evil.example/steal"}}, Body: http.NoBody}
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}
	}}
	tr := &Transport{Base: base, Signer: newTestSigner(t, algEdDSA), Source: staticToken("SECRET")}
	u, _ := url.Parse("https://evil.example/steal")
	req := &http.Request{Method: "GET", URL: u, Header: http.Header{}, Response: &http.Response{StatusCode: 302}}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := base.reqs[0].Header.Get("Authorization"); got != "" {
		t.Errorf("hop with an untraceable chain got Authorization %q; want none", got)
	}
}

func TestTransportNonconformingBase(t *testing.T) {
	s := newTestSigner(t, algEdDSA)
	nilBody := &recordingBase{resp: func(r *http.Request) *http.Response {
		return &http.Response{StatusCode: 401, Header: http.Header{"Www-Authenticate": {`DPoP error="use_dpop_nonce"`}, "Dpop-Nonce": {"n1"}}}
	}}
	resp, err := (&Transport{Base: nilBody, Signer: s}).RoundTrip(httptest.NewRequest("GET", "https://example.com/", nil))
	if err != nil || resp.StatusCode != 401 || len(nilBody.reqs) != 2 {
		t.Errorf("nil body: %v, %v after %d requests; want the second 401 after 2", resp, err, len(nilBody.reqs))
	}
	nilHeader := &recordingBase{resp: func(r *http.Request) *http.Response { return &http.Response{StatusCode: 200} }}
	if _, err := (&Transport{Base: nilHeader, Signer: s}).RoundTrip(httptest.NewRequest("GET", "https://example.com/", nil)); err != nil {
		t.Errorf("nil header: %v", err)
	}
	nothing := &recordingBase{resp: func(r *http.Request) *http.Response { return nil }}
	if _, err := (&Transport{Base: nothing, Signer: s}).RoundTrip(httptest.NewRequest("GET", "https://example.com/", nil)); err == nil || !strings.HasPrefix(err.Error(), "dpop: ") {
		t.Errorf("nil response: err = %v; want a dpop: error", err)
	}
}

// TestConcurrentRequests shares one Transport between 64 goroutines of
// 1000 requests each, against a server that rotates its nonce every five
// accepted proofs and remembers every jti: every request must end 200, and
// no proof may be sent twice.
func TestConcurrentRequests(t *testing.T) {
	goroutines, perG := 64, 1000
	switch {
	case testing.Short():
		perG = 10 // 640 requests, 128 rotations: the races, not the volume
	case raceEnabled:
		perG = 200 // 12,800 requests: still every rotation race, in a fifth of the time
	}
	// The server rotates every 5 accepted proofs and accepts the newest
	// 1024 nonces (about 5000 requests' worth): a real server's window is
	// measured in time, and on a loaded machine a goroutine can stall
	// between a challenge and its retry while the others send hundreds of
	// requests. The clients must keep learning the rotated nonces from 200
	// responses, concurrently, through one cache.
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true, NonceEvery: 5, NonceWindow: 1024})
	defer srv.Close()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	s, err := NewSigner(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := srv.IssueToken(s.Thumbprint(), "alice", "api:read")
	tr := &Transport{
		Base:   &http.Transport{MaxIdleConnsPerHost: goroutines},
		Signer: s,
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok, TokenType: "DPoP"}),
	}
	defer tr.Base.(*http.Transport).CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perG {
				resp, err := c.Get(srv.URL + "/api/items")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d: %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
					return
				}
			}
		}()
	}
	wg.Wait()

	jtis := make(map[string]bool)
	ok, challenged := 0, 0
	for _, r := range srv.Requests() {
		if r.Kind != "resource" {
			continue
		}
		if r.Proof == nil {
			t.Fatalf("request without a valid proof: %+v", r)
		}
		if jtis[r.Proof.JTI] {
			t.Fatalf("jti %q seen twice", r.Proof.JTI)
		}
		jtis[r.Proof.JTI] = true
		switch {
		case r.Status == 200:
			ok++
		case r.Error == "use_dpop_nonce":
			challenged++
		default:
			t.Errorf("unexpected answer %d %s", r.Status, r.Error)
		}
	}
	if ok != goroutines*perG {
		t.Errorf("%d requests succeeded; want %d", ok, goroutines*perG)
	}
	t.Logf("%d requests, %d nonce challenges retried", ok, challenged)
}
