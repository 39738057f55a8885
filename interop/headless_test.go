package interop

// Helpers for the interop tests against the real servers started by
// interop/run.sh: oidc-provider (AS, as.mjs) and a jose-based resource server
// (RS, rs.mjs). Pure net/http: nothing here imports the dpop package, so these
// helpers cannot share a bug with the code under test.

import (
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Environment variables exported by interop/run.sh.
const (
	envIssuer        = "DPOP_INTEROP_ISSUER"                // AS issuer URL
	envRS            = "DPOP_INTEROP_RS"                    // RS base URL; API under /api/
	envBackendID     = "DPOP_INTEROP_CLIENT_ID_BACKEND"     // confidential client, client_credentials
	envBackendSecret = "DPOP_INTEROP_CLIENT_SECRET_BACKEND" // its secret, client_secret_basic
	envPublicID      = "DPOP_INTEROP_CLIENT_ID_PUBLIC"      // public native client: code+PKCE, refresh, device
	envFullTest      = "DPOP_FULL_TEST"                     // "1": never skip, fail instead
)

// requireInterop returns the AS issuer and the RS base URL exported by
// interop/run.sh. Without them the test is skipped, or fails when
// DPOP_FULL_TEST=1 (the full test command must never skip).
func requireInterop(t *testing.T) (issuer, rs string) {
	t.Helper()
	issuer, rs = os.Getenv(envIssuer), os.Getenv(envRS)
	if issuer == "" || rs == "" {
		const msg = "interop: oidc-provider is not running; run: interop/run.sh go test ./interop/"
		if os.Getenv(envFullTest) == "1" {
			t.Fatal(msg + " (DPOP_FULL_TEST=1 forbids skipping)")
		}
		t.Skip(msg)
	}
	return issuer, rs
}

// backendClient returns the confidential client's credentials (client_secret_basic).
func backendClient(t *testing.T) (clientID, clientSecret string) {
	t.Helper()
	requireInterop(t)
	return envOr(envBackendID, "backend"), envOr(envBackendSecret, "backend-secret")
}

// publicClientID returns the public native client's id. Its registered redirect
// URI is http://127.0.0.1/callback; any port may be used with it (RFC 8252 §7.3).
func publicClientID(t *testing.T) string {
	t.Helper()
	requireInterop(t)
	return envOr(envPublicID, "cli")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// browser is a cookie-keeping HTTP client that plays the user agent against the
// AS's headless interactions (as.mjs auto-logs "alice" in and grants consent).
type browser struct {
	t      *testing.T
	client *http.Client
}

// newBrowser returns a browser with a fresh cookie jar (no AS session yet).
// stopAt, when non-nil, is consulted before following each redirect; when it
// returns true the redirect is not followed and the 3xx response is returned.
func newBrowser(t *testing.T, stopAt func(*url.URL) bool) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, client: &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 20 {
				return errors.New("headless browser: more than 20 redirects")
			}
			if stopAt != nil && stopAt(req.URL) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

// do sends req and returns the (final) response with its body read.
func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("headless browser: %s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		b.t.Fatalf("headless browser: reading %s: %v", resp.Request.URL, err)
	}
	return resp, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) postForm(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// isLoopbackCallback reports whether u is the public client's loopback redirect
// target: http://127.0.0.1:<any port>/callback.
func isLoopbackCallback(u *url.URL) bool {
	return u.Scheme == "http" && u.Hostname() == "127.0.0.1" && u.Path == "/callback"
}

// headlessAuthorize opens authURL (the AS authorization endpoint with all its
// parameters, PAR's request_uri form included) in a fresh headless browser and
// follows the redirects: /auth → /interaction/<uid> (login as alice) →
// /auth/<uid> → /interaction/<uid2> (consent) → /auth/<uid2> → 303 to the
// redirect_uri. It stops at that last redirect (it does NOT contact the loopback
// redirect_uri) and returns the query of the redirect target: code, state, iss,
// or error and error_description.
func headlessAuthorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	b := newBrowser(t, isLoopbackCallback)
	resp, body := b.get(authURL)
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		t.Fatalf("headless login: %s ended at %s with HTTP %d, not at the loopback redirect_uri:\n%s",
			authURL, resp.Request.URL, resp.StatusCode, snippet(body))
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("headless login: redirect without Location: %v", err)
	}
	if !isLoopbackCallback(loc) {
		t.Fatalf("headless login: stopped at unexpected redirect %s", loc)
	}
	return loc.Query()
}

// headlessLogin is headlessAuthorize for the success case: it fails the test
// unless the AS redirected back with a code, and checks the iss parameter
// (RFC 9207) against the issuer. It returns the code and the state.
func headlessLogin(t *testing.T, authURL string) (code, state string) {
	t.Helper()
	q := headlessAuthorize(t, authURL)
	if e := q.Get("error"); e != "" {
		t.Fatalf("headless login: AS answered error=%s error_description=%q", e, q.Get("error_description"))
	}
	if q.Get("code") == "" {
		t.Fatalf("headless login: redirect without code: %v", q)
	}
	if issuer := os.Getenv(envIssuer); issuer != "" && q.Get("iss") != issuer {
		t.Fatalf("headless login: iss=%q, want %q", q.Get("iss"), issuer)
	}
	return q.Get("code"), q.Get("state")
}

// headlessBrowse is the variant for code under test that runs its own loopback
// listener (a CLI login): it opens authURL in a fresh headless browser and
// follows every redirect, the one to http://127.0.0.1:<port>/callback included,
// exactly as a system browser would. It returns the final response's status and
// body (what the loopback listener answered). Run it in a goroutine next to the
// code that waits on the listener; it must not call t.Fatal from there, so it
// reports failures as an error.
func headlessBrowse(authURL string) (status int, body string, err error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return 0, "", err
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(authURL)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, "", err
	}
	if !isLoopbackCallback(resp.Request.URL) {
		return resp.StatusCode, string(b), errors.New("headless browser ended at " + resp.Request.URL.String() + ", not at the loopback callback")
	}
	return resp.StatusCode, string(b), nil
}

// headlessApproveDevice approves a device authorization as the user "alice"
// would in a browser, given the verification_uri_complete from the device
// authorization response:
//
//	GET  verification_uri_complete     → auto-submitting form {xsrf, user_code}
//	POST /device {xsrf, user_code}      → confirm page, form {xsrf, user_code, confirm=yes}
//	POST /device {…, confirm=yes}       → 303 /interaction/<uid> (login) → /device/<uid>
//	                                      → /interaction/<uid2> (consent) → /device/<uid2>
//	                                      → 200 success page (id="device-approved")
func headlessApproveDevice(t *testing.T, verificationURIComplete string) {
	t.Helper()
	b := newBrowser(t, nil)
	resp, body := b.get(verificationURIComplete)
	b.submitUntilApproved(resp, body, "")
}

// headlessEnterUserCode is headlessApproveDevice for the verification_uri +
// user_code variant: GET /device shows a form {xsrf, user_code (text)}; the
// user types the code and continues as above.
func headlessEnterUserCode(t *testing.T, verificationURI, userCode string) {
	t.Helper()
	b := newBrowser(t, nil)
	resp, body := b.get(verificationURI)
	b.submitUntilApproved(resp, body, userCode)
}

var (
	formRe   = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRe  = regexp.MustCompile(`(?is)<input\b([^>]*)/?>`)
	attrRe   = regexp.MustCompile(`(?is)([a-z_:-]+)\s*=\s*"([^"]*)"`)
	okMarker = `id="device-approved"`
)

func (b *browser) submitUntilApproved(resp *http.Response, body, userCode string) {
	b.t.Helper()
	for step := 0; step < 6; step++ {
		if resp.StatusCode == http.StatusOK && strings.Contains(body, okMarker) {
			return
		}
		if resp.StatusCode != http.StatusOK {
			b.t.Fatalf("headless device approval: %s answered HTTP %d:\n%s", resp.Request.URL, resp.StatusCode, snippet(body))
		}
		fm := formRe.FindStringSubmatch(body)
		if fm == nil {
			b.t.Fatalf("headless device approval: %s: no form and no success marker:\n%s", resp.Request.URL, snippet(body))
		}
		action := attrs(fm[1])["action"]
		form := url.Values{}
		for _, in := range inputRe.FindAllStringSubmatch(fm[2], -1) {
			a := attrs(in[1])
			switch {
			case a["name"] == "":
			case a["type"] == "hidden":
				form.Set(a["name"], a["value"])
			case a["name"] == "user_code":
				if userCode == "" {
					b.t.Fatalf("headless device approval: the AS asks for the user code:\n%s", snippet(body))
				}
				form.Set("user_code", userCode)
			}
		}
		target, err := resp.Request.URL.Parse(action)
		if err != nil {
			b.t.Fatalf("headless device approval: form action %q: %v", action, err)
		}
		resp, body = b.postForm(target.String(), form)
	}
	b.t.Fatalf("headless device approval: no success page after 6 form submissions; last page %s:\n%s", resp.Request.URL, snippet(body))
}

func attrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range attrRe.FindAllStringSubmatch(s, -1) {
		m[strings.ToLower(a[1])] = html.UnescapeString(a[2])
	}
	return m
}

func snippet(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return s
}
