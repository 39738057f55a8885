package dpop_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
)

// TestNilParts: functions with an error result return one, naming the
// missing part, for a zero or nil part; none panics.
func TestNilParts(t *testing.T) {
	srv := dpoptest.NewServer(nil)
	defer srv.Close()
	signer := newSigner(t)
	for _, tt := range []struct {
		name string
		call func() error
		want string
	}{
		{"zero AssertionSigner", func() error { _, err := new(dpop.AssertionSigner).Assertion("c", "https://as"); return err }, "NewAssertionSigner"},
		{"Config with a zero ClientAssertion", func() error {
			cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: srv.Endpoint()}, Signer: signer,
				ClientAssertion: new(dpop.AssertionSigner), Issuer: srv.URL}
			_, err := cfg.Exchange(context.Background(), "code")
			return err
		}, "ClientAssertion has no key"},
		{"CheckSigner(nil)", func() error { return (&dpop.Metadata{}).CheckSigner(nil) }, "NewSigner"},
		{"nil Metadata's AuthCode", func() error { _, err := (*dpop.Metadata)(nil).VerifyAuthResponse(url.Values{}, "s"); return err }, "Metadata is nil"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panicked: %v", r)
					}
				}()
				err = tt.call()
			}()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v; want one naming %q", err, tt.want)
			}
		})
	}
	if got := fmt.Sprint(new(dpop.AssertionSigner)); strings.Contains(got, "0x") {
		t.Errorf("zero AssertionSigner prints %q", got)
	}
}

// TestErrorTextBounded: a callback's error_description and a discovery
// error say "dpop:" once, and a huge server string is cut.
func TestErrorTextBounded(t *testing.T) {
	huge := strings.Repeat("A", 1<<20)
	_, err := (&dpop.Metadata{Issuer: "https://as"}).VerifyAuthResponse(url.Values{"error": {"access_denied"}, "error_description": {huge}, "state": {"s"}}, "s")
	if err == nil || len(err.Error()) > 2000 {
		t.Errorf("authorization error text is %d bytes; want it cut", len(err.Error()))
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issuer":"` + "http://" + r.Host + `"}`)) // no token_endpoint
	}))
	defer ts.Close()
	_, err = dpop.Discover(context.Background(), ts.URL)
	if err == nil || strings.Count(err.Error(), "dpop:") != 1 {
		t.Errorf("Discover err = %v; want one \"dpop:\"", err)
	}
}

// TestClockOffsetBounded: a server whose Date is years away is not taken
// for a clock to follow: no clock retry, the refusal is returned.
func TestClockOffsetBounded(t *testing.T) {
	requests := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		w.Header().Set("Date", "Fri, 31 Dec 9999 23:59:59 GMT")
		w.Header().Set("WWW-Authenticate", `DPoP error="invalid_dpop_proof", error_description="iat out of range"`)
		w.WriteHeader(401)
	}))
	defer ts.Close()
	c := &http.Client{Transport: &dpop.Transport{Signer: newSigner(t)}}
	resp, err := c.Get(ts.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || requests != 1 {
		t.Errorf("status %d after %d requests; want the 401 after 1", resp.StatusCode, requests)
	}
}

// bearerAfterRefusal hands out a DPoP token, then, once told it was
// refused, a Bearer one.
type bearerAfterRefusal struct{ refused bool }

func (s *bearerAfterRefusal) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}
func (s *bearerAfterRefusal) TokenContext(context.Context) (*oauth2.Token, error) {
	if s.refused {
		return &oauth2.Token{AccessToken: "bearer-token", TokenType: "Bearer"}, nil
	}
	return &oauth2.Token{AccessToken: "first", TokenType: "DPoP"}, nil
}
func (s *bearerAfterRefusal) Invalidate(*oauth2.Token) bool { s.refused = true; return true }

// TestReplacementTokenChecked: the token that replaces a refused one is
// checked as the first was: a Bearer token is refused, not sent as DPoP.
func TestReplacementTokenChecked(t *testing.T) {
	var auths []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auths = append(auths, r.Header.Get("Authorization"))
		w.Header().Set("WWW-Authenticate", `DPoP error="invalid_token"`)
		w.WriteHeader(401)
	}))
	defer ts.Close()
	c := &http.Client{Transport: &dpop.Transport{Signer: newSigner(t), Source: &bearerAfterRefusal{}}}
	_, err := c.Get(ts.URL + "/x")
	var te *dpop.TokenTypeError
	if !errors.As(err, &te) || len(auths) != 1 {
		t.Errorf("err = %v after %d requests; want a TokenTypeError after 1", err, len(auths))
	}
}
