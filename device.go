package dpop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// DeviceAuth starts the device authorization grant (RFC 8628 §3.1). The
// request needs no proof; the token requests that follow carry one. Show
// the user the returned UserCode and VerificationURI, or encode
// VerificationURIComplete in a QR code (§3.3.1); then call
// [Config.DeviceAccessToken].
func (c *Config) DeviceAuth(ctx context.Context, opts ...oauth2.AuthCodeOption) (*oauth2.DeviceAuthResponse, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	da, err := c.oauth2().DeviceAuth(authContext(noRedirectContext(ctx), c.clientAuth()), opts...)
	if err != nil {
		return nil, requestError("device authorization", err)
	}
	return da, nil
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
	if err := c.check(); err != nil {
		return nil, err
	}
	start := time.Now()
	tok, err := c.pollDevice(ctx, da, opts)
	return c.parts().obtained(ctx, GrantDeviceCode, start, tok, err)
}

// pollDevice polls the token endpoint for DeviceAccessToken.
func (c *Config) pollDevice(ctx context.Context, da *oauth2.DeviceAuthResponse, opts []oauth2.AuthCodeOption) (*oauth2.Token, error) {
	if da == nil || da.DeviceCode == "" {
		return nil, errors.New("dpop: device access token: no device code")
	}
	if !da.Expiry.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, da.Expiry)
		defer cancel()
	}
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
		st.ErrorCode, st.Wait = code, max(interval, retryAfter(resp.Header, time.Now()))
	}
}

func (c *Config) report(st DeviceStatus) {
	if c.DeviceProgress != nil {
		c.DeviceProgress(st)
	}
}

// deviceInterval returns the polling interval of a device authorization
// response: 5 seconds when it has none or an invalid one (RFC 8628 §3.2).
func deviceInterval(seconds int64) time.Duration {
	if seconds <= 0 || seconds > int64(maxWait/time.Second) {
		return 5 * time.Second
	}
	return time.Duration(seconds) * time.Second
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
			tok.Expiry = time.Now().Add(time.Duration(n) * time.Second)
		}
	}
	return tok, "", nil
}
