package dpop_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dpopkit/dpop"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// noPanic runs f and returns what it panicked with, or nil.
func noPanic(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// TestZeroValuesGiveErrors: zero values and missing parts give clear
// errors, not panics; AuthCodeURL, which has no error result, panics with
// a message naming the missing field (issue 10 #9).
func TestZeroValuesGiveErrors(t *testing.T) {
	tests := []struct {
		name, want string
		call       func() error
	}{
		{"new(Signer).Proof", "Signer", func() error {
			_, err := new(dpop.Signer).Proof("GET", "https://rs.example/", nil)
			return err
		}},
		{"Transport with a zero Signer", "Signer", func() error {
			hc := &http.Client{Transport: &dpop.Transport{Signer: new(dpop.Signer), Base: roundTripFunc(func(*http.Request) (*http.Response, error) {
				return nil, fmt.Errorf("Base must not be called")
			})}}
			_, err := hc.Get("https://rs.example/")
			return err
		}},
		{"Config with a zero Signer", "Signer", func() error {
			cfg := &dpop.Config{OAuth2: &oauth2.Config{Endpoint: oauth2.Endpoint{TokenURL: "https://as.example/token"}}, Signer: new(dpop.Signer)}
			_, err := cfg.Exchange(withClient(&http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
				return nil, fmt.Errorf("Base must not be called")
			})}), "code")
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if p := noPanic(func() { err = tt.call() }); p != nil {
				t.Fatalf("panic: %v", p)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v; want an error naming %s", err, tt.want)
			}
		})
	}
}

// TestAuthCodeURLPanicNamesField: AuthCodeURL of a Config without OAuth2
// or without a usable Signer panics with a message naming the field, never
// with a nil dereference, and never sends an empty dpop_jkt (issue 10 #9).
func TestAuthCodeURLPanicNamesField(t *testing.T) {
	o := &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{AuthURL: "https://as.example/authorize"}}
	tests := []struct {
		name string
		cfg  *dpop.Config
		want string
	}{
		{"zero Config", &dpop.Config{}, "OAuth2"},
		{"no Signer", &dpop.Config{OAuth2: o}, "Signer"},
		{"zero Signer", &dpop.Config{OAuth2: o, Signer: new(dpop.Signer)}, "Signer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u string
			p := noPanic(func() { u = tt.cfg.AuthCodeURL("state") })
			msg := fmt.Sprint(p)
			if p == nil || !strings.Contains(msg, tt.want) || strings.Contains(msg, "nil pointer") {
				t.Errorf("AuthCodeURL = %q, panic %v; want a panic naming %s", u, p, tt.want)
			}
		})
	}
}

// TestBrokenBaseOnTokenRequest: a Base that returns neither a response nor
// an error, or a response without a body, on a token request is a clear
// error from every grant, not a panic (issue 10 #9).
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

// TestCheckResponseNil: CheckResponse of a nil response, or of one without
// header or body, does not panic.
func TestCheckResponseNil(t *testing.T) {
	for name, resp := range map[string]*http.Response{
		"nil":          nil,
		"no header":    {StatusCode: 401},
		"no body, 400": {StatusCode: 400, Header: http.Header{"Dpop-Nonce": {"n"}}},
	} {
		t.Run(name, func(t *testing.T) {
			if p := noPanic(func() { dpop.CheckResponse(resp) }); p != nil {
				t.Errorf("panic: %v", p)
			}
		})
	}
}

// TestNilSigner: the methods of a nil or zero *Signer that have no error
// result return zero values, and CheckSigner says the signer has no key.
func TestNilSigner(t *testing.T) {
	for name, s := range map[string]*dpop.Signer{"nil": nil, "zero": new(dpop.Signer)} {
		t.Run(name, func(t *testing.T) {
			var alg, jkt string
			var err error
			if p := noPanic(func() {
				alg, jkt = s.Alg(), s.Thumbprint()
				err = new(dpop.Metadata).CheckSigner(s)
			}); p != nil {
				t.Fatalf("panic: %v", p)
			}
			if alg != "" || jkt != "" || err == nil || !strings.Contains(err.Error(), "Signer") {
				t.Errorf("Alg, Thumbprint, CheckSigner = %q, %q, %v; want \"\", \"\" and an error naming Signer", alg, jkt, err)
			}
		})
	}
}
