package dpop_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dpopkit/dpop/dpoptest"
	"golang.org/x/oauth2"
)

func TestPAR(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true})
	s := newSigner(t)
	cfg := publicConfig(srv, s)
	verifier := oauth2.GenerateVerifier()
	authURL, err := cfg.PushAuthCodeURL(context.Background(), "st-2", oauth2.S256ChallengeOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(authURL, "request_uri=") || strings.Contains(authURL, "code_challenge") {
		t.Errorf("auth URL %q; want only client_id and request_uri", authURL)
	}
	q := headlessAuthorize(t, authURL)
	if _, err := publicConfig(srv, newSigner(t)).Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Error("exchange of a PAR-bound code with another key succeeded")
	}
	authURL, _ = cfg.PushAuthCodeURL(context.Background(), "st-3", oauth2.S256ChallengeOption(verifier))
	q = headlessAuthorize(t, authURL)
	if _, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Errorf("exchange with the PAR key: %v", err)
	}
	if n := count(srv, "par", "use_dpop_nonce"); n != 1 {
		t.Errorf("%d nonce challenges at PAR; want 1 (then the token endpoint reuses it)", n)
	}
}
