package dpop_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestNegativeExpiresIn: a negative expires_in is refused as a JSON
// number, a JSON string and a form value.
func TestNegativeExpiresIn(t *testing.T) {
	tests := []struct{ name, contentType, body string }{
		{"JSON number", "application/json", `{"access_token":"a","token_type":"DPoP","expires_in":-5}`},
		{"JSON string", "application/json", `{"access_token":"a","token_type":"DPoP","expires_in":"-5"}`},
		{"form", "application/x-www-form-urlencoded", `access_token=a&token_type=DPoP&expires_in=-5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				io.WriteString(w, tt.body)
			})
			cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: as.URL}}, Signer: newSigner(t)}
			tok, err := cfg.Exchange(context.Background(), "code")
			if err == nil || !strings.Contains(err.Error(), "expires_in") {
				t.Errorf("Exchange = %v, %v; want an error about expires_in", tok, err)
			}
		})
	}
}

// TestHugeTokenBodyReleased: a token-side answer larger than the SDK reads
// has its body closed, for every grant (x/oauth2's device authorization
// never closes it): the server writing it is not blocked for ever.
func TestHugeTokenBodyReleased(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusBadRequest} {
		handlerDone := make(chan struct{}, 1)
		as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
			defer func() { handlerDone <- struct{}{} }()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			chunk := bytes.Repeat([]byte(" "), 32<<10)
			for i := 0; i < 2048; i++ { // 64 MiB, far more than socket buffers hold
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		})
		t.Cleanup(as.CloseClientConnections) // before Close, or a leaked body would hold it for ever
		for _, op := range tokenOps(t, as.URL, oauth2.AuthStyleInHeader) {
			t.Run(strconv.Itoa(status)+"/"+op.name, func(t *testing.T) {
				if err := op.run(t, context.Background()); err == nil {
					t.Error("no error")
				}
				select {
				case <-handlerDone:
				case <-time.After(maxWait):
					t.Fatalf("the server is still writing %v after the call returned: the body was not closed", maxWait)
				}
			})
		}
	}
}

// TestEveryRequestEndsWithContext sends every request of every grant to
// a server that never answers, each with a 300 ms deadline: each returns
// context.DeadlineExceeded within maxWait. (Config.DeviceAuth did not:
// x/oauth2 builds that request without the context.)
func TestEveryRequestEndsWithContext(t *testing.T) {
	stall := make(chan struct{})
	as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(stall) }) // before the server closes
	s := newSigner(t)
	cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{AuthURL: as.URL + "/auth",
		TokenURL: as.URL + "/token", DeviceAuthURL: as.URL + "/device"}}, Signer: s, PARURL: as.URL + "/par", RevocationURL: as.URL + "/revoke"}
	cc := &dpop.ClientCredentials{OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: as.URL + "/token"}, Signer: s}
	expired := &oauth2.Token{AccessToken: "old", TokenType: "DPoP", RefreshToken: "rt", Expiry: time.Now().Add(-time.Hour)}
	for _, tt := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Exchange", func(ctx context.Context) error { _, err := cfg.Exchange(ctx, "code"); return err }},
		{"refresh", func(ctx context.Context) error { _, err := cfg.TokenSource(ctx, expired).Token(); return err }},
		{"PushAuthCodeURL", func(ctx context.Context) error { _, err := cfg.PushAuthCodeURL(ctx, "st"); return err }},
		{"DeviceAuth", func(ctx context.Context) error { _, err := cfg.DeviceAuth(ctx); return err }},
		{"DeviceAccessToken", func(ctx context.Context) error {
			_, err := cfg.DeviceAccessToken(ctx, &oauth2.DeviceAuthResponse{DeviceCode: "dc", Interval: 1, Expiry: time.Now().Add(time.Minute)})
			return err
		}},
		{"Revoke", func(ctx context.Context) error { return cfg.Revoke(ctx, "rt", "") }},
		{"ClientCredentials.Token", func(ctx context.Context) error { _, err := cc.Token(ctx); return err }},
		{"Discover", func(ctx context.Context) error { _, err := dpop.Discover(ctx, as.URL); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			timeout := 300 * time.Millisecond
			if tt.name == "DeviceAccessToken" {
				timeout += time.Second // the first poll waits the interval
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- tt.call(ctx) }()
			select {
			case err := <-errc:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v; want context.DeadlineExceeded", err)
				}
			case <-time.After(maxWait):
				t.Fatalf("did not return within %v of its deadline", maxWait)
			}
		})
	}
}

// TestTokenRequestsFollowNoRedirect: a token, PAR or device authorization
// endpoint that answers 307 to another port and scheme (https → http on
// the same host name, where net/http would resend the body and the Basic
// header) gets an error naming the Location, and the other server receives
// nothing (RFC 6749 §3.2).
func TestTokenRequestsFollowNoRedirect(t *testing.T) {
	target := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"a","token_type":"DPoP","device_code":"d","user_code":"u","verification_uri":"https://x/","request_uri":"urn:x"}`)
	})
	as := newHostile(t, true, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	ctx := withClient(as.Client())
	signer := newSigner(t)
	for styleName, style := range map[string]oauth2.AuthStyle{"Basic": oauth2.AuthStyleInHeader, "InParams": oauth2.AuthStyleInParams} {
		cfg := &dpop.Config{
			OAuth2: &oauth2.Config{ClientID: "c", ClientSecret: clientSecret, Endpoint: oauth2.Endpoint{
				AuthURL: as.URL + "/authorize", TokenURL: as.URL + "/token", DeviceAuthURL: as.URL + "/device", AuthStyle: style,
			}},
			Signer: signer,
			PARURL: as.URL + "/par",
		}
		cc := &dpop.ClientCredentials{
			OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: clientSecret, TokenURL: as.URL + "/token", AuthStyle: style},
			Signer: signer,
		}
		tests := []struct {
			name, path string
			call       func(ctx context.Context) error
		}{
			{"Exchange", "/token", func(ctx context.Context) error {
				_, err := cfg.Exchange(ctx, codeSecret, oauth2.VerifierOption(verifierSecret))
				return err
			}},
			{"refresh", "/token", func(ctx context.Context) error {
				expired := &oauth2.Token{AccessToken: accessSecret, RefreshToken: refreshSecret, Expiry: time.Now().Add(-time.Hour)}
				_, err := cfg.TokenSource(ctx, expired).Token()
				return err
			}},
			{"ClientCredentials", "/token", func(ctx context.Context) error { _, err := cc.Token(ctx); return err }},
			{"PushAuthCodeURL", "/par", func(ctx context.Context) error { _, err := cfg.PushAuthCodeURL(ctx, "state"); return err }},
			{"DeviceAuth", "/device", func(ctx context.Context) error { _, err := cfg.DeviceAuth(ctx); return err }},
			{"DeviceAccessToken", "/token", func(ctx context.Context) error {
				da := &oauth2.DeviceAuthResponse{DeviceCode: "d", Interval: 1, Expiry: time.Now().Add(time.Minute)}
				_, err := cfg.DeviceAccessToken(ctx, da)
				return err
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name+"/"+styleName, func(t *testing.T) {
				before := target.requests()
				err := onFakeClock(t, ctx, tt.call) // the device grant waits a second before its poll
				if got := target.requests() - before; got != 0 {
					t.Errorf("redirect target received %d requests; want 0", got)
				}
				if err == nil || !strings.Contains(err.Error(), target.URL+tt.path) {
					t.Errorf("err = %v; want an error naming the Location %s", err, target.URL+tt.path)
				}
			})
		}
	}
}

func TestBearerDowngrade(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{TokenType: "Bearer"})
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{ClientID: "backend", ClientSecret: "backend-secret", TokenURL: srv.Endpoint().TokenURL},
		Signer: newSigner(t),
	}
	tok, err := cc.Token(context.Background())
	var te *dpop.TokenTypeError
	if !errors.As(err, &te) || !te.Downgrade() {
		t.Fatalf("Bearer answer: err = %v; want a *TokenTypeError downgrade", err)
	}
	if tok != nil {
		t.Error("a refused Bearer token was returned with the error")
	}
	cc.AllowBearer = true
	if tok, err := cc.Token(context.Background()); err != nil || tok.Type() != "Bearer" {
		t.Errorf("with AllowBearer: %v, %v; want the Bearer token", tok, err)
	}
}

// TestTokenResponseBadInput feeds x/oauth2 through Config answers a broken
// or hostile authorization server might give.
func TestTokenResponseBadInput(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		status                  int
		want                    string
	}{
		{"not JSON", "application/json", "<html>oops</html>", 200, "cannot parse json"},
		{"no access_token", "application/json", `{"token_type":"DPoP"}`, 200, "missing access_token"},
		{"negative expires_in", "application/json", `{"access_token":"a","token_type":"DPoP","expires_in":-5}`, 200, "negative expires_in"},
		{"unknown token_type", "application/json", `{"access_token":"a","token_type":"MAC"}`, 200, `token_type "MAC"`},
		{"empty token_type", "application/json", `{"access_token":"a"}`, 200, `token_type ""`},
		{"too large", "application/json", `{"access_token":"` + strings.Repeat("a", 256<<10) + `","token_type":"DPoP"}`, 200, "larger than"},
		{"error", "application/json", `{"error":"invalid_client"}`, 401, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			cc := &dpop.ClientCredentials{
				OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: srv.URL},
				Signer: newSigner(t),
			}
			_, err := cc.Token(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "dpop: ") {
				t.Errorf("err = %v; want a dpop: error mentioning %q", err, tt.want)
			}
		})
	}
}

// TestTokenNonceChallengedTwice: the retry is challenged again; the second
// answer is returned, not looped on.
func TestTokenNonceChallengedTwice(t *testing.T) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		w.Header().Set("DPoP-Nonce", "n"+strings.Repeat("x", n))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		io.WriteString(w, `{"error":"use_dpop_nonce"}`)
	}))
	defer srv.Close()
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: srv.URL},
		Signer: newSigner(t),
	}
	_, err := cc.Token(context.Background())
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "use_dpop_nonce" {
		t.Errorf("err = %v; want the second use_dpop_nonce as a RetrieveError", err)
	}
	if n != 2 {
		t.Errorf("%d requests; want 2", n)
	}
}

// TestBrokenBaseOnTokenRequest: a Base that returns neither a response nor
// an error, or a response without a body, on a token request is a clear
// error from every grant, not a panic.
func TestBrokenBaseOnTokenRequest(t *testing.T) {
	bases := map[string]roundTripFunc{
		"nil response": func(*http.Request) (*http.Response, error) { return nil, nil },
		"nil body": func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Request: r}, nil
		},
		"nil body 400": func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 400, Header: http.Header{"Dpop-Nonce": {"n"}}, Request: r}, nil
		},
	}
	s := newSigner(t)
	for name, base := range bases {
		ctx := withClient(&http.Client{Transport: base})
		cfg := &dpop.Config{
			OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{
				AuthURL: "https://as.example/authorize", TokenURL: "https://as.example/token", DeviceAuthURL: "https://as.example/device",
			}},
			Signer: s,
			PARURL: "https://as.example/par",
		}
		cc := &dpop.ClientCredentials{OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: "https://as.example/token"}, Signer: s}
		calls := map[string]func() error{
			"Exchange":          func() error { _, err := cfg.Exchange(ctx, "code"); return err },
			"ClientCredentials": func() error { _, err := cc.Token(ctx); return err },
			"PushAuthCodeURL":   func() error { _, err := cfg.PushAuthCodeURL(ctx, "state"); return err },
			"DeviceAuth":        func() error { _, err := cfg.DeviceAuth(ctx); return err },
		}
		for callName, call := range calls {
			t.Run(name+"/"+callName, func(t *testing.T) {
				var err error
				if p := noPanic(func() { err = call() }); p != nil {
					t.Fatalf("panic: %v", p)
				}
				if err == nil || !strings.HasPrefix(err.Error(), "dpop: ") {
					t.Errorf("err = %v; want a dpop: error", err)
				}
			})
		}
	}
}

// FuzzTokenResponse serves arbitrary token responses, JSON or form, to
// Config.Exchange: no panic, and a token it returns has token_type DPoP
// and did not arrive expired (no negative expires_in).
func FuzzTokenResponse(f *testing.F) {
	f.Add([]byte(`{"access_token":"a","token_type":"DPoP","expires_in":60}`), "application/json")
	f.Add([]byte(`{"access_token":"a","token_type":"dpop","expires_in":"-1"}`), "application/json")
	f.Add([]byte(`access_token=a&token_type=DPoP&expires_in=-5`), "application/x-www-form-urlencoded")
	f.Add([]byte(`access_token=a&token_type=Bearer`), "text/plain")
	f.Add([]byte(`{"access_token":"a","token_type":"DPoP","expires_in":-0}`), "application/json; charset=utf-8")
	s := newSigner(f)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		ctx := withClient(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {contentType}},
				Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
		})})
		cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: "https://as.example/token"}}, Signer: s}
		start := time.Now()
		tok, err := cfg.Exchange(ctx, "code")
		if err != nil {
			return
		}
		if !strings.EqualFold(tok.TokenType, "DPoP") {
			t.Fatalf("token_type %q accepted", tok.TokenType)
		}
		if !tok.Expiry.IsZero() && tok.Expiry.Before(start) {
			t.Fatalf("token accepted already expired (expires_in %v)", tok.Extra("expires_in"))
		}
	})
}
