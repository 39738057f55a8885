// Command demo walks through DPoP (RFC 9449) end to end in one process:
// Generate a key, Bind tokens to it, and watch the servers Verify it.
//
// It starts the strict authorization server and resource server of package
// dpoptest on 127.0.0.1 (no other network, no setup), demanding nonces and
// rotating them every 3 proofs, and then
//
//  1. generates the client's P-256 key and shows its thumbprint (jkt);
//  2. gets a token with the client credentials grant;
//  3. logs the test user in with an authorization code, PKCE and dpop_jkt,
//     playing the browser itself;
//  4. calls the API: the resource server demands a nonce and the
//     dpop.Transport retries once, also after the server rotates its nonce;
//  5. refreshes the expired token with the same key;
//  6. lets an attacker use the stolen access token with another key, and as
//     a Bearer token: both refused (invalid_token);
//  7. lets an attacker resend a captured request verbatim, proof and all:
//     refused (invalid_dpop_proof), as its jti was seen.
//
// A tracing http.RoundTripper under each dpop.Transport (its Base) shows
// every attempt on the wire: the decoded proof, the nonce sent and the one
// the server answered, and why a retry happened. The SDK is used as is.
// Each step checks that the servers behaved as shown; if one did not, the
// demo exits with status 1 and an error naming the step.
//
// Usage:
//
//	go run ./examples/demo         # a trace; colour on a terminal unless NO_COLOR is set
//	go run ./examples/demo -json   # one JSON object per event: step, request, info, check, result
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"
)

// options configure run.
type options struct {
	json  bool // one JSON object per line instead of the trace
	color bool // ANSI colours in the trace

	// attackerHasKey hands the attacker of step 6 the client's key, so the
	// stolen token is accepted and the step must fail. It exists for the
	// tests, to prove that the demo's checks can fail.
	attackerHasKey bool
}

// timeout bounds a whole run; it takes well under a second.
const timeout = 30 * time.Second

func main() {
	var opts options
	flag.BoolVar(&opts.json, "json", false, "print one JSON object per line per event instead of the trace")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: demo [-json]\n\nRuns an in-process DPoP authorization server and resource server on 127.0.0.1\nand traces a client through them.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	opts.color = !opts.json && colorOutput()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// colorOutput reports whether stdout is a terminal that wants colour
// (https://no-color.org).
func colorOutput() bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := os.Stdout.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// run performs the steps in order, writing their trace to w, and returns an
// error naming the first step that did not behave as shown.
func run(ctx context.Context, w io.Writer, opts options) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	start := time.Now()
	out := newPrinter(w, opts)
	d := newDemo(out, opts)
	defer d.close()
	ctx = d.tracedContext(ctx)

	steps := d.steps()
	for i, s := range steps {
		out.beginStep(i+1, s.name, s.title)
		if err := s.run(ctx); err != nil {
			err = fmt.Errorf("demo: step %d (%s): %w", i+1, s.name, err)
			out.result(resultEvent{
				Steps:      i,
				Requests:   d.log.mark(),
				ElapsedMS:  time.Since(start).Milliseconds(),
				FailedStep: i + 1,
				Error:      err.Error(),
			})
			return err
		}
	}
	out.result(resultEvent{
		OK:        true,
		Steps:     len(steps),
		Requests:  d.log.mark(),
		ElapsedMS: time.Since(start).Milliseconds(),
	})
	return out.writeErr()
}
