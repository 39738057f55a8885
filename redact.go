package dpop

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// This file keeps secrets and raw server strings out of error text: the
// redaction of a request's secrets from a server's answer to it, and the
// quoting of server strings.

// maxQuoted bounds a string from a server, or from a request, shown in
// error text.
const maxQuoted = 256

// quote returns s for error text: cut to maxQuoted bytes (marked with
// "…"), and quoted with every byte outside printable ASCII escaped, so that
// no control or bidi character from a server reaches a log, and a long
// body cannot flood one.
func quote(s string) string {
	cut := len(s) > maxQuoted
	if cut {
		s = s[:maxQuoted]
		for i := 0; i < 3 && !utf8.ValidString(s); i++ {
			s = s[:len(s)-1] // do not split a rune
		}
	}
	q := strconv.QuoteToASCII(s)
	if cut {
		q += "…"
	}
	return q
}

// secretParams are the form parameters of token-side requests whose values
// are secrets (RFC 6749 §2.3.1, §4.1.3, §6; RFC 7636 §4.5; RFC 8628 §3.4;
// RFC 7521 §4.2; RFC 8693 §2.1; RFC 7009 §2.1).
var secretParams = []string{
	"client_secret", "code", "code_verifier", "refresh_token", "device_code", "password",
	"client_assertion", "assertion", "subject_token", "actor_token", "token",
}

// sentKey is the context key of a request's *sentSecrets.
type sentKey struct{}

// sentSecrets are the secrets that the attempts of one request carried in
// their bodies, recorded as each body was made. A request whose body is
// made anew for each attempt (a new client assertion every time, see
// clientAuthTransport) records them here, in its context, because reading
// its body again through GetBody would make yet another body, not return
// the one that was sent and that a server may echo.
type sentSecrets struct {
	mu     sync.Mutex
	values []string // guarded by mu
}

// withSentSecrets returns ctx carrying s, for the requests made with it
// and the responses that answer them (their Request).
func withSentSecrets(ctx context.Context, s *sentSecrets) context.Context {
	return context.WithValue(ctx, sentKey{}, s)
}

// add records values, as they were sent and form-encoded.
func (s *sentSecrets) add(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		s.values = append(s.values, v, url.QueryEscape(v))
	}
}

func (s *sentSecrets) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.values...)
}

// formSecrets returns the values of form's secret parameters.
func formSecrets(form url.Values) []string {
	var out []string
	for _, k := range secretParams {
		out = append(out, form[k]...)
	}
	return out
}

// requestSecrets returns the secrets req carried: its Authorization and
// DPoP header values, the credentials of a Basic header, and, with body,
// the values of its form's secret parameters: those recorded as they were
// sent ([sentSecrets]), else read again through GetBody (x/oauth2's and
// this package's form bodies are made once, so that reads what was sent).
// req may be nil.
func requestSecrets(req *http.Request, body bool) []string {
	if req == nil {
		return nil
	}
	var out []string
	for _, k := range []string{"Authorization", "Dpop"} {
		for _, v := range req.Header[k] {
			out = append(out, v)
			if _, cred, ok := strings.Cut(v, " "); ok {
				out = append(out, strings.TrimLeft(cred, " "))
			}
		}
	}
	if _, pass, ok := req.BasicAuth(); ok {
		out = append(out, pass)
		if u, err := url.QueryUnescape(pass); err == nil {
			out = append(out, u)
		}
	}
	if !body {
		return out
	}
	if s, ok := req.Context().Value(sentKey{}).(*sentSecrets); ok {
		return append(out, s.list()...)
	}
	if req.GetBody == nil {
		return out
	}
	rc, err := req.GetBody()
	if err != nil {
		return out
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, maxTokenRequest))
	form, _ := url.ParseQuery(string(b))
	for _, v := range formSecrets(form) {
		out = append(out, v, url.QueryEscape(v))
	}
	return out
}

// redact returns s with every secret of at least minSecret bytes replaced
// by "[redacted]".
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= minSecret && strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}

// minSecret is the length below which a request value is not redacted
// from server text: a client_id "c" or a code "1" would blank out every
// such letter of a description, and reveals nothing.
const minSecret = 4
