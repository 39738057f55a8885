// Command backend is a service that calls an API on its own behalf with the
// client credentials grant (RFC 6749 §4.4) and DPoP-bound tokens (RFC 9449),
// from many goroutines sharing one http.Client.
//
// Usage:
//
//	backend -token-url URL -client-id ID -client-secret SECRET -api URL [-workers N] [-requests N] [-nonce-retries N]
//
// The client secret may also come from the environment, DPOP_CLIENT_SECRET,
// which keeps it out of the process list.
//
// What it shows:
//
//   - one Transport (from [dpop.ClientCredentials.Client]) shared by every
//     goroutine: one token request for all of them, proofs signed
//     concurrently, server nonces learnt once and shared;
//   - timeouts: http.Client.Timeout bounds each whole exchange (the nonce
//     retry included), a context deadline bounds each request, and the token
//     requests have an HTTP client of their own with its own timeout;
//   - cancellation: the first error, or Ctrl-C, cancels the requests in
//     flight;
//   - no resend loop: the Transport answers the server's nonce challenges
//     (up to -nonce-retries each), corrects a clock difference and replaces
//     a refused token; the program prints what that cost on the wire:
//     requests per answer, retries, and the challenges by error code;
//   - what errors look like: a *dpop.TokenError from the token
//     endpoint, a *dpop.TokenTypeError for a Bearer downgrade, a
//     *dpop.ChallengeError (from dpop.CheckResponse) for a resource server's
//     refusal.
//
// The DPoP key is made at start and lives in memory only: a service that
// uses client credentials can get a new token for a new key at any time, so
// it has no key to keep (see the keystore package when it must).
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dpopkit/dpop"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type options struct {
	tokenURL, clientID, clientSecret string
	scopes                           []string
	api                              string
	workers, requests                int
	nonceRetries                     int // -1: the Transport's default
	timeout, requestTimeout          time.Duration
}

func parseArgs(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	var scopes string
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.tokenURL, "token-url", "", "token endpoint of the authorization server")
	fs.StringVar(&o.clientID, "client-id", "", "client ID")
	fs.StringVar(&o.clientSecret, "client-secret", os.Getenv("DPOP_CLIENT_SECRET"), "client secret (env DPOP_CLIENT_SECRET)")
	fs.StringVar(&scopes, "scopes", "", "scopes to ask for, space or comma separated")
	fs.StringVar(&o.api, "api", "", "URL of the API to call")
	fs.IntVar(&o.workers, "workers", 4, "goroutines calling the API at once")
	fs.IntVar(&o.requests, "requests", 10, "requests per goroutine")
	fs.IntVar(&o.nonceRetries, "nonce-retries", -1, "use_dpop_nonce challenges a request may answer (Transport.NonceRetries); -1: the SDK's default")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "http.Client.Timeout: bounds each whole exchange, nonce retry included")
	fs.DurationVar(&o.requestTimeout, "request-timeout", 10*time.Second, "context deadline of each request")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.scopes = strings.FieldsFunc(scopes, func(r rune) bool { return r == ' ' || r == ',' })
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("backend: unexpected arguments %q", fs.Args())
	case o.tokenURL == "" || o.clientID == "" || o.api == "":
		return nil, errors.New("backend: -token-url, -client-id and -api are required")
	case o.workers < 1 || o.requests < 1:
		return nil, errors.New("backend: -workers and -requests must be at least 1")
	case o.timeout <= 0 || o.requestTimeout <= 0:
		return nil, errors.New("backend: -timeout and -request-timeout must be positive")
	}
	return o, nil
}

// run calls the API workers×requests times and returns the first error, by
// then wrapped so that errors.As finds the SDK's and x/oauth2's error types.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	signer, err := dpop.NewSigner(key, nil)
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{
			ClientID:     o.clientID,
			ClientSecret: o.clientSecret,
			TokenURL:     o.tokenURL,
			Scopes:       o.scopes,
		},
		Signer: signer,
	}

	// Token requests use the context's HTTP client. They run inside the
	// RoundTrip of whichever API request finds no valid token, but not on
	// that request's context (oauth2.TokenSource takes none): give them a
	// timeout of their own. The context they run on is this one, so
	// cancelling the run cancels them too.
	// The wire counter sits under the Transport: it sees every request
	// sent, retries included, and every answer before the Transport acts
	// on it.
	wire := &wireCounter{base: http.DefaultTransport, api: o.api}
	tokenCtx := context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: o.requestTimeout, Transport: wire})
	client := cc.Client(tokenCtx) // one Transport, one token source, for every goroutine
	client.Timeout = o.timeout
	if o.nonceRetries >= 0 {
		n := o.nonceRetries
		client.Transport.(*dpop.Transport).NonceRetries = func(*http.Request) int { return n }
	}

	start := time.Now()
	statuses, first := work(ctx, client, o)
	if first != nil {
		describe(stderr, first)
	}
	done := 0
	for _, n := range statuses {
		done += n
	}
	fmt.Fprintf(stdout, "%d of %d requests answered in %v by %d workers:", done, o.workers*o.requests, time.Since(start).Round(time.Millisecond), o.workers)
	for _, s := range slices.Sorted(maps.Keys(statuses)) {
		fmt.Fprintf(stdout, " status %d: %d", s, statuses[s])
	}
	fmt.Fprintln(stdout)
	wire.report(stdout, done)
	return first
}

// work runs o.workers goroutines of o.requests requests each through
// client, and returns how many answers of each status they got, and the
// first error, which stops the others.
func work(ctx context.Context, client *http.Client, o *options) (map[int]int, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	results := make(chan result, o.workers)
	for w := range o.workers {
		go func() {
			var r result
			for i := range o.requests {
				status, err := call(ctx, client, o, w, i)
				if err != nil {
					r.err = err
					cancel(err) // stop the other workers: the first error is the answer
					break
				}
				if r.statuses == nil {
					r.statuses = map[int]int{}
				}
				r.statuses[status]++
			}
			results <- r
		}()
	}
	statuses := map[int]int{}
	var first error
	for range o.workers {
		r := <-results
		for s, n := range r.statuses {
			statuses[s] += n
		}
		if first == nil && r.err != nil {
			first = r.err
		}
	}
	if first != nil {
		// The cause of the cancellation is the first error that happened;
		// others may have been the cancellation itself.
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			first = cause
		}
	}
	return statuses, first
}

type result struct {
	statuses map[int]int
	err      error
}

// call sends one request, bounded by its own deadline. There is no resend
// loop: the Transport answers nonce challenges (within its bound, see
// -nonce-retries), mends a clock difference and replaces a refused token.
func call(ctx context.Context, client *http.Client, o *options, worker, n int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, o.requestTimeout)
	defer cancel()
	return send(ctx, client, o.api, worker, n)
}

// send sends one request. Every request has a body: net/http sets GetBody
// for a strings.Reader, so the Transport can send it again after a nonce
// challenge.
func send(ctx context.Context, client *http.Client, api string, worker, n int) (int, error) {
	body := fmt.Sprintf(`{"worker":%d,"request":%d}`, worker, n)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api, strings.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("backend: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("backend: worker %d request %d: %w", worker, n, err)
	}
	defer resp.Body.Close()
	challenge := dpop.CheckResponse(resp)
	// Read the body to the end (bounded), so the connection is reused.
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)); err != nil {
		return 0, fmt.Errorf("backend: worker %d request %d: reading the answer: %w", worker, n, err)
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, &apiError{Status: resp.Status, Challenge: challenge}
	}
	return resp.StatusCode, nil
}

// apiError is an API answer other than 2xx. Challenge is the DPoP
// challenge in it (a *dpop.ChallengeError), if any.
type apiError struct {
	Status    string
	Challenge error
}

func (e *apiError) Error() string {
	if e.Challenge != nil {
		return fmt.Sprintf("backend: the API answered %s: %v", e.Status, e.Challenge)
	}
	return "backend: the API answered " + e.Status
}

func (e *apiError) Unwrap() error { return e.Challenge }

// describe prints what a program would branch on for each kind of error.
func describe(w io.Writer, err error) {
	var (
		te  *dpop.TokenError
		tte *dpop.TokenTypeError
		ce  *dpop.ChallengeError
	)
	switch {
	case errors.As(err, &te):
		fmt.Fprintf(w, "backend: the token endpoint refused: HTTP %d, error %q, description %q\n", te.StatusCode, te.ErrorCode, te.Description)
		if te.ErrorCode == "invalid_client" {
			fmt.Fprintln(w, "backend: check -client-id and -client-secret")
		}
	case errors.As(err, &tte):
		fmt.Fprintf(w, "backend: the token endpoint answered token_type %q (Bearer downgrade: %v); the token is not bound to the key\n", tte.TokenType, tte.Downgrade())
	case errors.As(err, &ce):
		fmt.Fprintf(w, "backend: DPoP challenge from the API: status %d, error %q, description %q, algs %q\n", ce.StatusCode, ce.ErrorCode, ce.Description, ce.Algs)
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintln(w, "backend: a request timed out (-timeout or -request-timeout)")
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(w, "backend: canceled")
	}
}

// wireCounter is an http.RoundTripper that counts what goes over the wire
// to the API: requests (the Transport's retries included) and the DPoP
// challenges answered, by error code.
type wireCounter struct {
	base http.RoundTripper
	api  string

	mu         sync.Mutex // guards the fields below
	requests   int
	challenges map[string]int
}

func (w *wireCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := w.base.RoundTrip(req)
	if req.URL.String() != w.api {
		return resp, err // the token endpoint
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.requests++
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		var ce *dpop.ChallengeError
		if errors.As(dpop.CheckResponse(resp), &ce) {
			if w.challenges == nil {
				w.challenges = map[string]int{}
			}
			w.challenges[ce.ErrorCode]++
		}
	}
	return resp, err
}

// report prints the requests on the wire per answer, the challenges and
// the retries the Transport made.
func (w *wireCounter) report(out io.Writer, answers int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	per := 0.0
	if answers > 0 {
		per = float64(w.requests) / float64(answers)
	}
	fmt.Fprintf(out, "on the wire: %d requests for %d answers (%.3f per answer), %d retries;", w.requests, answers, per, w.requests-answers)
	if len(w.challenges) == 0 {
		fmt.Fprint(out, " no challenges")
	}
	for _, code := range slices.Sorted(maps.Keys(w.challenges)) {
		fmt.Fprintf(out, " %s: %d", code, w.challenges[code])
	}
	fmt.Fprintln(out)
}
