package dpop

// Transport at its edges: errors, cancellation, redirects, Bearer tokens,
// requests and Base transports that bend the rules.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"
)

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
