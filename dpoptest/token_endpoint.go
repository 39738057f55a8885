package dpoptest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

const (
	grantClientCredentials = "client_credentials"
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
	grantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
)

// refreshGrant is what a refresh token stands for (RFC 6749 §6).
type refreshGrant struct {
	clientID, subject, scope string
	jkt                      string // bound key for public clients (RFC 9449 §5), else ""
}

// pkceVerifier is the code_verifier syntax (RFC 7636 §4.1).
var pkceVerifier = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// serveToken is the token endpoint (RFC 6749 §3.2, RFC 9449 §5): it
// requires a valid DPoP proof without ath, applies the nonce policy
// (RFC 9449 §8), authenticates the client and runs the grant.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	rec := record(r)
	rec.Kind = KindToken
	form, oe := parseForm(w, r)
	if oe != nil {
		s.writeError(w, r, oe)
		return
	}
	rec.GrantType = form.Get("grant_type")
	p, c, oe := s.proofAndClient(r, form, true)
	if oe != nil {
		s.writeError(w, r, oe)
		return
	}
	switch rec.GrantType {
	case grantClientCredentials:
		oe = s.grantClientCredentials(w, c, p, form)
	case grantAuthorizationCode:
		oe = s.grantAuthorizationCode(w, c, p, form)
	case grantRefreshToken:
		oe = s.grantRefresh(w, c, p, form)
	case grantDeviceCode:
		oe = s.grantDevice(w, c, p, form)
	case "":
		oe = badRequest("invalid_request", "missing grant_type")
	default:
		oe = badRequest("unsupported_grant_type", "grant_type "+rec.GrantType+" not supported")
	}
	if oe != nil {
		s.writeError(w, r, oe)
	}
}

// grantClientCredentials runs RFC 6749 §4.4 for confidential clients.
func (s *Server) grantClientCredentials(w http.ResponseWriter, c *Client, p *Proof, form url.Values) *oauthError {
	if c.public() {
		return badRequest("unauthorized_client", "client_credentials is for confidential clients")
	}
	s.issue(w, c, p, c.ID, form.Get("scope"), false)
	return nil
}

// grantAuthorizationCode runs RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6)
// and the dpop_jkt binding (RFC 9449 §10).
func (s *Server) grantAuthorizationCode(w http.ResponseWriter, c *Client, p *Proof, form url.Values) *oauthError {
	code := form.Get("code")
	s.mu.Lock()
	ac := s.codes[code]
	delete(s.codes, code) // single use, whatever the outcome
	s.mu.Unlock()
	switch {
	case code == "" || ac == nil:
		return badRequest("invalid_grant", "unknown or already used authorization code")
	case !s.now().Before(ac.expiry):
		return badRequest("invalid_grant", "authorization code expired")
	case ac.clientID != c.ID:
		return badRequest("invalid_grant", "authorization code issued to another client")
	case form.Get("redirect_uri") != ac.redirectURI:
		return badRequest("invalid_grant", "redirect_uri does not match the authorization request")
	}
	v := form.Get("code_verifier")
	if !pkceVerifier.MatchString(v) {
		return badRequest("invalid_grant", "missing or malformed code_verifier")
	}
	sum := sha256.Sum256([]byte(v))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(ac.challenge)) != 1 {
		return badRequest("invalid_grant", "code_verifier does not match code_challenge")
	}
	if ac.jkt != "" && ac.jkt != p.Thumbprint {
		return badRequest("invalid_grant", "DPoP key differs from the one bound to the authorization request (dpop_jkt)")
	}
	s.issue(w, c, p, ac.subject, ac.scope, true)
	return nil
}

// grantRefresh runs RFC 6749 §6 with rotation; a public client's refresh
// token is bound to its DPoP key (RFC 9449 §5).
func (s *Server) grantRefresh(w http.ResponseWriter, c *Client, p *Proof, form url.Values) *oauthError {
	g, scope, oe := s.spendRefresh(form.Get("refresh_token"), form.Get("scope"), c, p)
	if oe != nil {
		return oe
	}
	s.issue(w, c, p, g.subject, scope, true)
	return nil
}

// spendRefresh checks a refresh token and the requested scope and, when
// both are good, deletes the token (rotation).
func (s *Server) spendRefresh(rt, reqScope string, c *Client, p *Proof) (*refreshGrant, string, *oauthError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.refresh[rt]
	switch {
	case rt == "" || g == nil:
		return nil, "", badRequest("invalid_grant", "unknown or already used refresh token")
	case g.clientID != c.ID:
		return nil, "", badRequest("invalid_grant", "refresh token issued to another client")
	case g.jkt != "" && g.jkt != p.Thumbprint:
		return nil, "", badRequest("invalid_grant", "refresh token is bound to another DPoP key")
	}
	scope := g.scope
	if reqScope != "" {
		if !subsetScope(reqScope, g.scope) {
			return nil, "", badRequest("invalid_scope", "scope exceeds the original grant")
		}
		scope = reqScope
	}
	delete(s.refresh, rt)
	return g, scope, nil
}

func subsetScope(req, granted string) bool {
	have := strings.Fields(granted)
	for _, sc := range strings.Fields(req) {
		found := false
		for _, h := range have {
			found = found || h == sc
		}
		if !found {
			return false
		}
	}
	return true
}

// issue answers a successful token response (RFC 6749 §5.1, RFC 9449 §5)
// with an access token bound to the proof's key.
func (s *Server) issue(w http.ResponseWriter, c *Client, p *Proof, subject, scope string, withRefresh bool) {
	tok, ttl := s.mintToken(p.Thumbprint, subject, c.ID, scope)
	resp := map[string]any{
		"access_token": tok,
		"token_type":   s.cfg.TokenType,
		"expires_in":   int64(ttl / time.Second),
	}
	if scope != "" {
		resp["scope"] = scope
	}
	if withRefresh {
		rt := randString(32)
		g := &refreshGrant{clientID: c.ID, subject: subject, scope: scope}
		if c.public() {
			g.jkt = p.Thumbprint
		}
		s.mu.Lock()
		s.refresh[rt] = g
		s.mu.Unlock()
		resp["refresh_token"] = rt
	}
	s.writeAS(w, http.StatusOK, resp)
}
