package dpop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// This file holds the token-request plumbing that every grant shares: the
// context's HTTP client, the proof-only transport under x/oauth2's token
// requests, the response size bound, the token checks and the pinned
// client authentication style.

// contextClient returns the context's [oauth2.HTTPClient], else
// [http.DefaultClient], as x/oauth2 does for its own requests.
func contextClient(ctx context.Context) *http.Client {
	if hc, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && hc != nil {
		return hc
	}
	return http.DefaultClient
}

// contextTransport returns the transport of the context's HTTP client, or
// http.DefaultTransport.
func contextTransport(ctx context.Context) http.RoundTripper {
	if t := contextClient(ctx).Transport; t != nil {
		return t
	}
	return http.DefaultTransport
}

// noRedirectClient returns a copy of the context's HTTP client that
// follows no redirect: a request of the token machinery carries client
// credentials, codes, verifiers or refresh tokens, which must reach the
// endpoint they were meant for and nothing else (RFC 6749 §3.2: the token
// endpoint does not redirect). The redirect is an error naming its
// Location.
func noRedirectClient(ctx context.Context) *http.Client {
	hc := *contextClient(ctx)
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		return fmt.Errorf("dpop: %s redirected to %s; a request carrying client credentials or grants follows no redirect (RFC 6749 §3.2)",
			quote(via[0].URL.Redacted()), quote(req.URL.Redacted()))
	}
	return &hc
}

// sameOriginClient returns a copy of the context's HTTP client that
// follows a redirect only within the origin of the first request (scheme,
// host and port), as metadata discovery needs: a document fetched over
// https is never replaced by one from elsewhere.
func sameOriginClient(ctx context.Context) *http.Client {
	hc := *contextClient(ctx)
	check := hc.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if originOf(req.URL, "") != originOf(via[0].URL, "") {
			return fmt.Errorf("dpop: %s redirected to another origin, %s; refused", quote(via[0].URL.Redacted()), quote(req.URL.Redacted()))
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

// tokenParts is what the token-side requests of a grant configuration
// share.
type tokenParts struct {
	signer   *Signer
	nonces   *NonceCache // the authorization server's
	auth     *clientAuth // private_key_jwt, or nil
	trace    *Trace      // or nil
	tokenURL string      // the token endpoint, for the trace
}

// obtained reports a token request of grant, started at start, to p's
// trace, and returns tok and err as they are.
func (p tokenParts) obtained(ctx context.Context, grant GrantType, start time.Time, tok *oauth2.Token, err error) (*oauth2.Token, error) {
	if tr := p.trace; tr != nil {
		var origin, path string
		if u, err := url.Parse(p.tokenURL); err == nil && u.Host != "" {
			origin, _, path = where(originOf(u, ""), &http.Request{URL: u})
		}
		var te *TokenTypeError
		if tr.DowngradeRefused != nil && errors.As(err, &te) && te.Downgrade() {
			tr.DowngradeRefused(DowngradeInfo{Context: ctx, AuthServer: true, Origin: origin, Method: http.MethodPost, Path: path,
				TokenType: te.TokenType})
		}
		if tr.TokenObtained != nil {
			tr.TokenObtained(TokenRequestInfo{Context: ctx, GrantType: grant, Origin: origin, Path: path,
				Duration: timeNow().Sub(start), Err: err})
		}
	}
	return tok, err
}

// tokenContext returns ctx with [tokenClient] as its oauth2.HTTPClient, for
// x/oauth2's token requests.
func tokenContext(ctx context.Context, p tokenParts) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, tokenClient(ctx, p))
}

// tokenClient returns a copy of the context's HTTP client that sends
// proofs without tokens (token endpoint, PAR, revocation), follows no
// redirect and bounds response sizes. With auth (private_key_jwt), every
// attempt of every request it sends carries a new client assertion: the
// assertion layer sits above the DPoP Transport, whose nonce retry asks it
// for a new body. Every request that authenticates the client goes
// through here.
func tokenClient(ctx context.Context, p tokenParts) *http.Client {
	hc := noRedirectClient(ctx)
	var rt http.RoundTripper = &Transport{
		Base:       limitedTransport{contextTransport(ctx)},
		Signer:     p.signer,
		Nonces:     p.nonces,
		Trace:      p.trace,
		authServer: true,
	}
	if p.auth != nil {
		rt = &clientAuthTransport{base: rt, auth: p.auth}
	}
	hc.Transport = rt
	return hc
}

// authClient returns a copy of the context's HTTP client that follows no
// redirect, bounds response sizes and adds client assertions from auth, if
// any, but no proof: for requests that authenticate the client and bind
// nothing, such as device authorization (RFC 8628 §3.1).
func authClient(ctx context.Context, auth *clientAuth) *http.Client {
	hc := noRedirectClient(ctx)
	var rt http.RoundTripper = limitedTransport{contextTransport(ctx)}
	if auth != nil {
		rt = &clientAuthTransport{base: rt, auth: auth}
	}
	hc.Transport = rt
	return hc
}

// failingTransport fails every request with err, for a client that was
// made wrong and must send nothing.
type failingTransport struct{ err error }

func (f failingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return nil, f.err
}

// postForm POSTs form to endpoint with the client authentication of cfg,
// whose AuthStyle the caller pinned (RFC 6749 §2.3.1: Basic with the
// form-encoded credentials, else client_id and any client_secret in the
// body), through [tokenClient]: a proof from p.signer, the server's nonce
// challenge answered, a new client assertion (if any) on every attempt, the
// body bounded by maxTokenResponse. It returns the response
// with its body read and closed. form is modified.
func postForm(ctx context.Context, cfg *oauth2.Config, p tokenParts, endpoint string, form url.Values) (*http.Response, []byte, error) {
	resp, err := sendForm(ctx, cfg, p, endpoint, form)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body) // bounded by the token-request transport
	if err != nil {
		return nil, nil, err
	}
	return resp, body, nil
}

// sendForm sends the request of postForm and returns the response with
// its body unread, for an answer whose body may not be needed; the caller
// closes it.
func sendForm(ctx context.Context, cfg *oauth2.Config, p tokenParts, endpoint string, form url.Values) (*http.Response, error) {
	inHeader := cfg.Endpoint.AuthStyle == oauth2.AuthStyleInHeader
	if !inHeader {
		form.Set("client_id", cfg.ClientID)
		if cfg.ClientSecret != "" {
			form.Set("client_secret", cfg.ClientSecret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, "POST", endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if inHeader {
		req.SetBasicAuth(url.QueryEscape(cfg.ClientID), url.QueryEscape(cfg.ClientSecret))
	}
	return tokenClient(ctx, p).Do(req)
}

// nilContextError is the error of call given a nil context, which
// net/http refuses too.
func nilContextError(call string) error {
	return fmt.Errorf("dpop: %s: the context is nil", call)
}

// checkParts returns an error naming the first required field of a grant
// configuration (owner, such as "Config") that is missing.
func checkParts(owner string, hasOAuth2 bool, s *Signer) error {
	switch {
	case !hasOAuth2:
		return fmt.Errorf("dpop: %s's OAuth2 is nil", owner)
	case s == nil:
		return fmt.Errorf("dpop: %s's Signer is nil", owner)
	case s.key == nil:
		return fmt.Errorf("dpop: %s's Signer has no key: make it with NewSigner", owner)
	}
	return nil
}

// pinAuthStyle replaces AuthStyleAutoDetect with client_secret_basic (RFC
// 6749 §2.3.1) for a confidential client. A public client (no secret)
// always sends client_id in the body and nothing else (§3.2.1), whatever
// the style: x/oauth2's AuthStyleInHeader would send "Basic id:" with an
// empty password.
func pinAuthStyle(style oauth2.AuthStyle, secret string) oauth2.AuthStyle {
	switch {
	case secret == "":
		return oauth2.AuthStyleInParams
	case style == oauth2.AuthStyleAutoDetect:
		return oauth2.AuthStyleInHeader
	}
	return style
}

// checkToken returns tok when it is what RFC 9449 §5 asks of a token
// response to a DPoP request: token_type DPoP (compared
// case-insensitively; Bearer only with allowBearer), and an expires_in that
// is not negative. A token that fails is never handed out.
func checkToken(tok *oauth2.Token, allowBearer bool) (*oauth2.Token, error) {
	tt := tok.TokenType
	switch {
	case strings.EqualFold(tt, "DPoP"):
	case strings.EqualFold(tt, "Bearer") && allowBearer:
	default:
		return nil, &TokenTypeError{TokenType: cleanText(tt, maxCodeText), answered: true}
	}
	if negativeExpiry(tok.Extra("expires_in")) {
		return nil, errors.New("dpop: token response has a negative expires_in (RFC 6749 §5.1: the lifetime in seconds)")
	}
	return tok, nil
}

// negativeExpiry reports whether an expires_in member, as x/oauth2 hands
// it over, is negative: a JSON number (float64 or json.Number) or string,
// or a form value (int64 or float64 when it parses as one, else string).
func negativeExpiry(v any) bool {
	switch v := v.(type) {
	case float64:
		return v < 0 || v == 0 && math.Signbit(v)
	case int64:
		return v < 0
	case json.Number:
		return strings.HasPrefix(strings.TrimSpace(string(v)), "-")
	case string:
		return strings.HasPrefix(strings.TrimSpace(v), "-")
	}
	return false
}

// maxTokenResponse is the largest token-endpoint response body accepted.
// Token responses are small; JWT access tokens make them a few KiB.
const maxTokenResponse = 256 << 10

// limitedTransport fails the body of a token-endpoint response that is
// larger than maxTokenResponse, with an error that says so (x/oauth2 would
// otherwise truncate it at 1 MiB and report unparsable JSON).
type limitedTransport struct{ base http.RoundTripper }

func (l limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, errors.New("dpop: the HTTP client's transport returned neither a response nor an error")
	}
	if resp.Body == nil {
		resp.Body = http.NoBody
	}
	if resp.Request == nil {
		resp.Request = req // as net/http sets it: what was sent, to redact from an error answer
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxTokenResponse}
	return resp, nil
}

// limitedBody closes the body it wraps as soon as a read fails (the
// limit, or an error): a caller that gives up at the error and never
// closes the body (x/oauth2's device authorization request was one) would
// keep its connection, and the server writing to it, alive for ever.
type limitedBody struct {
	rc     io.ReadCloser
	left   int64
	err    error // the failed read's, returned from every later Read
	closed bool
}

var errTokenResponseTooLarge = fmt.Errorf("dpop: token endpoint response is larger than %d bytes", maxTokenResponse)

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.left <= 0 {
		// Allow EOF exactly at the limit; anything more is an error.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			b.err = errTokenResponseTooLarge
			b.Close()
			return 0, b.err
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if err != nil && err != io.EOF {
		b.err = err
		b.Close()
	}
	return n, err
}

func (b *limitedBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	return b.rc.Close()
}

// maxErrorBody is how much of an error answer's body an error keeps.
const maxErrorBody = 4 << 10

// oauthError is the error answer of an authorization server (RFC 6749
// §5.2), which the token, PAR (RFC 9126 §2.3), device authorization and
// polling (RFC 8628 §3.5) and revocation (RFC 7009 §2.2.1) endpoints
// share. It is embedded in the answers that may carry it.
type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorURI         string `json:"error_uri"`
}

// parseOAuthError returns the error answer in body, and whether body is a
// JSON object with an error member.
func parseOAuthError(body []byte) (oauthError, bool) {
	var e oauthError
	if json.Unmarshal(body, &e) != nil {
		return oauthError{}, false
	}
	return e, e.Error != ""
}

// retrieveError returns the [oauth2.RetrieveError] of an error answer
// (RFC 6749 §5.2, RFC 7009 §2.2.1), as x/oauth2 makes it, with at most
// maxErrorBody bytes of the body.
func retrieveError(resp *http.Response, body []byte) *oauth2.RetrieveError {
	e, _ := parseOAuthError(body) // not JSON: the status alone tells
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	return &oauth2.RetrieveError{Response: resp, Body: body,
		ErrorCode: e.Error, ErrorDescription: e.ErrorDescription, ErrorURI: e.ErrorURI}
}
