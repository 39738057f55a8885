package dpop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	safe "github.com/dpopkit/dpop/internal/quote"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// This file keeps secrets and raw server strings out of text: the
// redaction of what a request sent from a server's answer to it, the
// quoting of server strings, the form of a URL shown in errors and logs,
// and the summary that a type holding a secret shows to fmt, log/slog and
// encoding/json alike.

// maxQuoted bounds a string from a server, or from a request, shown in
// error text.
const maxQuoted = 256

// quote returns s for error text: cut to maxQuoted bytes (marked with
// "…"), and quoted with every byte outside printable ASCII escaped, so that
// no control or bidi character from a server reaches a log, and a long
// body cannot flood one.
func quote(s string) string { return safe.Cut(s, maxQuoted) }

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
	out := make([]string, 0, 6)
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

// redactQuotedURLs returns msg with every quoted http or https URL in it
// (the text of a *url.Error that x/oauth2 flattened into its own) shown
// as redactURL shows it.
func redactQuotedURLs(msg string) string {
	var b strings.Builder
	for {
		i := strings.Index(msg, `"http`)
		if i < 0 {
			break
		}
		j := strings.IndexByte(msg[i+1:], '"')
		if j < 0 {
			break
		}
		b.WriteString(msg[:i+1])
		b.WriteString(redactURL(msg[i+1 : i+1+j]))
		msg = msg[i+1+j:]
	}
	b.WriteString(msg)
	return b.String()
}

// Bounds of the server strings that errors, trace events and logs carry:
// an error code, a token type or a scheme; a text for people; a URL or
// an origin; and the length of a list.
const (
	maxCodeText = 64
	maxText     = 256
	maxURLText  = 512
	maxList     = 16
)

// cleanText returns s, a string a server chose, as the fields of errors
// and trace events hold it: every character that is not printable
// (control and bidirectional formatting characters, line separators,
// invalid UTF-8) replaced by U+FFFD, and cut to at most max bytes, marked
// with "…". A log line or a terminal then shows what the server meant and
// nothing it did not. A printable ASCII string within max bytes, such as
// every error code of the RFCs, comes back unchanged.
func cleanText(s string, max int) string {
	clean := len(s) <= max
	for i := 0; clean && i < len(s); i++ {
		clean = ' ' <= s[i] && s[i] <= '~'
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if !unicode.IsPrint(r) { // invalid UTF-8 is utf8.RuneError, printable: replaced below
			r = utf8.RuneError
		}
		if b.Len()+utf8.RuneLen(r) > max {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// cleanList returns the first maxList entries of l, each cleaned; l
// itself when that changes nothing.
func cleanList(l []string) []string {
	if len(l) > maxList {
		l = l[:maxList:maxList]
	}
	var out []string
	for i, s := range l {
		c := cleanText(s, maxCodeText)
		if c != s && out == nil {
			out = append(make([]string, 0, len(l)), l[:i]...)
		}
		if out != nil {
			out = append(out, c)
		}
	}
	if out == nil {
		return l
	}
	return out
}

// redactURL returns the URL raw as error text, logs and summaries show
// it: scheme://host[:port]/path, without userinfo (a password), query (an
// API key) or fragment. A URL that does not parse shows as
// "[invalid URL]": it may hold anything.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "[invalid URL]"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// summary is what a type holding a secret shows of itself: its name and a
// few attributes (algorithm, thumbprint, client ID, endpoints, which parts
// are set), never the secret. Its Format (fmt), LogValue (log/slog) and
// MarshalJSON (encoding/json) methods all show the same summary, so that
// no encoder reads the fields that hold the secret.
type summary struct {
	name  string // such as "dpop.Config"
	attrs []slog.Attr
}

// format writes s as name{key: value, …}: strings quoted, other values
// in their own %v.
func (s summary) format(f fmt.State) {
	io.WriteString(f, s.name)
	io.WriteString(f, "{")
	for i, a := range s.attrs {
		if i > 0 {
			io.WriteString(f, ", ")
		}
		io.WriteString(f, a.Key)
		io.WriteString(f, ": ")
		switch v := a.Value; v.Kind() {
		case slog.KindString:
			io.WriteString(f, strconv.Quote(v.String()))
		case slog.KindAny, slog.KindLogValuer:
			fmt.Fprintf(f, "%v", v.Any())
		default:
			io.WriteString(f, v.String())
		}
	}
	io.WriteString(f, "}")
}

// logValue returns s as a group of its attributes.
func (s summary) logValue() slog.Value { return slog.GroupValue(s.attrs...) }

// marshalJSON returns s as a JSON object of its attributes, in order.
func (s summary) marshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, a := range s.attrs {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(a.Key)
		b.Write(k)
		b.WriteByte(':')
		var v any
		switch a.Value.Kind() {
		case slog.KindDuration:
			v = a.Value.Duration().String()
		default:
			v = a.Value.Any()
		}
		j, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("dpop: marshal %s: %w", s.name, err)
		}
		b.Write(j)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// part is whether an optional part is set, shown as "set" or "nil".
type part bool

func (p part) String() string {
	if p {
		return "set"
	}
	return "nil"
}

func (p part) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// signerAttr is the attribute of a *Signer in a summary.
func signerAttr(key string, s *Signer) slog.Attr {
	if s == nil {
		return slog.Any(key, nil)
	}
	return slog.Any(key, *s)
}

// The summaries of the types that hold secrets. DeviceStatus's live here
// for now; they belong in device.go.

func (st DeviceStatus) summary() summary {
	var userCode, uri string
	if st.Auth != nil {
		userCode, uri = cleanText(st.Auth.UserCode, maxCodeText), cleanText(redactURL(st.Auth.VerificationURI), maxURLText)
	}
	return summary{"dpop.DeviceStatus", []slog.Attr{
		slog.String("UserCode", userCode), slog.String("VerificationURI", uri),
		slog.Int("Polls", st.Polls), slog.String("ErrorCode", cleanText(st.ErrorCode, maxCodeText)),
		slog.Duration("Wait", st.Wait),
	}}
}

// Format prints the user code, the verification URI and the progress of
// the grant, never the device code, whatever the verb.
func (st DeviceStatus) Format(f fmt.State, verb rune) { st.summary().format(f) }

// LogValue is the summary Format prints, for log/slog.
func (st DeviceStatus) LogValue() slog.Value { return st.summary().logValue() }

// MarshalJSON is the summary Format prints, as a JSON object: the device
// code is left out.
func (st DeviceStatus) MarshalJSON() ([]byte, error) { return st.summary().marshalJSON() }

var (
	_ fmt.Formatter  = DeviceStatus{}
	_ slog.LogValuer = DeviceStatus{}
	_ json.Marshaler = DeviceStatus{}
)
