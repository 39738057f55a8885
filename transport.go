package dpop

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"golang.org/x/oauth2"
)

// Transport is an [http.RoundTripper] that sends a DPoP proof (RFC 9449)
// with every request, and the access token from Source as
// "Authorization: DPoP <token>" (§7.1). The package documentation tells
// the flow of one request, the nonce retry and the redirect rule.
//
// The only required field is Signer. Transport is safe for concurrent use
// by multiple goroutines; do not copy it after first use.
type Transport struct {
	// Base is the transport that sends the requests.
	// If nil, http.DefaultTransport is used.
	Base http.RoundTripper

	// Source supplies the access token, sent with the DPoP scheme. A token
	// whose TokenType is Bearer is refused with a *[TokenTypeError] unless
	// AllowBearer is set. If nil, requests carry a proof only, as
	// token-endpoint and PAR requests do; an "Authorization: DPoP <token>"
	// header already on the request (set by an oauth2.Transport stacked on
	// top, say) is then kept and its hash goes into the proof.
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

	token     atomic.Pointer[presentedToken] // the last token seen
	ownNonces lazyNonceCache                 // when Nonces is nil
}

var _ http.RoundTripper = (*Transport)(nil)

// Format prints which parts the Transport has, and its signer's
// algorithm and thumbprint; never a token or a key, whatever the verb.
func (t *Transport) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "dpop.Transport{Signer: %v, Source: %s, AllowBearer: %t}", t.Signer, set(t.Source != nil), t.AllowBearer)
}

// set describes an optional part in Format output.
func set(ok bool) string {
	if ok {
		return "set"
	}
	return "nil"
}

// presentedToken is an access token with what a request presenting it
// needs: its Authorization header value and its proof's ath.
type presentedToken struct {
	token, ath, authorization string
	bearer                    bool // an unbound token, accepted with AllowBearer
}

// call is one RoundTrip: the caller's request and what every attempt of it
// shares.
type call struct {
	req     *http.Request
	origin  origin
	tok     *presentedToken // nil: no access token goes with this request
	foreign bool            // a redirect hop to another origin than the chain's first
	nonces  *NonceCache
	nonce   string // the server nonce for the next attempt; "" for none
}

// RoundTrip implements [http.RoundTripper]: check the request, get the
// token, send one attempt, and let the retry policy decide on the response.
// It never modifies req, and it closes req.Body on every path, as the
// interface requires.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	c, err := t.newCall(req)
	if err != nil {
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

// newCall checks req and gets the token it presents, if any.
// The call is a value, so that it stays on the stack.
func (t *Transport) newCall(req *http.Request) (call, error) {
	if t.Signer == nil {
		return call{}, errors.New("dpop: Transport's Signer is nil")
	}
	if req.URL == nil {
		return call{}, errors.New("dpop: request URL is nil")
	}
	if err := checkURL(req.URL, req.Host); err != nil {
		return call{}, err
	}
	if err := req.Context().Err(); err != nil {
		return call{}, err
	}
	c := call{req: req, origin: originOf(req.URL, req.Host), nonces: t.nonces()}
	if req.Response != nil { // a redirect: the token stays with the chain's first origin
		first, ok := firstOrigin(req)
		c.foreign = !ok || c.origin != first
	}
	if !c.foreign {
		var err error
		if c.tok, err = t.presented(req); err != nil {
			return call{}, err
		}
	}
	c.nonce = c.nonces.get(c.origin)
	return c, nil
}

// presented returns the token req presents: the Source's, or, without a
// Source, a DPoP token already in req's Authorization header.
func (t *Transport) presented(req *http.Request) (*presentedToken, error) {
	if t.Source == nil {
		if v, ok := dpopAuthorization(req.Header); ok {
			return t.presentedToken(v, false), nil
		}
		return nil, nil
	}
	tk, err := t.Source.Token()
	if err != nil {
		return nil, fmt.Errorf("dpop: cannot get token: %w", err)
	}
	if tk == nil || tk.AccessToken == "" {
		return nil, errors.New("dpop: Transport's Source returned no access token")
	}
	bearer := strings.EqualFold(tk.TokenType, "Bearer")
	if bearer && !t.AllowBearer {
		return nil, &TokenTypeError{TokenType: tk.TokenType}
	}
	return t.presentedToken(tk.AccessToken, bearer), nil
}

// retry is the retry policy: it looks at the response to the first attempt
// and, for a use_dpop_nonce challenge (RFC 9449 §8, §9) whose nonce was not
// just tried, when req's body can be sent again, sends one more attempt.
// It never retries twice.
func (t *Transport) retry(c *call, resp *http.Response) (*http.Response, error) {
	if !replayable(c.req) {
		return resp, nil
	}
	ce := nonceChallenge(resp)
	if ce == nil || ce.Nonce == c.nonce {
		return resp, nil
	}
	drainClose(resp)
	if err := c.req.Context().Err(); err != nil {
		return nil, err
	}
	body, err := rewind(c.req)
	if err != nil {
		return nil, err
	}
	c.nonce = ce.Nonce
	return t.attempt(c, body)
}

// attempt sends c's request once, with body and a new proof, and remembers
// the response's nonce for c's origin, whatever its status. body is closed
// on every path.
func (t *Transport) attempt(c *call, body io.ReadCloser) (*http.Response, error) {
	r2, err := t.outgoing(c)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	r2.Body = body
	resp, err := t.base().RoundTrip(r2)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, errors.New("dpop: Transport's Base returned neither a response nor an error")
	}
	if resp.Body == nil {
		resp.Body = http.NoBody // as net/http's Client does for a nonconforming RoundTripper
	}
	if resp.Header == nil {
		resp.Header = make(http.Header)
	}
	c.nonces.put(c.origin, responseNonce(resp))
	return resp, nil
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
	proof, err := t.Signer.proof(method, c.origin, req.URL, ath, c.nonce)
	if err != nil {
		return nil, err
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

// replayable reports whether req's body can be sent a second time.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// rewind returns a new copy of req's body for another attempt.
func rewind(req *http.Request) (io.ReadCloser, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req.Body, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("dpop: cannot rewind request body for the nonce retry: %w", err)
	}
	return body, nil
}
