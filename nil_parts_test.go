package dpop_test

import (
	"context"
	"fmt"
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
