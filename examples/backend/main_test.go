package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
)

func backendArgs(srv *dpoptest.Server, secret, api string, extra ...string) []string {
	return append([]string{
		"-token-url", srv.Endpoint().TokenURL,
		"-client-id", "backend", "-client-secret", secret,
		"-api", api,
	}, extra...)
}

func TestRunManyWorkersOneToken(t *testing.T) {
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true, NonceEvery: 5, NonceWindow: 64})
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), backendArgs(srv, "backend-secret", srv.URL+"/api/things", "-workers", "8", "-requests", "50"), &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	if want := "400 of 400 requests answered"; !strings.Contains(stdout.String(), want) || !strings.Contains(stdout.String(), "status 200: 400\n") {
		t.Errorf("stdout = %q; want %q and status 200: 400", stdout.String(), want)
	}
	tokens, resources := 0, 0
	for _, r := range srv.Requests() {
		switch {
		case r.Kind == "token" && r.Status == http.StatusOK:
			tokens++
		case r.Kind == "resource" && r.Status == http.StatusOK:
			resources++
			if r.Proof == nil || r.Proof.ATH == "" {
				t.Errorf("resource request without a proof carrying ath: %+v", r)
			}
		case r.Kind == "resource" && r.Error != dpop.CodeUseNonce:
			t.Errorf("resource request failed other than with a nonce challenge: %+v", r)
		}
	}
	if tokens != 1 {
		t.Errorf("successful token requests = %d; want 1", tokens)
	}
	t.Log(stdout.String())
	// The figures printed are the server's: every request on the wire,
	// every challenge.
	wire, challenges := 0, 0
	for _, r := range srv.Requests() {
		if r.Kind == "resource" {
			wire++
			if r.Error == dpop.CodeUseNonce {
				challenges++
			}
		}
	}
	want := fmt.Sprintf("on the wire: %d requests for 400 answers (%.3f per answer), %d retries;", wire, float64(wire)/400, wire-400)
	if challenges > 0 {
		want += fmt.Sprintf(" use_dpop_nonce: %d\n", challenges)
	}
	if !strings.Contains(stdout.String(), want) {
		t.Errorf("stdout = %q; want %q", stdout.String(), want)
	}
	if resources != 400 {
		t.Errorf("successful resource requests = %d; want 400", resources)
	}
}

func TestRunWrongSecret(t *testing.T) {
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), backendArgs(srv, "wrong", srv.URL+"/api/things", "-workers", "4", "-requests", "3"), &stdout, &stderr)
	var te *dpop.TokenError
	if !errors.As(err, &te) || te.ErrorCode != "invalid_client" {
		t.Fatalf("run = %v; want a *dpop.TokenError with invalid_client", err)
	}
	if !strings.Contains(stderr.String(), `error "invalid_client"`) {
		t.Errorf("stderr = %q; want the token endpoint's error described", stderr.String())
	}
}

func TestRunBearerDowngrade(t *testing.T) {
	srv := dpoptest.NewServer(&dpoptest.Config{TokenType: "Bearer"})
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), backendArgs(srv, "backend-secret", srv.URL+"/api/things", "-workers", "2", "-requests", "2"), &stdout, &stderr)
	var tte *dpop.TokenTypeError
	if !errors.As(err, &tte) || !tte.Downgrade() {
		t.Fatalf("run = %v; want a *dpop.TokenTypeError downgrade", err)
	}
}

func TestRunChallenge(t *testing.T) {
	// The token comes from one server, the API is another's: it did not
	// mint the token, so it answers 401 invalid_token.
	as := dpoptest.NewServer(nil)
	defer as.Close()
	rs := dpoptest.NewServer(nil)
	defer rs.Close()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), backendArgs(as, "backend-secret", rs.URL+"/api/things", "-workers", "2", "-requests", "2"), &stdout, &stderr)
	var ce *dpop.ChallengeError
	if !errors.As(err, &ce) || ce.StatusCode != http.StatusUnauthorized || ce.ErrorCode != dpop.CodeInvalidToken {
		t.Fatalf("run = %v; want a 401 *dpop.ChallengeError invalid_token", err)
	}
	if !strings.Contains(stderr.String(), "DPoP challenge") {
		t.Errorf("stderr = %q; want the challenge described", stderr.String())
	}
}

func TestRunRequestTimeout(t *testing.T) {
	srv := dpoptest.NewServer(nil)
	defer srv.Close()
	release := make(chan struct{})
	defer close(release)
	srv.Handle("/slow/", slowHandler(release, nil))
	start := time.Now()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), backendArgs(srv, "backend-secret", srv.URL+"/slow/x", "-workers", "3", "-requests", "5", "-request-timeout", "200ms"), &stdout, &stderr)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run = %v; want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("run took %v; want the first timeout to cancel the rest", d)
	}
}

func TestRunClientTimeout(t *testing.T) {
	srv := dpoptest.NewServer(nil)
	defer srv.Close()
	release := make(chan struct{})
	defer close(release)
	srv.Handle("/slow/", slowHandler(release, nil))
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), backendArgs(srv, "backend-secret", srv.URL+"/slow/x", "-workers", "1", "-requests", "1", "-timeout", "200ms"), &stdout, &stderr)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run = %v; want an http.Client.Timeout error matching context.DeadlineExceeded", err)
	}
}

func TestRunCanceled(t *testing.T) {
	srv := dpoptest.NewServer(nil)
	defer srv.Close()
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The operator presses Ctrl-C while requests are in flight.
	srv.Handle("/slow/", slowHandler(release, cancel))
	var stdout, stderr bytes.Buffer
	err := run(ctx, backendArgs(srv, "backend-secret", srv.URL+"/slow/x", "-workers", "4", "-requests", "100"), &stdout, &stderr)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("run = %v; want context.Canceled", err)
	}
}

// slowHandler answers only when the client goes away or release is closed.
// It calls onRequest, if set, first.
func slowHandler(release <-chan struct{}, onRequest func()) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// net/http notices a closed connection (and cancels r.Context())
		// only once the request body has been read.
		io.Copy(io.Discard, r.Body)
		if onRequest != nil {
			onRequest()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
}

func TestParseArgs(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-token-url", "http://x/token", "-client-id", "c"},
		{"-token-url", "http://x/token", "-client-id", "c", "-api", "http://x/api", "-workers", "0"},
		{"-token-url", "http://x/token", "-client-id", "c", "-api", "http://x/api", "extra"},
	} {
		if _, err := parseArgs(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parseArgs(%q) = nil error; want one", args)
		}
	}
	o, err := parseArgs([]string{"-token-url", "http://x/token", "-client-id", "c", "-api", "http://x/api", "-scopes", "a b,c"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.scopes, "|") != "a|b|c" {
		t.Errorf("scopes = %q; want [a b c]", o.scopes)
	}
}
