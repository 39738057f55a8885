package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
)

// reply is the outcome of one API call, after any retry.
type reply struct {
	status    int
	challenge *dpop.ChallengeError // the DPoP error of a refusal, or nil
	echo      echo                 // what the RS saw, on success
}

// echo is the answer of dpoptest's resource at /api/.
type echo struct {
	Method     string `json:"method"`
	Path       string `json:"path"`
	Subject    string `json:"subject"`
	JKT        string `json:"jkt"`
	BodySHA256 string `json:"body_sha256"`
}

// send makes one API call with hc: to d.srv.URL+target when target is a
// path, else to target. header is added to the request as is.
func (d *demo) send(ctx context.Context, hc *http.Client, method, target, body string, header http.Header) (*reply, error) {
	if strings.HasPrefix(target, "/") {
		target = d.srv.URL + target
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body) // sets GetBody: the Transport may send it again
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	r := &reply{status: resp.StatusCode}
	if err := dpop.CheckResponse(resp); err != nil {
		if !errors.As(err, &r.challenge) {
			return nil, err
		}
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r.echo); err != nil {
			return nil, fmt.Errorf("%s %s: reading the answer: %w", method, target, err)
		}
	}
	return r, nil
}

// callOK makes an API call as alice and checks that the RS accepted it and
// saw her, our key and the body sent.
func (d *demo) callOK(ctx context.Context, method, path, body string) (*reply, error) {
	r, err := d.send(ctx, d.api, method, path, body, nil)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, fmt.Errorf("%s %s: status %d %s; want 200", method, path, r.status, errorCode(r))
	}
	sum := sha256.Sum256([]byte(body))
	switch e := r.echo; {
	case e.Subject != dpoptest.TestUser:
		return nil, fmt.Errorf("%s %s: the RS saw subject %q; want %q", method, path, e.Subject, dpoptest.TestUser)
	case e.JKT != d.key.Thumbprint():
		return nil, fmt.Errorf("%s %s: the RS saw jkt %q; want %q", method, path, e.JKT, d.key.Thumbprint())
	case e.BodySHA256 != hex.EncodeToString(sum[:]):
		return nil, fmt.Errorf("%s %s: the RS saw another body (sha256 %s)", method, path, e.BodySHA256)
	}
	info := joinKV("subject", r.echo.Subject, "jkt", short(r.echo.JKT)+" (ours)")
	if body != "" {
		info += " body_sha256=" + short(r.echo.BodySHA256) + " (matches)"
	}
	d.out.info("RS answered", info)
	return r, nil
}

// expectRefused checks that the RS refused a call with 401 and the DPoP
// error code want.
func (d *demo) expectRefused(r *reply, want, what string) error {
	ok := r.status == http.StatusUnauthorized && r.challenge != nil && r.challenge.ErrorCode == want
	return d.expect(ok, what, fmt.Sprintf("%d %s", r.status, errorCode(r)))
}

// errorCode returns the DPoP error code of a reply, else its status text.
func errorCode(r *reply) string {
	if r.challenge == nil || r.challenge.ErrorCode == "" {
		return http.StatusText(r.status)
	}
	return r.challenge.ErrorCode
}

// expect reports a check and, when it failed, returns an error saying what
// was expected and what was seen.
func (d *demo) expect(ok bool, what, got string) error {
	d.out.check(what, ok, got)
	if ok {
		return nil
	}
	return fmt.Errorf("want: %s; got: %s", what, got)
}

// expectRetries checks the number of the Transport's retries since mark.
func (d *demo) expectRetries(mark, want int, what string) error {
	n := d.log.retries(mark)
	return d.expect(n == want, what, fmt.Sprintf("%d retries", n))
}
