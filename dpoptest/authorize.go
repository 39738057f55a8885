package dpoptest

import (
	"net/http"
	"net/url"
	"regexp"
	"time"
)

const (
	// TestUser is the subject the authorization endpoint approves, without
	// a browser, for every authorization request.
	TestUser = "alice"

	parPrefix = "urn:ietf:params:oauth:request_uri:"
	parTTL    = 60 * time.Second
)

// parRequest is a pushed authorization request (RFC 9126 §2).
type parRequest struct {
	clientID string
	params   url.Values
	jkt      string // from the PAR's DPoP proof or dpop_jkt (RFC 9449 §10.1)
	expiry   time.Time
}

// b64SHA256 is the syntax of an S256 code_challenge and of a dpop_jkt.
var b64SHA256 = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// checkAuthzParams validates the parameters of an authorization request
// other than client_id and redirect_uri (RFC 6749 §4.1.1, RFC 7636 §4.3,
// RFC 9449 §10).
func checkAuthzParams(q url.Values) *oauthError {
	switch {
	case q.Get("response_type") != "code":
		return badRequest("unsupported_response_type", "response_type must be code")
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") == "":
		return badRequest("invalid_request", "PKCE with code_challenge_method S256 is required")
	case q.Get("code_challenge_method") != "S256":
		return badRequest("invalid_request", "transform algorithm not supported, use S256")
	case !b64SHA256.MatchString(q.Get("code_challenge")):
		return badRequest("invalid_request", "malformed code_challenge")
	case q.Has("dpop_jkt") && !b64SHA256.MatchString(q.Get("dpop_jkt")):
		return badRequest("invalid_request", "malformed dpop_jkt")
	}
	return nil
}

// serveAuthorize is the authorization endpoint (RFC 6749 §4.1.1): it
// approves TestUser at once and redirects with a code, or with an error
// when the redirect URI can be trusted (RFC 6749 §4.1.2.1). A request_uri
// from a PAR replaces the other parameters (RFC 9126 §4).
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	rec := record(r)
	rec.Kind = "authorize"
	if r.Method != http.MethodGet {
		s.writeError(w, r, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "use GET"})
		return
	}
	q := r.URL.Query()
	rec.ClientID = q.Get("client_id")
	c, ok := s.clients[rec.ClientID]
	if !ok {
		s.writeError(w, r, badRequest("invalid_request", "unknown client_id"))
		return
	}
	params, jkt := q, ""
	if ru := q.Get("request_uri"); ru != "" {
		s.mu.Lock()
		pr := s.pars[ru]
		delete(s.pars, ru) // single use
		s.mu.Unlock()
		if pr == nil || pr.clientID != c.ID || !s.now().Before(pr.expiry) {
			s.writeError(w, r, badRequest("invalid_request_uri", "unknown, expired or used request_uri"))
			return
		}
		params, jkt = pr.params, pr.jkt
	}
	redirectURI := params.Get("redirect_uri")
	if redirectURI == "" || !c.redirectOK(redirectURI) {
		s.writeError(w, r, badRequest("invalid_request", "redirect_uri missing or not registered"))
		return
	}
	back := url.Values{}
	if st := params.Get("state"); st != "" {
		back.Set("state", st)
	}
	if oe := checkAuthzParams(params); oe != nil {
		rec.Error = oe.code
		back.Set("error", oe.code)
		back.Set("error_description", oe.desc)
		redirect(w, redirectURI, back)
		return
	}
	if jkt == "" {
		jkt = params.Get("dpop_jkt")
	}
	code := randString(24)
	s.mu.Lock()
	s.codes[code] = &authCode{
		clientID:    c.ID,
		redirectURI: redirectURI,
		scope:       params.Get("scope"),
		subject:     TestUser,
		challenge:   params.Get("code_challenge"),
		jkt:         jkt,
		expiry:      s.now().Add(codeTTL),
	}
	s.mu.Unlock()
	back.Set("code", code)
	back.Set("iss", s.URL) // RFC 9207
	redirect(w, redirectURI, back)
}

// redirect answers 302 to uri with params added to its query.
func redirect(w http.ResponseWriter, uri string, params url.Values) {
	u, _ := url.Parse(uri) // validated by redirectOK
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

// servePAR is the pushed authorization request endpoint (RFC 9126 §2).
// A DPoP proof, when sent, is verified like at the token endpoint, nonce
// policy included, and its key is bound to the request; a dpop_jkt must
// then name the same key (RFC 9449 §10.1).
func (s *Server) servePAR(w http.ResponseWriter, r *http.Request) {
	rec := record(r)
	rec.Kind = "par"
	form, oe := parseForm(w, r)
	if oe != nil {
		s.writeError(w, r, oe)
		return
	}
	var p *Proof
	if len(r.Header.Values("DPoP")) > 0 {
		var fail *proofFailure
		if p, fail = s.checkProof(r, "", s.asNonce); fail != nil {
			s.writeError(w, r, badRequest(fail.code, fail.desc))
			return
		}
	}
	c, oe := s.authenticateClient(r, form)
	if oe != nil {
		s.writeError(w, r, oe)
		return
	}
	if form.Has("request_uri") {
		s.writeError(w, r, badRequest("invalid_request", "request_uri is not allowed in a pushed authorization request"))
		return
	}
	if ru := form.Get("redirect_uri"); ru == "" || !c.redirectOK(ru) {
		s.writeError(w, r, badRequest("invalid_request", "redirect_uri missing or not registered"))
		return
	}
	if oe := checkAuthzParams(form); oe != nil {
		s.writeError(w, r, oe)
		return
	}
	jkt := form.Get("dpop_jkt")
	if p != nil {
		if jkt != "" && jkt != p.Thumbprint {
			s.writeError(w, r, badRequest("invalid_dpop_proof", "dpop_jkt does not match the DPoP proof's key"))
			return
		}
		jkt = p.Thumbprint
	}
	params := url.Values{}
	for _, k := range []string{"response_type", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method"} {
		if form.Has(k) {
			params.Set(k, form.Get(k))
		}
	}
	ru := parPrefix + randString(24)
	s.mu.Lock()
	s.pars[ru] = &parRequest{clientID: c.ID, params: params, jkt: jkt, expiry: s.now().Add(parTTL)}
	s.mu.Unlock()
	s.writeAS(w, http.StatusCreated, map[string]any{"request_uri": ru, "expires_in": int(parTTL / time.Second)})
}
