package main

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"

	"github.com/dpopkit/dpop"
)

// tracer is an http.RoundTripper that reports every request it sends. The
// demo installs it as the Base of each dpop.Transport, and under the plain
// clients of the browser and the attacker, so it sees each attempt as it
// goes on the wire (a retry of the Transport included) with its DPoP
// header, and the response that came back. It never changes either.
type tracer struct {
	base  http.RoundTripper
	party string // who sends: "client", "browser" or "attacker"
	log   *traceLog
}

var _ http.RoundTripper = (*tracer)(nil)

// as returns a tracer that labels its requests as sent by party.
func (t *tracer) as(party string) *tracer {
	return &tracer{base: t.base, party: party, log: t.log}
}

func (t *tracer) RoundTrip(req *http.Request) (*http.Response, error) {
	a := newAttempt(t.party, req)
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		a.TransportError = err.Error()
		t.log.add(a)
		return nil, err
	}
	a.readResponse(resp)
	t.log.add(a)
	return resp, nil
}

// attempt is one request on the wire and its response. It is also the
// "request" event of the -json output, so its JSON names are stable.
type attempt struct {
	Event            string     `json:"event"` // always "request"
	Step             int        `json:"step"`
	Seq              int        `json:"seq"` // 1 for the demo's first request
	Party            string     `json:"party"`
	Method           string     `json:"method"`
	URL              string     `json:"url"`
	AuthScheme       string     `json:"auth_scheme,omitempty"` // "DPoP" or "Bearer"
	Proof            *proofView `json:"proof,omitempty"`
	ProofError       string     `json:"proof_error,omitempty"` // the DPoP header did not decode
	NonceSent        string     `json:"nonce_sent"`
	Retry            bool       `json:"retry"`
	RetryReason      string     `json:"retry_reason,omitempty"`
	Status           int        `json:"status"`
	Error            string     `json:"error,omitempty"` // a DPoP error code, e.g. "use_dpop_nonce"
	ErrorDescription string     `json:"error_description,omitempty"`
	NonceReceived    string     `json:"nonce_received,omitempty"` // the response's DPoP-Nonce
	Location         string     `json:"location,omitempty"`
	TransportError   string     `json:"transport_error,omitempty"`

	token  string      // the access token sent, if any
	header http.Header // the request's DPoP and Authorization headers, verbatim
}

func newAttempt(party string, req *http.Request) *attempt {
	a := &attempt{
		Event:  "request",
		Party:  party,
		Method: req.Method,
		URL:    req.URL.String(),
		header: http.Header{},
	}
	for _, k := range []string{"Authorization", "DPoP"} {
		for _, v := range req.Header.Values(k) {
			a.header.Add(k, v)
		}
	}
	if scheme, tok, ok := strings.Cut(req.Header.Get("Authorization"), " "); ok {
		a.AuthScheme, a.token = scheme, tok
	}
	if p := req.Header.Get("DPoP"); p != "" {
		pv, err := decodeProof(p)
		if err != nil {
			a.ProofError = err.Error()
		} else {
			a.Proof, a.NonceSent = pv, pv.Nonce
		}
	}
	return a
}

// readResponse notes the status, the server's nonce and, for a DPoP error,
// its code. dpop.CheckResponse leaves the body readable from its start.
func (a *attempt) readResponse(resp *http.Response) {
	a.Status = resp.StatusCode
	a.NonceReceived = resp.Header.Get("DPoP-Nonce")
	a.Location = resp.Header.Get("Location")
	var ce *dpop.ChallengeError
	if errors.As(dpop.CheckResponse(resp), &ce) {
		a.Error, a.ErrorDescription = ce.ErrorCode, ce.Description
	}
}

// nonceChallenge reports whether the response asked for another nonce than
// the one sent: the case in which a dpop.Transport tries once more.
func (a *attempt) nonceChallenge() bool {
	return a.Error == dpop.CodeUseNonce && a.NonceReceived != "" && a.NonceReceived != a.NonceSent
}

// traceLog keeps the attempts of a run, recognises the Transport's retries
// and hands each attempt to the printer.
type traceLog struct {
	out *printer

	mu         sync.Mutex          // guards all and challenged
	all        []*attempt          // in the order sent
	challenged map[string]*attempt // "METHOD URL" → its nonce challenge, until retried
}

func newTraceLog(out *printer) *traceLog {
	return &traceLog{out: out, challenged: make(map[string]*attempt)}
}

// add records a; an attempt that follows a nonce challenge for the same
// method and URL, carrying the nonce that challenge named, is its retry.
func (l *traceLog) add(a *attempt) {
	l.mu.Lock()
	key := a.Method + " " + a.URL
	if c := l.challenged[key]; c != nil {
		delete(l.challenged, key)
		if a.NonceSent == c.NonceReceived {
			a.Retry = true
			a.RetryReason = fmt.Sprintf("%d %s → retrying once with the server's nonce", c.Status, c.Error)
		}
	}
	if a.nonceChallenge() {
		l.challenged[key] = a
	}
	a.Step = l.out.currentStep()
	a.Seq = len(l.all) + 1
	l.all = append(l.all, a)
	l.mu.Unlock()
	l.out.request(a)
}

// mark returns a position in the log for since.
func (l *traceLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.all)
}

// since returns the attempts added after mark.
func (l *traceLog) since(mark int) []*attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*attempt(nil), l.all[mark:]...)
}

// retries counts the Transport's retries after mark.
func (l *traceLog) retries(mark int) int {
	n := 0
	for _, a := range l.since(mark) {
		if a.Retry {
			n++
		}
	}
	return n
}

// proofView is what a DPoP proof says (RFC 9449 §4.2), decoded for display.
// The demo does not verify it; the servers do.
type proofView struct {
	Typ   string `json:"typ"`
	Alg   string `json:"alg"`
	Kty   string `json:"kty"`
	Crv   string `json:"crv,omitempty"`
	JKT   string `json:"jkt"` // RFC 7638 thumbprint of the header's jwk
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

func decodeProof(compact string) (*proofView, error) {
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	var hdr struct {
		Typ string          `json:"typ"`
		Alg string          `json:"alg"`
		JWK json.RawMessage `json:"jwk"`
	}
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	var kty struct{ Kty, Crv string }
	if err := json.Unmarshal(hdr.JWK, &kty); err != nil {
		return nil, fmt.Errorf("jwk: %w", err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(hdr.JWK); err != nil {
		return nil, fmt.Errorf("jwk: %w", err)
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("jwk thumbprint: %w", err)
	}
	p := &proofView{Typ: hdr.Typ, Alg: hdr.Alg, Kty: kty.Kty, Crv: kty.Crv, JKT: base64.RawURLEncoding.EncodeToString(tp)}
	if err := decodeSegment(parts[1], p); err != nil { // jti, htm, htu, iat, ath, nonce
		return nil, fmt.Errorf("claims: %w", err)
	}
	return p, nil
}

// decodeSegment decodes one base64url part of a compact JWS as JSON.
func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
