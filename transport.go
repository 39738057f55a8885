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
// "Authorization: DPoP <token>" (§7.1).
//
// The only required field is Signer. Transport is safe for concurrent use
// by multiple goroutines; do not copy it after first use.
//
// For each request, Transport signs a new proof (new jti and iat, with ath
// when a token is sent, and the origin's current server nonce), sends a
// clone of the request, and remembers any valid DPoP-Nonce of the response
// for the request's origin, whatever its status. When the response is a
// use_dpop_nonce challenge (a resource server's 401 with a DPoP
// WWW-Authenticate challenge, §9, or an authorization server's 400 JSON
// error, §8) carrying a nonce other than the one just sent, and the body can
// be sent again (no body, or GetBody set), it closes that response and sends
// the request once more with a fresh proof. It never retries twice.
//
// On a redirect that [http.Client] follows to another origin than that of
// the first request of the chain, the hop gets a proof without ath and no
// access token: the token goes only to the origin the caller addressed.
type Transport struct {
	// Base is the transport that sends the requests.
	// If nil, http.DefaultTransport is used.
	Base http.RoundTripper

	// Source supplies the access token, sent with the DPoP scheme. A token
	// whose TokenType is Bearer is refused with a *[TokenTypeError] unless
	// AllowBearer is set. If nil, requests carry a proof only, as token-endpoint and PAR requests do; an
	// "Authorization: DPoP <token>" header already on the request (set by
	// an oauth2.Transport stacked on top, say) is then kept and its hash
	// goes into the proof.
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

	token     atomic.Pointer[tokenEntry] // hash of the last token seen
	ownNonces lazyNonces                 // when Nonces is nil
}

var _ http.RoundTripper = (*Transport)(nil)

// tokenEntry caches what a proof needs of the current access token.
type tokenEntry struct {
	token, ath, authorization string
	bearer                    bool // an unbound token, accepted with Config.AllowBearer
}

// maxDrain bounds how much of a challenge's body is read before it is
// closed, so that its connection can be reused without reading forever.
const maxDrain = 64 << 10

// RoundTrip implements [http.RoundTripper]. It never modifies req, and it
// closes req.Body on every path, as the interface requires.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	bodyClosed := false
	if req.Body != nil {
		defer func() {
			if !bodyClosed {
				req.Body.Close()
			}
		}()
	}
	if t.Signer == nil {
		return nil, errors.New("dpop: Transport's Signer is nil")
	}
	if req.URL == nil || !httpURL(req.URL) {
		return nil, errors.New("dpop: request URL is not an absolute http or https URL")
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	if req.Host != "" && !validHost(req.Host) {
		return nil, fmt.Errorf("dpop: request Host %q is not a valid host", req.Host)
	}
	o := originOf(req.URL, req.Host)
	sameOrigin := req.Response == nil // not a redirect: the caller's own target
	if !sameOrigin {
		first, ok := firstOrigin(req)
		sameOrigin = ok && o == first
	}
	var tok *tokenEntry
	switch {
	case !sameOrigin:
	case t.Source != nil:
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
		tok = t.tokenEntry(tk.AccessToken, bearer)
	default:
		if v, ok := dpopAuthorization(req.Header); ok {
			tok = t.tokenEntry(v, false)
		}
	}

	nonces := t.nonces()
	nonce := nonces.get(o)
	for attempt := 0; ; attempt++ {
		r2, err := t.outgoing(req, o, tok, nonce, !sameOrigin)
		if err != nil {
			return nil, err
		}
		if attempt > 0 {
			if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
				if r2.Body, err = req.GetBody(); err != nil {
					return nil, fmt.Errorf("dpop: cannot rewind request body for the nonce retry: %w", err)
				}
			}
		}
		bodyClosed = true // Base closes it from here on, even on error
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
		nonces.put(o, responseNonce(resp))
		if attempt > 0 || !retryable(req) {
			return resp, nil
		}
		ce := nonceChallenge(resp)
		if ce == nil || ce.Nonce == nonce {
			return resp, nil
		}
		drainClose(resp)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		nonce = ce.Nonce
	}
}

// outgoing returns the request to send: a shallow copy of req with its own
// header map carrying a new proof and, when tok is set, the access token.
// The header values of req are shared, never modified.
func (t *Transport) outgoing(req *http.Request, o origin, tok *tokenEntry, nonce string, stripAuth bool) (*http.Request, error) {
	var ath string
	if tok != nil {
		ath = tok.ath
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet // as net/http sends it
	}
	proof, err := t.Signer.proof(method, o, req.URL, ath, nonce)
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
	if stripAuth {
		if _, ok := dpopAuthorization(req.Header); ok {
			delete(r2.Header, "Authorization")
		}
	}
	out.vals[0] = proof
	r2.Header["Dpop"] = out.vals[0:1:1]
	if tok != nil {
		out.vals[1] = tok.authorization
		r2.Header["Authorization"] = out.vals[1:2:2]
	}
	return r2, nil
}

// outgoingRequest holds a request to send and its new header values.
type outgoingRequest struct {
	req  http.Request
	vals [2]string // DPoP, Authorization
}

// tokenEntry returns the cached proof inputs for token, computing them when
// the token changed.
func (t *Transport) tokenEntry(token string, bearer bool) *tokenEntry {
	if e := t.token.Load(); e != nil && e.token == token && e.bearer == bearer {
		return e
	}
	e := &tokenEntry{token: token, bearer: bearer, ath: accessTokenHash(token), authorization: "DPoP " + token}
	if bearer {
		e.ath, e.authorization = "", "Bearer "+token
	}
	t.token.Store(e)
	return e
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *Transport) nonces() *NonceCache { return t.ownNonces.or(t.Nonces) }

// firstOrigin returns the origin of the first request of a redirect chain:
// [http.Client] sets Response on each redirected request (see
// http.Request.Response), and that response's Request is the previous hop.
// A chain it cannot follow to its start (a response without its Request,
// as a nonconforming Base may return) yields ok == false: the hop is then
// treated as foreign, so the token is not sent.
func firstOrigin(req *http.Request) (o origin, ok bool) {
	for req.Response != nil {
		if req.Response.Request == nil || req.Response.Request.URL == nil {
			return origin{}, false
		}
		req = req.Response.Request
	}
	return originOf(req.URL, req.Host), true
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

// retryable reports whether req's body can be sent a second time.
func retryable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// nonceChallenge returns resp's use_dpop_nonce challenge with a valid nonce,
// or nil. Only 400 and 401 responses with a DPoP-Nonce header are examined,
// so other responses cost nothing and keep their body untouched.
func nonceChallenge(resp *http.Response) *ChallengeError {
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
		return nil
	}
	if responseNonce(resp) == "" {
		return nil
	}
	ce := responseChallenge(resp)
	if ce == nil || ce.ErrorCode != ErrorUseNonce || ce.Nonce == "" {
		return nil
	}
	return ce
}

// drainClose reads a bounded amount of resp's body, so its connection may
// be reused, and closes it.
func drainClose(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	resp.Body.Close()
}
