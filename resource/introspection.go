package resource

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Introspection verifies access tokens by asking the authorization server
// about them (token introspection, RFC 7662). URL is the only required
// field; the zero value of every other field means its default.
//
// Answers are cached by the SHA-256 hash of the token (the token itself is
// never kept): an active token's answer no longer than MaxCache and never
// past the token's exp, a refusal no longer than MaxCacheInactive.
// Concurrent calls for one token share one request.
//
// An Introspection must not be copied after first use (it holds its cache
// and a mutex). Its methods are safe for concurrent use. Printed with fmt
// ([Introspection.Format]), logged with log/slog ([Introspection.LogValue])
// or marshaled to JSON ([Introspection.MarshalJSON]), it never shows
// ClientSecret.
type Introspection struct {
	// URL is the introspection endpoint (RFC 7662 §2; RFC 8414's
	// introspection_endpoint). It must be https, or http on a loopback
	// address.
	URL string

	// ClientID and ClientSecret authenticate the resource server to the
	// endpoint (RFC 7662 §2.1) with client_secret_basic (RFC 6749 §2.3.1),
	// or client_secret_post when AuthStyle is oauth2.AuthStyleInParams.
	// With ClientID empty, no client authentication is sent; with
	// ClientSecret empty, client_id is sent alone.
	ClientID     string
	ClientSecret string
	AuthStyle    oauth2.AuthStyle

	// Client makes the requests. If nil, [http.DefaultClient]. No redirect
	// is followed: the request carries the client's credentials.
	Client *http.Client

	// Issuer, when set, must equal the answer's iss; Audience, when set,
	// must be one of the answer's aud (RFC 7662 §2.2, RFC 9068 §4). An
	// answer without the member is then refused.
	Issuer   string
	Audience string

	// MaxCache is how long an active token's answer is used at most; it is
	// never used past the token's exp. If zero, one minute; if negative,
	// answers are not cached, and every request costs an introspection.
	MaxCache time.Duration

	// MaxCacheInactive is how long a refusal (the token is not active, or
	// its answer fails the checks) is used at most, never longer than
	// MaxCache. If zero, 10 seconds; if negative, refusals are not cached.
	MaxCacheInactive time.Duration

	// MaxEntries bounds the number of cached answers, at most a quarter of
	// them refusals. If zero, 10000.
	MaxEntries int

	// Timeout bounds each request to the endpoint. If zero or negative,
	// 10 seconds.
	Timeout time.Duration

	// Now is the clock. If nil, [time.Now].
	Now func() time.Time

	mu      sync.Mutex // guards flights
	flights map[tokenKey]*introspectionFlight
	cache   tokenCache
}

var (
	_ TokenVerifier  = (*Introspection)(nil)
	_ fmt.Formatter  = (*Introspection)(nil)
	_ slog.LogValuer = (*Introspection)(nil)
	_ json.Marshaler = (*Introspection)(nil)
)

// introspectionFlight is one request to the endpoint, shared by the calls
// for one token that wait for it.
type introspectionFlight struct {
	done chan struct{} // closed when the answer is in
	at   *AccessToken  // set before done is closed
	err  error
}

const (
	// maxIntrospectionAnswer bounds the answer read from the endpoint.
	maxIntrospectionAnswer = 64 << 10

	// introspectionLeeway is the clock skew tolerated in an active
	// token's exp, nbf and iat.
	introspectionLeeway = 30 * time.Second
)

// VerifyToken asks the endpoint about token (RFC 7662 §2.1), or uses a
// cached answer, and returns what it grants: the token must be active
// (§2.2), its iss and aud those configured (when configured), its exp not
// passed and nbf passed, and cnf.jkt, when present, a SHA-256 thumbprint
// (RFC 9449 §6.2). A token that is not a b64token (RFC 6750 §2.1) of at
// most 16 KiB is refused without asking.
//
// A refusal is a *[TokenError]; a failure to get an answer (the endpoint
// unreachable, an error status, an answer that is not RFC 7662 JSON) is an
// *[IssuerError]. Neither holds the token or the client secret. The
// request is bounded by Timeout; ctx bounds how long this call waits for
// it (a request shared with other calls goes on when one gives up). The
// returned AccessToken may be shared with other calls for the same token
// (its Audience, Scopes and Claims) and must not be modified.
func (i *Introspection) VerifyToken(ctx context.Context, token string) (*AccessToken, error) {
	if len(token) > maxAccessToken {
		return nil, &TokenError{Err: fmt.Errorf("longer than %d bytes", maxAccessToken)}
	}
	if !isB64Token(token) {
		return nil, &TokenError{Err: errors.New("not a b64token (RFC 6750 §2.1)")}
	}
	key := tokenKey(sha256.Sum256([]byte(token)))
	if e, ok := i.cache.get(key, i.now()); ok {
		return copyToken(e.at), e.err
	}
	if _, err := httpsURL("introspection URL", i.URL); err != nil {
		return nil, err
	}

	i.mu.Lock()
	f := i.flights[key]
	if f == nil {
		f = &introspectionFlight{done: make(chan struct{})}
		if i.flights == nil {
			i.flights = make(map[tokenKey]*introspectionFlight)
		}
		i.flights[key] = f
		go i.run(context.WithoutCancel(ctx), key, token, f)
	}
	i.mu.Unlock()

	select {
	case <-f.done:
		return copyToken(f.at), f.err
	case <-ctx.Done():
		return nil, &IssuerError{URL: i.URL, Err: ctx.Err()}
	}
}

// run asks about token, caches the answer and hands it to the callers
// waiting on f.
func (i *Introspection) run(ctx context.Context, key tokenKey, token string, f *introspectionFlight) {
	at, err := i.introspect(ctx, token)
	now := i.now()
	var te *TokenError
	switch {
	case err == nil:
		until := now.Add(durationOption(i.MaxCache, time.Minute))
		if !at.Expiry.IsZero() && at.Expiry.Before(until) {
			until = at.Expiry
		}
		i.cache.put(key, cacheEntry{at: at, until: until}, now, i.maxEntries())
	case errors.As(err, &te):
		d := min(durationOption(i.MaxCacheInactive, 10*time.Second), durationOption(i.MaxCache, time.Minute))
		i.cache.put(key, cacheEntry{err: err, until: now.Add(d)}, now, i.maxEntries())
	}
	i.mu.Lock()
	delete(i.flights, key)
	f.at, f.err = at, err
	i.mu.Unlock()
	close(f.done)
}

func (i *Introspection) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

func (i *Introspection) maxEntries() int {
	if i.MaxEntries == 0 {
		return 10000
	}
	return i.MaxEntries
}

// introspect makes one introspection request (RFC 7662 §2.1) and checks
// its answer.
func (i *Introspection) introspect(ctx context.Context, token string) (*AccessToken, error) {
	ctx, cancel := context.WithTimeout(ctx, timeoutOption(i.Timeout))
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	basic := i.ClientID != "" && i.ClientSecret != "" && i.AuthStyle != oauth2.AuthStyleInParams
	if i.ClientID != "" && !basic {
		form.Set("client_id", i.ClientID)
		if i.ClientSecret != "" {
			form.Set("client_secret", i.ClientSecret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, i.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &IssuerError{URL: i.URL, Err: errors.New("cannot make the introspection request")}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic {
		// RFC 6749 §2.3.1: both form-urlencoded, then Basic.
		cred := url.QueryEscape(i.ClientID) + ":" + url.QueryEscape(i.ClientSecret)
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
	}
	resp, err := issuerClient(i.Client, false).Do(req)
	if err != nil {
		return nil, &IssuerError{URL: redactURL(req.URL), Err: scrub(unwrapURLError(err), token, i.ClientSecret)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, i.statusError(resp, token)
	}
	body, err := readIssuerAnswer(resp, maxIntrospectionAnswer)
	if err != nil {
		return nil, err
	}
	return parseIntrospection(body, redactURL(req.URL), tokenChecks{
		issuer:   i.Issuer,
		audience: i.Audience,
		now:      i.now(),
		leeway:   introspectionLeeway,
	})
}

// statusError returns the *IssuerError for an answer that is not 200,
// naming the OAuth error code it carries (RFC 6749 §5.2), if any: an
// invalid_client says the resource server's credentials are wrong.
func (i *Introspection) statusError(resp *http.Response, token string) error {
	e := &IssuerError{URL: redactURL(resp.Request.URL), StatusCode: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var oe struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &oe) == nil && isErrorCode(oe.Error) &&
		!strings.Contains(oe.Error, token) && (i.ClientSecret == "" || !strings.Contains(oe.Error, i.ClientSecret)) {
		e.Err = fmt.Errorf("error %s", oe.Error)
	}
	return e
}

// parseIntrospection reads an introspection answer (RFC 7662 §2.2)
// fetched from loc and checks it with k. An answer that is not a JSON
// object with a boolean active is an *IssuerError; a token that is not
// active, or whose answer fails k, a *TokenError.
func parseIntrospection(body []byte, loc string, k tokenChecks) (*AccessToken, error) {
	c, all, err := decodeTokenClaims(body)
	if err != nil {
		return nil, &IssuerError{URL: loc, StatusCode: http.StatusOK, Err: fmt.Errorf("introspection answer: %w", errors.Unwrap(err))}
	}
	if c.Active == nil {
		return nil, &IssuerError{URL: loc, StatusCode: http.StatusOK, Err: errors.New("introspection answer has no boolean active (RFC 7662 §2.2)")}
	}
	if !*c.Active {
		return nil, &TokenError{Claim: "active", Err: errors.New("not active (RFC 7662 §2.2)")}
	}
	if k.issuer != "" && c.Issuer == "" {
		return nil, &TokenError{Claim: "iss", Err: errors.New("introspection answer has no iss")}
	}
	if k.audience != "" && len(c.Audience) == 0 {
		return nil, &TokenError{Claim: "aud", Err: errors.New("introspection answer has no aud")}
	}
	if err := c.check(k); err != nil {
		return nil, err
	}
	return c.accessToken(all), nil
}

// isB64Token reports whether s is a b64token (RFC 6750 §2.1):
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	n := len(strings.TrimRight(s, "="))
	if n == 0 {
		return false
	}
	for j := 0; j < n; j++ {
		c := s[j]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// isErrorCode reports whether s is an OAuth error code (RFC 6749 §5.2:
// 1*NQSCHAR) of at most 64 characters.
func isErrorCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for j := 0; j < len(s); j++ {
		if c := s[j]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// scrub returns err, or an error without its text if that holds one of
// secrets (a transport may echo what it was sent).
func scrub(err error, secrets ...string) error {
	msg := err.Error()
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			return errors.New("request failed (message withheld: it held a secret)")
		}
	}
	return err
}

// Format prints the same summary for every verb of package fmt: the
// endpoint, the client ID, whether a client secret is set, and the checks;
// never the secret. Like the dpop package's Transport, an Introspection
// must not be copied, so Format has a pointer receiver: print a
// *Introspection.
func (i *Introspection) Format(f fmt.State, verb rune) {
	if i == nil {
		fmt.Fprint(f, "<nil>")
		return
	}
	secret := "nil"
	if i.ClientSecret != "" {
		secret = "set"
	}
	fmt.Fprintf(f, "resource.Introspection{URL: %q, ClientID: %q, ClientSecret: %s, Issuer: %q, Audience: %q}",
		i.URL, i.ClientID, secret, i.Issuer, i.Audience)
}

// LogValue implements [slog.LogValuer]: the endpoint, the client and the
// checks, without ClientSecret.
func (i *Introspection) LogValue() slog.Value {
	if i == nil {
		return slog.AnyValue(nil)
	}
	return slog.GroupValue(
		slog.String("url", i.URL),
		slog.String("client_id", i.ClientID),
		slog.String("issuer", i.Issuer),
		slog.String("audience", i.Audience),
	)
}

// MarshalJSON implements [json.Marshaler]: the configuration without
// ClientSecret.
func (i *Introspection) MarshalJSON() ([]byte, error) {
	if i == nil {
		return []byte("null"), nil
	}
	return json.Marshal(struct {
		URL              string           `json:"url"`
		ClientID         string           `json:"client_id,omitempty"`
		AuthStyle        oauth2.AuthStyle `json:"auth_style,omitempty"`
		Issuer           string           `json:"issuer,omitempty"`
		Audience         string           `json:"audience,omitempty"`
		MaxCache         time.Duration    `json:"max_cache,omitempty"`
		MaxCacheInactive time.Duration    `json:"max_cache_inactive,omitempty"`
		MaxEntries       int              `json:"max_entries,omitempty"`
		Timeout          time.Duration    `json:"timeout,omitempty"`
	}{i.URL, i.ClientID, i.AuthStyle, i.Issuer, i.Audience, i.MaxCache, i.MaxCacheInactive, i.MaxEntries, i.Timeout})
}
