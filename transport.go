package dpop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dpopkit/dpop/internal/ctxwait"
	"golang.org/x/oauth2"
)

// Transport is an [http.RoundTripper] that sends a DPoP proof (RFC 9449)
// with every request, and the access token from Source as
// "Authorization: DPoP <token>" (§7.1). The package documentation tells
// the flow of one request, the retries and the redirect rule.
//
// The only required field is Signer. Transport is safe for concurrent use
// by multiple goroutines; do not copy it after first use.
type Transport struct {
	// Base is the transport that sends the requests.
	// If nil, http.DefaultTransport is used. The bodies of its responses
	// must allow Close while a Read is under way, as net/http's do: the
	// Transport stops waiting for a challenge's body that trickles.
	Base http.RoundTripper

	// Source supplies the access token, sent with the DPoP scheme. A token
	// whose TokenType is Bearer is refused with a *[TokenTypeError] unless
	// AllowBearer is set. If nil, requests carry a proof only, as
	// token-endpoint and PAR requests do; an "Authorization: DPoP <token>"
	// header already on the request (set by an oauth2.Transport stacked on
	// top, say) is then kept and its hash goes into the proof.
	//
	// A Source that is a [TokenSource], as those of this package are, is
	// waited for no longer than the request's context, and replaces a token
	// a server refused. Another Source is waited for in a goroutine of its
	// own when the request's context can end.
	Source oauth2.TokenSource

	// Signer signs the proofs. It is required.
	Signer *Signer

	// Nonces holds the server nonces. If nil, the Transport keeps its own.
	// Share one cache between transports that talk to the same servers in
	// the same role; see [NonceCache] about authorization and resource
	// servers on one origin.
	Nonces *NonceCache

	// AllowBearer sends a Source token of type Bearer (an unbound token, a
	// downgrade; see [Config.AllowBearer]) with the Bearer scheme and a
	// proof without ath, instead of failing.
	AllowBearer bool

	// NonceRetries is the policy for use_dpop_nonce challenges (RFC 9449
	// §8, §9): it returns, for a request, how many challenges the request
	// may answer, each with a new proof carrying a nonce not tried before
	// for it. Results above 5 count as 5, below 0 as 0. If NonceRetries is
	// nil, a request answers one challenge. A server
	// that rotates its nonce after a few proofs and accepts few old ones
	// may challenge a retry again under load; a larger bound lets the
	// request through at the cost of another round trip.
	NonceRetries func(req *http.Request) int

	// Now is the clock of the proofs' iat claim. If nil, time.Now is used.
	Now func() time.Time

	// Trace, if set, is told of proofs, challenges, retries, nonces and
	// clock offsets, and of refused Bearer tokens.
	Trace *Trace

	token      atomic.Pointer[presentedToken] // the last token seen
	ownNonces  lazyNonceCache                 // when Nonces is nil
	authServer bool                           // the token machinery's: its requests go to the authorization server
}

// maxNonceRetries bounds what [Transport.NonceRetries] returns.
const maxNonceRetries = 5

// maxProbeWait bounds how long a request to an origin whose nonce is not
// known waits for the first request to it: long enough for a challenge
// to come back, short enough that a slow first request (a long poll, an
// upload) does not hold the others for long.
const maxProbeWait = time.Second

var _ http.RoundTripper = (*Transport)(nil)

func (t *Transport) summary() summary {
	return summary{"dpop.Transport", []slog.Attr{
		signerAttr("Signer", t.Signer), slog.Any("Source", part(t.Source != nil)), slog.Bool("AllowBearer", t.AllowBearer),
	}}
}

// Format prints which parts the Transport has, and its signer's
// algorithm and thumbprint; never a token or a key, whatever the verb.
func (t *Transport) Format(f fmt.State, verb rune) { t.summary().format(f) }

// LogValue is the summary Format prints, for log/slog.
func (t *Transport) LogValue() slog.Value { return t.summary().logValue() }

// MarshalJSON is the summary Format prints, as a JSON object.
func (t *Transport) MarshalJSON() ([]byte, error) { return t.summary().marshalJSON() }

// presentedToken is an access token with what a request presenting it
// needs: its Authorization header value and its proof's ath.
type presentedToken struct {
	token, ath, authorization string
	bearer                    bool // an unbound token, accepted with AllowBearer
}

// call is one RoundTrip: the caller's request and what every attempt of it
// shares. It lives on RoundTrip's stack.
type call struct {
	req     *http.Request
	origin  origin
	tok     *presentedToken // nil: no access token goes with this request
	foreign bool            // a redirect hop to another origin than the chain's first
	nonces  *NonceCache
	nonce   string        // the server nonce for the next attempt; "" for none
	offset  time.Duration // the origin's clock minus ours, for iat
	probe   chan struct{} // while this is the first request to an unknown origin

	refused              [maxNonceRetries + 1]string // nonces challenged so far
	nonceRetries         int
	clockRetry, tokRetry bool   // whether those retries were made
	offsetDropped        bool   // the last attempt went with an offset the server's Date no longer shows
	sent                 *fence // the last attempt's body, when a retry may rewind it
}

// RoundTrip implements [http.RoundTripper]: check the request, get the
// token, send one attempt, and let the retry policy decide on the response.
// It never modifies req, and it closes req.Body on every path, as the
// interface requires.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var c call
	defer t.endProbe(&c) // on every path, a panic in Base or a Trace included
	if err := t.start(&c, req); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, err := t.attempt(&c, req.Body) // Base closes req.Body from here on
	if err != nil {
		return nil, err
	}
	return t.retry(&c, resp)
}

// start checks req, gets the token it presents, if any, and what is known
// of its origin, waiting for the first request to an origin not yet known.
func (t *Transport) start(c *call, req *http.Request) error {
	if t.Signer == nil {
		return errors.New("dpop: Transport's Signer is nil")
	}
	if req.URL == nil {
		return errors.New("dpop: request URL is nil")
	}
	if err := checkURL(req.URL, req.Host); err != nil {
		return err
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return err
	}
	*c = call{req: req, origin: originOf(req.URL, req.Host), nonces: t.nonces()}
	if req.Response != nil { // a redirect: the token stays with the chain's first origin
		first, ok := firstOrigin(req)
		c.foreign = !ok || c.origin != first
	}
	if !c.foreign {
		var err error
		if c.tok, err = t.presented(ctx, req); err != nil {
			return err
		}
	}
	e, known := c.nonces.lookup(c.origin)
	if !known {
		wait, first := c.nonces.probe(c.origin)
		if first {
			c.probe = wait
		} else {
			if wait != nil {
				if err := waitProbe(ctx, wait); err != nil {
					return err
				}
			}
			// Learned while this request waited, or between its lookup
			// and its probe (no wait then): look again.
			e, _ = c.nonces.lookup(c.origin)
		}
	}
	c.nonce, c.offset = e.nonce, e.offset
	return nil
}

// waitProbe waits for the first request to an origin to have its answer,
// for no longer than ctx and maxProbeWait.
func waitProbe(ctx context.Context, wait <-chan struct{}) error {
	timer := time.NewTimer(maxProbeWait)
	defer timer.Stop()
	select {
	case <-wait:
	case <-timer.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// presented returns the token req presents: the Source's, or, without a
// Source, a DPoP token already in req's Authorization header.
func (t *Transport) presented(ctx context.Context, req *http.Request) (*presentedToken, error) {
	if t.Source == nil {
		if v, ok := dpopAuthorization(req.Header); ok {
			return t.presentedToken(v, false), nil
		}
		return nil, nil
	}
	tk, err := sourceToken(ctx, t.Source)
	if err != nil {
		return nil, fmt.Errorf("dpop: cannot get token: %w", err)
	}
	if tk == nil || tk.AccessToken == "" {
		return nil, errors.New("dpop: Transport's Source returned no access token")
	}
	bearer := strings.EqualFold(tk.TokenType, "Bearer")
	if bearer && !t.AllowBearer {
		if tr := t.Trace; tr != nil && tr.DowngradeRefused != nil {
			origin, method, path := where(originOf(req.URL, req.Host), req)
			tr.DowngradeRefused(DowngradeInfo{Context: ctx, AuthServer: t.authServer, Origin: origin, Method: method, Path: path,
				TokenType: cleanText(tk.TokenType, maxCodeText)})
		}
		return nil, &TokenTypeError{TokenType: cleanText(tk.TokenType, maxCodeText)}
	}
	return t.presentedToken(tk.AccessToken, bearer), nil
}

// sourceToken returns src's token, waiting for it no longer than ctx.
func sourceToken(ctx context.Context, src oauth2.TokenSource) (*oauth2.Token, error) {
	if s, ok := src.(TokenSource); ok {
		return s.TokenContext(ctx)
	}
	if ctx.Done() == nil {
		return src.Token() // no wait to bound, and no closure to allocate
	}
	return ctxwait.Do(ctx, src.Token)
}

// attempt sends c's request once, with body and a new proof, and learns
// from the response what it says of the origin (its nonce, whatever the
// status; the end of a clock difference). body is closed on every path.
func (t *Transport) attempt(c *call, body io.ReadCloser) (*http.Response, error) {
	r2, err := t.outgoing(c)
	if err != nil {
		t.endProbe(c)
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	if body != nil && body != http.NoBody && c.req.GetBody != nil {
		// A retry may follow: let it cut this attempt's body off.
		c.sent = &fence{rc: body}
		body = c.sent
	}
	r2.Body = body
	resp, err := t.base().RoundTrip(r2)
	if err == nil && resp == nil {
		err = errors.New("dpop: Transport's Base returned neither a response nor an error")
	}
	if err != nil {
		t.endProbe(c)
		return nil, err
	}
	if resp.Body == nil {
		resp.Body = http.NoBody // as net/http's Client does for a nonconforming RoundTripper
	}
	if resp.Header == nil {
		resp.Header = make(http.Header)
	}
	if resp.Request == nil {
		resp.Request = r2 // as net/http sets it: what was sent, to redact from a challenge
	}
	changed, had := c.nonces.learn(c.origin, resp)
	t.endProbe(c)
	if tr := t.Trace; tr != nil && tr.NonceLearned != nil && changed {
		origin, method, path := where(c.origin, c.req)
		tr.NonceLearned(NonceInfo{Context: c.req.Context(), AuthServer: t.authServer, Origin: origin, Method: method, Path: path, Changed: had})
	}
	if c.offset != 0 {
		if d, ok := serverClockSkew(resp, t.now()); ok && d < clockTolerance && d > -clockTolerance {
			c.nonces.setOffset(c.origin, 0) // the clocks agree again
			c.offset, c.offsetDropped = 0, true
		}
	}
	return resp, nil
}

// endProbe lets the requests waiting for c, the first request to its
// origin, go on.
func (t *Transport) endProbe(c *call) {
	if c.probe != nil {
		c.nonces.release(c.origin, c.probe)
		c.probe = nil
	}
}

// outgoing returns the request to send: a shallow copy of c.req with its
// own header map carrying a new proof and, when c has a token, the access
// token. The header values of c.req are shared, never modified.
func (t *Transport) outgoing(c *call) (*http.Request, error) {
	req := c.req
	var ath string
	if c.tok != nil {
		ath = c.tok.ath
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet // as net/http sends it
	}
	iat := t.now().Add(c.offset).Unix()
	tr := t.Trace
	var start time.Time
	if tr != nil && tr.ProofSigned != nil {
		start = timeNow()
	}
	proof, err := t.Signer.proof(method, c.origin, req.URL, ath, c.nonce, iat)
	if err != nil {
		return nil, err
	}
	if tr != nil && tr.ProofSigned != nil {
		tr.ProofSigned(ProofInfo{Context: req.Context(), AuthServer: t.authServer, Alg: t.Signer.alg, Method: cleanText(method, maxCodeText),
			HTU: cleanText(htu(c.origin, req.URL), maxURLText), Nonce: c.nonce != "", ATH: ath != "", Duration: timeNow().Sub(start)})
	}
	out := new(outgoingRequest) // one allocation for the request and the new values
	r2 := &out.req
	*r2 = *req
	r2.Header = make(http.Header, len(req.Header)+2)
	for k, v := range req.Header {
		r2.Header[k] = v
	}
	if c.foreign {
		if _, ok := dpopAuthorization(req.Header); ok {
			delete(r2.Header, "Authorization")
		}
	}
	out.vals[0] = proof
	r2.Header["Dpop"] = out.vals[0:1:1]
	if c.tok != nil {
		out.vals[1] = c.tok.authorization
		r2.Header["Authorization"] = out.vals[1:2:2]
	}
	return r2, nil
}

// where returns what a trace event says of a request req to o: its
// origin, method and path (never the query), cut short.
func where(o origin, req *http.Request) (origin, method, path string) {
	method, path = req.Method, req.URL.EscapedPath()
	if method == "" {
		method = http.MethodGet
	}
	if path == "" {
		path = "/"
	}
	return cleanText(o.String(), maxURLText), cleanText(method, maxCodeText), cleanText(path, maxURLText)
}

// challengeInfo returns the trace event of ce, the answer to c.
func (t *Transport) challengeInfo(c *call, ce *ChallengeError) ChallengeInfo {
	origin, method, path := where(c.origin, c.req)
	return ChallengeInfo{Context: c.req.Context(), AuthServer: t.authServer, Origin: origin, Method: method, Path: path,
		StatusCode: ce.StatusCode, ErrorCode: ce.ErrorCode, Scheme: ce.Scheme}
}

// retryInfo returns the trace event of c's retry.
func (t *Transport) retryInfo(c *call, why RetryReason, attempt int) RetryInfo {
	origin, method, path := where(c.origin, c.req)
	return RetryInfo{Context: c.req.Context(), AuthServer: t.authServer, Origin: origin, Method: method, Path: path,
		Reason: why, Attempt: attempt}
}

// clockOffsetInfo returns the trace event of the clock offset c learned.
func (t *Transport) clockOffsetInfo(c *call) ClockOffsetInfo {
	origin, method, path := where(c.origin, c.req)
	return ClockOffsetInfo{Context: c.req.Context(), AuthServer: t.authServer, Origin: origin, Method: method, Path: path,
		Offset: c.offset}
}

// outgoingRequest holds a request to send and its new header values.
type outgoingRequest struct {
	req  http.Request
	vals [2]string // DPoP, Authorization
}

// presentedToken returns the cached proof inputs for token, computing them
// when the token changed.
func (t *Transport) presentedToken(token string, bearer bool) *presentedToken {
	if p := t.token.Load(); p != nil && p.token == token && p.bearer == bearer {
		return p
	}
	p := &presentedToken{token: token, bearer: bearer, ath: accessTokenHash(token), authorization: "DPoP " + token}
	if bearer {
		p.ath, p.authorization = "", "Bearer "+token
	}
	t.token.Store(p)
	return p
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *Transport) nonces() *NonceCache { return t.ownNonces.get(t.Nonces) }

func (t *Transport) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return timeNow()
}

// dpopAuthorization returns the token of an "Authorization: DPoP <token>"
// header (the scheme is case-insensitive, RFC 9110 §11.1).
func dpopAuthorization(h http.Header) (string, bool) {
	v := h["Authorization"]
	if len(v) != 1 || len(v[0]) < 6 || !strings.EqualFold(v[0][:5], "DPoP ") {
		return "", false
	}
	token := strings.TrimLeft(v[0][5:], " ")
	return token, token != ""
}

// fence is an attempt's request body that the retry policy cuts off before
// it rewinds the body for the next attempt: a Base may go on reading the
// old attempt's body after its response (HTTP/2 does), and GetBody may
// return the same reader rewound (connect-go's does), so without the cut
// the old attempt would take the new one's bytes.
type fence struct {
	mu  sync.Mutex // guards cut; held across Read, so no Read of rc follows cut
	rc  io.ReadCloser
	cut bool
}

func (f *fence) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut {
		return 0, errBodyCut
	}
	return f.rc.Read(p)
}

func (f *fence) Close() error { return f.rc.Close() }

// cutOff ends f's reads; it returns once no Read of f is under way.
func (f *fence) cutOff() {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.cut = true
	f.mu.Unlock()
}

var errBodyCut = errors.New("dpop: request body of an attempt the retry policy replaced")
