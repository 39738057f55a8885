package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/cli/browser"
	"github.com/dpopkit/dpop"
	"golang.org/x/oauth2"
)

func init() {
	// The helper programs browser runs must not write to stdout, which
	// carries the API's answer.
	browser.Stdout = os.Stderr
}

// loginBrowser runs the authorization code grant with PKCE (RFC 7636) and
// dpop_jkt (RFC 9449 §10) on a loopback redirect (RFC 8252 §7.3): it listens
// on 127.0.0.1 on a port the kernel picks, sends the user's browser to the
// authorization server, and waits for one callback carrying this login's
// state, or for ctx to end. The listener is closed on return.
func (s *session) loginBrowser(ctx context.Context) (*oauth2.Token, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cli-login: loopback listener: %w", err)
	}
	// Set before the Config's first use; the code exchange repeats it.
	s.cfg.OAuth2.RedirectURL = fmt.Sprintf("http://127.0.0.1:%d/callback", ln.Addr().(*net.TCPAddr).Port)

	state := rand.Text()
	verifier := oauth2.GenerateVerifier()
	var authURL string
	switch {
	case s.md.PushedAuthorizationRequestEndpoint != "":
		// RFC 9126: the parameters go to the server directly, with a
		// proof that binds the code to the key; the browser gets a
		// short URL.
		authURL, err = s.cfg.PushAuthCodeURL(ctx, state, oauth2.S256ChallengeOption(verifier))
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("cli-login: pushed authorization request: %w", err)
		}
	case s.md.RequirePushedAuthorizationRequests:
		ln.Close()
		return nil, errors.New("cli-login: the server requires pushed authorization requests but names no endpoint for them")
	default:
		authURL = s.cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
	}

	h := newCallbackHandler(state, s.md, func(code string) (*oauth2.Token, error) {
		return s.cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer func() {
		// Let the last page reach the browser, then close everything.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()

	if s.o.noBrowser {
		fmt.Fprintf(s.stderr, "To log in, visit: %s\n", authURL)
	} else {
		if err := openBrowser(authURL); err != nil {
			fmt.Fprintf(s.stderr, "cli-login: cannot open a browser: %v\n", err)
		}
		fmt.Fprintf(s.stderr, "If the browser does not open, visit: %s\n", authURL)
	}
	fmt.Fprintf(s.stderr, "Waiting for the login (up to %v)...\n", s.o.timeout)

	select {
	case r := <-h.done:
		return r.tok, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// callbackResult is what the one valid callback produced.
type callbackResult struct {
	tok *oauth2.Token
	err error
}

// callbackHandler serves the loopback redirect URI. A request whose state
// is not this login's is answered with an error page and otherwise ignored
// (RFC 6749 §10.12: it may be a forged redirect). The first one with the
// right state ends the login: its code is exchanged, the browser is shown
// the outcome, and the result goes to done.
type callbackHandler struct {
	state    string
	md       *dpop.Metadata // the issuer, and whether it always sends iss (RFC 9207)
	exchange func(code string) (*oauth2.Token, error)
	done     chan callbackResult // buffered: one result

	mu   sync.Mutex // guards used
	used bool
}

func newCallbackHandler(state string, md *dpop.Metadata, exchange func(string) (*oauth2.Token, error)) *callbackHandler {
	return &callbackHandler{state: state, md: md, exchange: exchange, done: make(chan callbackResult, 1)}
}

func (h *callbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/callback" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(h.state)) != 1 {
		showPage(w, http.StatusBadRequest, false, "This response does not belong to the login in progress (the state does not match). Return to the terminal.")
		return
	}
	h.mu.Lock()
	used := h.used
	h.used = true
	h.mu.Unlock()
	if used {
		showPage(w, http.StatusConflict, false, "This login was already completed. Return to the terminal.")
		return
	}

	// state, then iss (RFC 9207: a mix-up), error (a *dpop.AuthResponseError), code.
	var res callbackResult
	if code, err := h.md.VerifyAuthResponse(q, h.state); err != nil {
		res.err = fmt.Errorf("cli-login: %w", err)
	} else if res.tok, res.err = h.exchange(code); res.err != nil {
		res.err = fmt.Errorf("cli-login: code exchange: %w", res.err)
	}
	if res.err != nil {
		showPage(w, http.StatusBadRequest, false, res.err.Error())
	} else {
		showPage(w, http.StatusOK, true, fmt.Sprintf("%s is now logged in to %s. You can close this window and return to the terminal.", appName, h.md.Issuer))
	}
	h.done <- res
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{if .OK}}Logged in{{else}}Login failed{{end}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em}</style></head>
<body><h1 id="{{if .OK}}login-ok{{else}}login-failed{{end}}">{{if .OK}}Logged in{{else}}Login failed{{end}}</h1>
<p>{{.Message}}</p></body></html>
`))

func showPage(w http.ResponseWriter, status int, ok bool, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	page.Execute(w, struct {
		OK      bool
		Message string
	}{ok, msg})
}

// openBrowser opens u in the system browser: github.com/cli/browser runs
// xdg-open (or x-www-browser, www-browser, or WSL's wslview) on Linux and
// the BSDs, open on macOS, and ShellExecute on Windows. It is a variable so
// that tests can replace it.
var openBrowser = func(u string) error {
	if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") {
		return fmt.Errorf("not opening %q: not an http(s) URL", u)
	}
	return browser.OpenURL(u)
}

// loginDevice runs the device authorization grant (RFC 8628): it prints
// where to go and the code to enter, then polls until the user approves.
func (s *session) loginDevice(ctx context.Context) (*oauth2.Token, error) {
	if s.md.DeviceAuthorizationEndpoint == "" {
		return nil, errors.New("cli-login: the server has no device authorization endpoint (RFC 8628); log in without -device")
	}
	da, err := s.cfg.DeviceAuth(ctx)
	if err != nil {
		return nil, fmt.Errorf("cli-login: %w", err)
	}
	wait := s.o.timeout
	if !da.Expiry.IsZero() {
		wait = min(wait, time.Until(da.Expiry).Round(time.Second))
	}
	polls := 0
	cfg := *s.cfg // shares the nonces it learned
	cfg.DeviceProgress = func(st dpop.DeviceStatus) {
		polls = st.Polls
		s.deviceProgress(st, wait)
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		return nil, fmt.Errorf("cli-login: %w", err)
	}
	fmt.Fprintf(s.stderr, "  poll %d: approved\n", polls+1)
	return tok, nil
}

// deviceProgress prints where to log in before the first poll, and each
// poll's outcome after it.
func (s *session) deviceProgress(st dpop.DeviceStatus, wait time.Duration) {
	if st.Polls == 0 {
		fmt.Fprintf(s.stderr, "To log in, open %s in a browser on any device and enter the code %s\n", st.Auth.VerificationURI, st.Auth.UserCode)
		if st.Auth.VerificationURIComplete != "" {
			fmt.Fprintf(s.stderr, "Or visit: %s\n", st.Auth.VerificationURIComplete)
		}
		fmt.Fprintf(s.stderr, "Waiting for approval (up to %v)...\n", wait)
		return
	}
	why := map[string]string{
		"authorization_pending": "not approved yet",
		"slow_down":             "the server asks to poll less often",
		"":                      "the server is busy",
	}[st.ErrorCode]
	if why == "" {
		why = st.ErrorCode
	}
	fmt.Fprintf(s.stderr, "  poll %d: %s; next in %v\n", st.Polls, why, st.Wait)
}
