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

	codeTTL = time.Minute
)

// authCode is an issued authorization code (RFC 6749 §4.1.2).
type authCode struct {
	clientID, redirectURI, scope, subject string
	challenge                             string // PKCE S256 code_challenge (RFC 7636 §4.2)
	jkt                                   string // dpop_jkt or the PAR proof's key (RFC 9449 §10)
	expiry                                time.Time
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
	rec.Kind = KindAuthorize
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
	if s.cfg.FAPI2 && !q.Has("request_uri") {
		s.writeError(w, r, badRequest("invalid_request", "FAPI 2.0 requires a pushed authorization request (RFC 9126): request_uri missing"))
		return
	}
	params, jkt, oe := s.authorizeParams(q, c.ID)
	if oe != nil {
		s.writeError(w, r, oe)
		return
	}
	redirectURI := params.Get("redirect_uri")
	if redirectURI == "" || !c.redirectOK(redirectURI) {
		s.writeError(w, r, badRequest("invalid_request", "redirect_uri missing or not registered"))
		return
	}
	back := url.Values{"iss": {s.URL}} // RFC 9207 §2, on errors too
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
	redirect(w, redirectURI, back)
}

// authorizeParams returns the parameters of an authorization request: the
// query, or the pushed request its request_uri names (RFC 9126 §4), spent
// at once, with the key the PAR bound.
func (s *Server) authorizeParams(q url.Values, clientID string) (url.Values, string, *oauthError) {
	ru := q.Get("request_uri")
	if ru == "" {
		return q, "", nil
	}
	s.mu.Lock()
	pr := s.pars[ru]
	delete(s.pars, ru) // single use
	s.mu.Unlock()
	if pr == nil || pr.clientID != clientID || !s.now().Before(pr.expiry) {
		return nil, "", badRequest("invalid_request_uri", "unknown, expired or used request_uri")
	}
	return pr.params, pr.jkt, nil
}
