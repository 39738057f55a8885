package dpop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// DeviceAuth starts the device authorization grant (RFC 8628 §3.1). The
// request needs no proof; the token requests that follow carry one. Show
// the user the returned UserCode and VerificationURI, or encode
// VerificationURIComplete in a QR code (§3.3.1); then call
// [Config.DeviceAccessToken]. The request ends when ctx does.
//
// The answer is checked before it is returned (§3.2): device_code,
// user_code, verification_uri (or verification_url, as Google spells it)
// and expires_in are required, and an answer without expires_in is
// refused rather than polled until the caller gives up; Expiry is at most
// an hour away. What a person will read is checked too (§3.3): the
// verification URIs must be https (plain http only on loopback addresses)
// without userinfo, and they and the user code must be printable text of
// reasonable length, without the control characters that rewrite a
// terminal's screen or the bidirectional ones that reorder it.
func (c *Config) DeviceAuth(ctx context.Context, opts ...oauth2.AuthCodeOption) (*oauth2.DeviceAuthResponse, error) {
	if ctx == nil {
		return nil, nilContextError("Config.DeviceAuth")
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	cfg := c.OAuth2
	if cfg.Endpoint.DeviceAuthURL == "" {
		return nil, errors.New("dpop: Config's OAuth2.Endpoint.DeviceAuthURL is empty")
	}
	// The parameters x/oauth2 sends (§3.1), with the request's context,
	// which x/oauth2 leaves out.
	form := url.Values{"client_id": {cfg.ClientID}}
	if len(cfg.Scopes) > 0 {
		form.Set("scope", strings.Join(cfg.Scopes, " "))
	}
	for k, v := range optionValues(opts) {
		form[k] = v
	}
	req, err := http.NewRequestWithContext(ctx, "POST", cfg.Endpoint.DeviceAuthURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, requestError("device authorization", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := authClient(ctx, c.clientAuth()).Do(req)
	if err != nil {
		return nil, requestError("device authorization", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body) // bounded by the token-request transport
	if err != nil {
		return nil, requestError("device authorization", err)
	}
	da, err := parseDeviceAuth(resp, body, timeNow())
	if err != nil {
		return nil, requestError("device authorization", err)
	}
	return da, nil
}

// maxDeviceLifetime bounds how long a device code is polled for: the
// expires_in of a device authorization answer is capped at it, and
// DeviceAccessToken stops after it when given a device authorization
// without an expiry. Servers give minutes (RFC 8628 §3.2's example: 30).
const maxDeviceLifetime = time.Hour

// maxUserCode and maxShownURI bound the user code and the verification
// URIs of a device authorization: text a person reads off a screen, and
// types (RFC 8628 §6.1 suggests 8 characters for the code).
const (
	maxUserCode = 64
	maxShownURI = 2048
)

// parseDeviceAuth reads a device authorization answer that arrived at now
// (RFC 8628 §3.2). A non-2xx answer is an *oauth2.RetrieveError; a 2xx one
// must be a JSON object with the required members, and what it shows a
// person must pass checkDeviceAuth.
func parseDeviceAuth(resp *http.Response, body []byte, now time.Time) (*oauth2.DeviceAuthResponse, error) {
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, retrieveError(resp, body)
	}
	var dj struct {
		DeviceCode              string          `json:"device_code"`
		UserCode                string          `json:"user_code"`
		VerificationURI         string          `json:"verification_uri"`
		VerificationURL         string          `json:"verification_url"` // Google's spelling, which x/oauth2 accepts too
		VerificationURIComplete string          `json:"verification_uri_complete"`
		ExpiresIn               json.RawMessage `json:"expires_in"`
		Interval                json.RawMessage `json:"interval"`
	}
	if err := json.Unmarshal(body, &dj); err != nil {
		return nil, fmt.Errorf("the answer is not a JSON device authorization response: %w", err)
	}
	da := &oauth2.DeviceAuthResponse{DeviceCode: dj.DeviceCode, UserCode: dj.UserCode,
		VerificationURI: dj.VerificationURI, VerificationURIComplete: dj.VerificationURIComplete}
	if da.VerificationURI == "" {
		da.VerificationURI = dj.VerificationURL
	}
	if string(dj.ExpiresIn) == "null" {
		dj.ExpiresIn = nil
	}
	if string(dj.Interval) == "null" {
		dj.Interval = nil // absent: 5 seconds
	}
	switch {
	case da.DeviceCode == "":
		return nil, errors.New("the answer has no device_code (RFC 8628 §3.2)")
	case da.UserCode == "":
		return nil, errors.New("the answer has no user_code (RFC 8628 §3.2)")
	case da.VerificationURI == "":
		return nil, errors.New("the answer has no verification_uri (RFC 8628 §3.2)")
	case dj.ExpiresIn == nil:
		return nil, errors.New("the answer has no expires_in, which RFC 8628 §3.2 requires: the device code's lifetime bounds the polling")
	}
	n, ok := seconds(dj.ExpiresIn)
	if !ok || n == 0 {
		return nil, fmt.Errorf("the answer's expires_in %s is not a positive number of seconds (RFC 8628 §3.2)", quote(string(dj.ExpiresIn)))
	}
	da.Expiry = now.Add(time.Duration(min(n, int64(maxDeviceLifetime/time.Second))) * time.Second)
	if dj.Interval != nil {
		if da.Interval, ok = seconds(dj.Interval); !ok {
			return nil, fmt.Errorf("the answer's interval %s is not a number of seconds (RFC 8628 §3.2)", quote(string(dj.Interval)))
		}
	}
	if err := checkDeviceAuth(da); err != nil {
		return nil, err
	}
	return da, nil
}

// seconds returns the value of a JSON member that must be a whole number
// of seconds, not negative; one beyond int64 is math.MaxInt64.
func seconds(raw json.RawMessage) (int64, bool) {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if errors.Is(err, strconv.ErrRange) && n > 0 {
		return math.MaxInt64, true
	}
	return n, err == nil && n >= 0
}

// checkDeviceAuth returns an error unless what da shows a person (RFC
// 8628 §3.3) is safe to show: a user code and verification URIs that pass
// checkShown, URIs that are https (http on loopback) and without userinfo
// ("https://as.example@evil.example/" goes to evil.example). Empty ones
// pass: parseDeviceAuth requires what the RFC does.
func checkDeviceAuth(da *oauth2.DeviceAuthResponse) error {
	if err := checkShown("user_code", da.UserCode, maxUserCode); err != nil {
		return err
	}
	for _, u := range [...]struct{ name, uri string }{
		{"verification_uri", da.VerificationURI},
		{"verification_uri_complete", da.VerificationURIComplete},
	} {
		if u.uri == "" {
			continue
		}
		if err := checkShown(u.name, u.uri, maxShownURI); err != nil {
			return err
		}
		if _, err := secureURL(u.uri); err != nil {
			return fmt.Errorf("%s: %w", u.name, err)
		}
		if pu, _ := url.Parse(u.uri); pu.User != nil {
			return fmt.Errorf("%s %s has userinfo, which makes a person misread its host", u.name, quote(u.uri))
		}
	}
	return nil
}

// checkShown returns an error unless s, the value of name that a person
// will read, is at most max bytes of printable UTF-8: no control
// characters (an escape sequence rewrites a terminal's screen, a newline
// adds a line of the server's choosing), no bidirectional controls (they
// reorder what is shown), no other format characters or separators.
func checkShown(name, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s is longer than %d bytes", name, max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %s is not UTF-8", name, quote(s))
	}
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Bidi_Control, r):
			return fmt.Errorf("%s %s has a bidirectional control character", name, quote(s))
		case !unicode.IsPrint(r):
			return fmt.Errorf("%s %s has a control or other non-printing character", name, quote(s))
		}
	}
	return nil
}

// DeviceStatus is the state of a device authorization grant that
// [Config.DeviceAccessToken] reports to [Config.DeviceProgress] while it
// waits for the user (RFC 8628 §3.3–3.5).
type DeviceStatus struct {
	// Auth is the device authorization being polled: show its UserCode
	// and VerificationURI, or VerificationURIComplete as a QR code.
	// It must not be modified.
	Auth *oauth2.DeviceAuthResponse

	// Polls is the number of token requests made so far: 0 before the
	// first one.
	Polls int

	// ErrorCode is the last poll's answer: "authorization_pending",
	// "slow_down" (§3.5), or "" before the first poll and after a poll
	// that got no OAuth answer (a 429 or 503, or a connection timeout).
	ErrorCode string

	// Wait is how long DeviceAccessToken waits before the next poll: the
	// interval, raised by slow_down and by a Retry-After header.
	Wait time.Duration
}

// DeviceAccessToken polls the token endpoint until the user approves the
// device (RFC 8628 §3.4, §3.5) and returns a DPoP-bound token. Each poll
// carries a new proof. It waits the interval the server asked for (5
// seconds if none) between polls, 5 seconds more for this and every later
// poll after slow_down (§3.5), at least a Retry-After the server sends, and
// twice as long after a connection timeout (§3.5). It stops at da.Expiry,
// when ctx ends, and at any other answer: access_denied and expired_token
// are a [*TokenError]. Before the first poll and after
// each poll that leaves it waiting, it calls [Config.DeviceProgress].
func (c *Config) DeviceAccessToken(ctx context.Context, da *oauth2.DeviceAuthResponse, opts ...oauth2.AuthCodeOption) (*oauth2.Token, error) {
	if ctx == nil {
		return nil, nilContextError("Config.DeviceAccessToken")
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	start := timeNow()
	tok, err := c.pollDevice(ctx, da, opts)
	return c.parts().obtained(ctx, GrantDeviceCode, start, tok, err)
}

// pollDevice polls the token endpoint for DeviceAccessToken.
func (c *Config) pollDevice(ctx context.Context, da *oauth2.DeviceAuthResponse, opts []oauth2.AuthCodeOption) (*oauth2.Token, error) {
	if da == nil || da.DeviceCode == "" {
		return nil, errors.New("dpop: device access token: no device code")
	}
	if err := checkDeviceAuth(da); err != nil {
		return nil, &opError{"device access token", err}
	}
	deadline := timeNow().Add(maxDeviceLifetime) // also for a da without an Expiry (x/oauth2 makes one)
	if !da.Expiry.IsZero() && da.Expiry.Before(deadline) {
		deadline = da.Expiry
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	cfg := c.oauth2()
	form := optionValues(opts)
	form.Set("grant_type", "urn:ietf:params:oauth:grant-type:device_code")
	form.Set("device_code", da.DeviceCode)
	if len(cfg.Scopes) > 0 {
		form.Set("scope", strings.Join(cfg.Scopes, " "))
	}
	st := DeviceStatus{Auth: da, Wait: deviceInterval(da.Interval)}
	interval := st.Wait
	for {
		c.report(st)
		t := time.NewTimer(st.Wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, requestError("device access token", ctx.Err())
		case <-t.C:
		}
		st.Polls++
		resp, body, err := postForm(ctx, cfg, c.parts(), cfg.Endpoint.TokenURL, cloneValues(form))
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() && ctx.Err() == nil {
				interval = min(2*interval, maxWait) // §3.5: back off after a connection timeout
				st.ErrorCode, st.Wait = "", interval
				continue
			}
			return nil, requestError("device access token", err)
		}
		tok, code, err := parseTokenResponse(resp, body)
		switch {
		case code == "slow_down":
			interval = min(interval+5*time.Second, maxWait) // §3.5: for this and all later polls
		case code == "authorization_pending":
		case code == "" && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable):
		case err != nil:
			return nil, requestError("device access token", err)
		default:
			return checkToken(tok, c.AllowBearer)
		}
		st.ErrorCode, st.Wait = code, max(interval, retryAfter(resp.Header, timeNow()))
	}
}

func (c *Config) report(st DeviceStatus) {
	if c.DeviceProgress != nil {
		c.DeviceProgress(st)
	}
}

// deviceInterval returns the polling interval of a device authorization
// response: 5 seconds when it has none or an invalid one (RFC 8628 §3.2),
// and at most maxWait.
func deviceInterval(seconds int64) time.Duration {
	if seconds <= 0 {
		return 5 * time.Second
	}
	return time.Duration(min(seconds, int64(maxWait/time.Second))) * time.Second
}

// maxWait bounds the intervals and Retry-After values honoured.
const maxWait = time.Hour

// retryAfter returns the wait a Retry-After header asks for (RFC 9110
// §10.2.3: delay-seconds or an HTTP-date), at most maxWait; 0 if none.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(min(max(n, 0), int64(maxWait/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxWait)
}

// optionValues returns the parameters that opts set, as x/oauth2 applies
// them to its own requests (its AuthCodeOption has no exported method).
func optionValues(opts []oauth2.AuthCodeOption) url.Values {
	base, _ := url.Parse((&oauth2.Config{}).AuthCodeURL(""))
	with, _ := url.Parse((&oauth2.Config{}).AuthCodeURL("", opts...))
	v := with.Query()
	for k, b := range base.Query() {
		if w, ok := v[k]; ok && len(w) == len(b) && w[0] == b[0] {
			delete(v, k) // x/oauth2's own, not set by an option
		}
	}
	return v
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v)+2)
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// parseTokenResponse reads a token endpoint answer (RFC 6749 §5.1, §5.2)
// as x/oauth2 does. An error answer is an *oauth2.RetrieveError, and its
// error code is returned as well.
func parseTokenResponse(resp *http.Response, body []byte) (tok *oauth2.Token, errorCode string, err error) {
	var tj struct {
		AccessToken  string      `json:"access_token"`
		TokenType    string      `json:"token_type"`
		RefreshToken string      `json:"refresh_token"`
		ExpiresIn    json.Number `json:"expires_in"`
		oauthError
	}
	jsonErr := json.Unmarshal(body, &tj)
	if resp.StatusCode < 200 || resp.StatusCode > 299 || tj.Error != "" {
		return nil, tj.Error, retrieveError(resp, body)
	}
	if jsonErr != nil {
		return nil, "", fmt.Errorf("token response is not JSON: %w", jsonErr)
	}
	if tj.AccessToken == "" {
		return nil, "", errors.New("token response has no access_token")
	}
	var raw map[string]any
	json.Unmarshal(body, &raw) // it parsed above
	tok = (&oauth2.Token{AccessToken: tj.AccessToken, TokenType: tj.TokenType, RefreshToken: tj.RefreshToken}).WithExtra(raw)
	if tj.ExpiresIn != "" {
		n, err := tj.ExpiresIn.Int64()
		if err != nil {
			return nil, "", fmt.Errorf("token response has a bad expires_in: %w", err)
		}
		if n > 0 {
			n = min(n, math.MaxInt32)
			tok.ExpiresIn = n
			tok.Expiry = timeNow().Add(time.Duration(n) * time.Second)
		}
	}
	return tok, "", nil
}
