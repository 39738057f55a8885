package dpop_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dpopkit/dpop"
	"golang.org/x/oauth2"
)

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
