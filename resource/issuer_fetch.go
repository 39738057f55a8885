package resource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// This file holds what the token verifiers share to talk to the
// authorization server: the URL rule, the redirect policy and the bounded
// read of an answer.

const (
	// maxIssuerDocument bounds a metadata document or a key set read from the
	// authorization server.
	maxIssuerDocument = 1 << 20

	// issuerTimeout bounds each request to the authorization server when
	// the configuration sets no timeout.
	issuerTimeout = 10 * time.Second
)

// httpsURL parses raw, the value of what, and returns it when it is an
// absolute https URL, or an http URL on a loopback address (RFC 8414 §2,
// RFC 8252 §8.3), without a fragment.
func httpsURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("dpop: %s %s is not an absolute URL without user info and fragment", what, quoteUntrusted(raw))
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !loopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("dpop: %s %s must use https; plain http is allowed on loopback only", what, quoteUntrusted(raw))
		}
	default:
		return nil, fmt.Errorf("dpop: %s %s is not an http or https URL", what, quoteUntrusted(raw))
	}
	return u, nil
}

// loopbackHost reports whether host names this machine: a loopback IP
// address or "localhost" (RFC 8252 §8.3).
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// issuerClient returns a copy of c (nil means [http.DefaultClient]) for
// requests to the authorization server. With sameOrigin it follows a
// redirect only within the origin (scheme, host and port) of the first
// request, as a metadata document or key set fetched over https must never
// be replaced by one from elsewhere; without, it follows none, as a request
// carrying client credentials must reach the endpoint it was meant for.
func issuerClient(c *http.Client, sameOrigin bool) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	hc := *c
	check := c.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		if !sameOrigin {
			return fmt.Errorf("dpop: %s redirected; a request carrying client credentials follows no redirect", quoteUntrusted(redactURL(first)))
		}
		if !strings.EqualFold(req.URL.Scheme, first.Scheme) || !strings.EqualFold(req.URL.Host, first.Host) {
			return fmt.Errorf("dpop: %s redirected to another origin, %s; refused", quoteUntrusted(redactURL(first)), quoteUntrusted(redactURL(req.URL)))
		}
		if check != nil {
			return check(req, via)
		}
		if len(via) >= 10 {
			return errors.New("dpop: stopped after 10 redirects")
		}
		return nil
	}
	return &hc
}

// redactURL returns u without user info, query and fragment, for messages.
func redactURL(u *url.URL) string {
	v := *u
	v.User, v.RawQuery, v.ForceQuery, v.Fragment, v.RawFragment = nil, "", false, "", ""
	return v.String()
}

// getIssuerDocument GETs the JSON document at loc with c, within timeout, and
// returns its body when the status is 200 and the body is at most
// maxIssuerDocument bytes. Its errors are *[IssuerError].
func getIssuerDocument(ctx context.Context, c *http.Client, loc string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return nil, &IssuerError{URL: loc, Err: err}
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, &IssuerError{URL: redactURL(req.URL), Err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	return readIssuerAnswer(resp, maxIssuerDocument)
}

// readIssuerAnswer reads the body of resp, at most limit bytes, and returns it
// when the status is 200. Its errors are *[IssuerError] and quote nothing
// of the body.
func readIssuerAnswer(resp *http.Response, limit int64) ([]byte, error) {
	loc := redactURL(resp.Request.URL)
	if resp.StatusCode != http.StatusOK {
		return nil, &IssuerError{URL: loc, StatusCode: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, &IssuerError{URL: loc, StatusCode: resp.StatusCode, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if int64(len(body)) > limit {
		return nil, &IssuerError{URL: loc, StatusCode: resp.StatusCode, Err: fmt.Errorf("answer larger than %d bytes", limit)}
	}
	return body, nil
}

// unwrapURLError returns the cause of a *url.Error (whose text repeats the
// URL, which an IssuerError already names), or err.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
