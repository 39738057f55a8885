package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// printer writes the demo's events: a trace for people, or with -json one
// JSON object per line. The events are "step", "request" (an [attempt]),
// "info", "check" and, last, "result".
type printer struct {
	w    io.Writer
	json bool
	pal  palette

	mu   sync.Mutex // guards step and err, and orders the writes
	step int        // the step running
	err  error      // the first write error
}

// palette holds ANSI escapes; all empty without colour.
type palette struct {
	bold, dim, red, green, yellow, cyan, reset string
}

func newPrinter(w io.Writer, opts options) *printer {
	p := &printer{w: w, json: opts.json}
	if opts.color && !opts.json {
		p.pal = palette{
			bold: "\x1b[1m", dim: "\x1b[2m", red: "\x1b[31m", green: "\x1b[32m",
			yellow: "\x1b[33m", cyan: "\x1b[36m", reset: "\x1b[0m",
		}
	}
	return p
}

type stepEvent struct {
	Event string `json:"event"` // "step"
	Step  int    `json:"step"`
	Name  string `json:"name"`
	Title string `json:"title"`
}

type infoEvent struct {
	Event string `json:"event"` // "info"
	Step  int    `json:"step"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

type checkEvent struct {
	Event string `json:"event"` // "check"
	Step  int    `json:"step"`
	Check string `json:"check"`
	OK    bool   `json:"ok"`
	Got   string `json:"got,omitempty"` // what was seen instead, when not ok
}

type resultEvent struct {
	Event      string `json:"event"` // "result"
	OK         bool   `json:"ok"`
	Steps      int    `json:"steps"` // steps that behaved as shown
	Requests   int    `json:"requests"`
	ElapsedMS  int64  `json:"elapsed_ms"`
	FailedStep int    `json:"failed_step,omitempty"`
	Error      string `json:"error,omitempty"`
}

func (p *printer) currentStep() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.step
}

func (p *printer) beginStep(n int, name, title string) {
	p.mu.Lock()
	p.step = n
	p.mu.Unlock()
	if p.json {
		p.emit(stepEvent{"step", n, name, title})
		return
	}
	p.linef("")
	p.linef("%s%2d. %s%s", p.pal.bold+p.pal.cyan, n, title, p.pal.reset)
}

func (p *printer) info(key, value string) {
	if p.json {
		p.emit(infoEvent{"info", p.currentStep(), key, value})
		return
	}
	p.linef("    %-14s %s", key, value)
}

func (p *printer) check(what string, ok bool, got string) {
	if p.json {
		if ok {
			got = ""
		}
		p.emit(checkEvent{"check", p.currentStep(), what, ok, got})
		return
	}
	if ok {
		p.linef("    %s✓ %s%s", p.pal.green, what, p.pal.reset)
		return
	}
	p.linef("    %s✗ %s (got %s)%s", p.pal.red+p.pal.bold, what, got, p.pal.reset)
}

func (p *printer) result(r resultEvent) {
	r.Event = "result"
	if p.json {
		p.emit(r)
		return
	}
	p.linef("")
	if r.OK {
		p.linef("%s✓ All %d steps behaved as shown (%d HTTP requests, %d ms).%s", p.pal.bold+p.pal.green, r.Steps, r.Requests, r.ElapsedMS, p.pal.reset)
		return
	}
	p.linef("%s✗ %s%s", p.pal.bold+p.pal.red, r.Error, p.pal.reset)
}

// request shows one attempt: the request line, the decoded proof, and the
// response with the server's nonce; a retry is preceded by its reason.
func (p *printer) request(a *attempt) {
	if p.json {
		p.emit(a)
		return
	}
	c := p.pal
	if a.RetryReason != "" {
		p.linef("    %s↻ %s%s", c.yellow, a.RetryReason, c.reset)
	}
	party := ""
	if a.Party != "client" {
		party = "[" + a.Party + "] "
	}
	auth := ""
	if a.AuthScheme != "" {
		auth = fmt.Sprintf("  %sAuthorization: %s %s%s", c.dim, a.AuthScheme, short(a.token), c.reset)
	}
	p.linef("    %s→ %s%s %s%s%s", c.bold, party, a.Method, displayURL(a.URL), c.reset, auth)
	switch pr := a.Proof; {
	case pr != nil:
		jwk := pr.Kty
		if pr.Crv != "" {
			jwk += "/" + pr.Crv
		}
		p.linef("      %sproof   typ=%s alg=%s jwk=%s jkt=%s%s", c.dim, pr.Typ, pr.Alg, jwk, short(pr.JKT), c.reset)
		claims := fmt.Sprintf("jti=%s htm=%s htu=%s iat=%s", short(pr.JTI), pr.HTM, pr.HTU, clock(pr.IAT))
		if pr.ATH != "" {
			claims += " ath=" + short(pr.ATH)
		}
		p.linef("      %sclaims  %s nonce=%s%s", c.dim, claims, orNone(short(pr.Nonce)), c.reset)
	case a.ProofError != "":
		p.linef("      %sproof   undecodable: %s%s", c.red, a.ProofError, c.reset)
	default:
		p.linef("      %sproof   none%s", c.dim, c.reset)
	}
	p.linef("    %s← %s%s%s", p.statusColor(a), responseText(a), c.reset, nonceNote(a))
}

func (p *printer) statusColor(a *attempt) string {
	switch {
	case a.Status >= 200 && a.Status < 400:
		return p.pal.green
	case a.nonceChallenge():
		return p.pal.yellow
	}
	return p.pal.red
}

func responseText(a *attempt) string {
	if a.TransportError != "" {
		return "error: " + a.TransportError
	}
	s := fmt.Sprintf("%d %s", a.Status, http.StatusText(a.Status))
	if a.Error != "" {
		s = fmt.Sprintf("%d %s", a.Status, a.Error)
		if a.ErrorDescription != "" {
			s += " (" + a.ErrorDescription + ")"
		}
	}
	if a.Location != "" {
		s += " → " + displayURL(a.Location)
	}
	return s
}

// nonceNote describes the response's DPoP-Nonce relative to the one sent.
func nonceNote(a *attempt) string {
	switch n := a.NonceReceived; {
	case n == "":
		return ""
	case a.NonceSent == "":
		return "  DPoP-Nonce: " + short(n) + " (new)"
	case n == a.NonceSent:
		return "  DPoP-Nonce: " + short(n) + " (unchanged)"
	default:
		return "  DPoP-Nonce: " + short(n) + " (changed)"
	}
}

// emit writes v as one line of JSON.
func (p *printer) emit(v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep & and < readable in URLs
	if err := enc.Encode(v); err != nil {
		panic("demo: " + err.Error()) // only our own event types are encoded
	}
	p.write(b.Bytes())
}

func (p *printer) linef(format string, args ...any) {
	p.write([]byte(fmt.Sprintf(format, args...) + "\n"))
}

func (p *printer) write(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	if _, err := p.w.Write(b); err != nil {
		p.err = fmt.Errorf("demo: writing output: %w", err)
	}
}

// writeErr returns the first error writing the output.
func (p *printer) writeErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// short abbreviates a long value (token, jti, hash, nonce) for the trace.
func short(s string) string {
	if len(s) <= 12 {
		return s
	}
	return s[:6] + "…" + s[len(s)-4:]
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// displayURL drops the query of a URL, which the trace explains elsewhere,
// and shortens its code parameter.
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.RawQuery == "" {
		return raw
	}
	q := u.Query()
	if code := q.Get("code"); code != "" {
		return fmt.Sprintf("%s://%s%s?code=%s&…", u.Scheme, u.Host, u.EscapedPath(), short(code))
	}
	return fmt.Sprintf("%s://%s%s?…(%d parameters)", u.Scheme, u.Host, u.EscapedPath(), len(q))
}

// clock shows a Unix time as the time of day in UTC.
func clock(unix int64) string {
	return time.Unix(unix, 0).UTC().Format("15:04:05Z")
}

// joinKV renders key=value pairs in order, skipping empty values.
func joinKV(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv[i] + "=" + kv[i+1])
	}
	return b.String()
}
