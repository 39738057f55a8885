package dpoptest

import "net/http"

// pathRevoke is the revocation endpoint (RFC 7009 §2).
const pathRevoke = "/revoke"

// RevocationURL returns the token revocation endpoint (RFC 7009 §2),
// also advertised as revocation_endpoint in the metadata.
func (s *Server) RevocationURL() string { return s.URL + pathRevoke }

// Revoke revokes token, an access token or a refresh token this server
// issued, as its revocation endpoint does (RFC 7009 §2.1) but without a
// request: the resource server then refuses the access token with a 401
// invalid_token challenge (RFC 6750 §3.1), and the token endpoint refuses
// the refresh token with invalid_grant. Other values are ignored.
func (s *Server) Revoke(token string) {
	if ti, err := s.parseToken(token); err == nil {
		s.revokeAccess(ti)
		return
	}
	s.mu.Lock()
	delete(s.refresh, token)
	s.mu.Unlock()
}

// revokeAccess remembers an access token's jti until it expires, and
// forgets those that have.
func (s *Server) revokeAccess(ti *AccessToken) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, exp := range s.revokedAT {
		if !now.Before(exp) {
			delete(s.revokedAT, id)
		}
	}
	s.revokedAT[ti.ID] = ti.Expiry
}

// revoked reports whether the access token ti was revoked.
func (s *Server) revoked(ti *AccessToken) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.revokedAT[ti.ID]
	return ok
}

// serveRevoke is the revocation endpoint (RFC 7009 §2.1): the client
// authenticates as at the token endpoint, a DPoP proof is optional and
// checked like at the token endpoint when present (nonce policy included),
// and token may be an access or a refresh token, whatever the
// token_type_hint says (§2.1: the server extends its search). The answer
// is 200 with an empty body for a revoked, unknown or invalid token
// (§2.2), and an error for a token of another client.
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	rec := record(r)
	rec.Kind = KindRevoke
	form, oe := parseForm(w, r)
	var c *Client
	if oe == nil {
		_, c, oe = s.proofAndClient(r, form, false)
	}
	if oe == nil && form.Get("token") == "" {
		oe = badRequest("invalid_request", "missing token")
	}
	if oe == nil {
		oe = s.revokeFor(c, form.Get("token"))
	}
	if oe != nil {
		s.writeError(w, r, oe)
		return
	}
	if s.cfg.RequireNonce && !s.cfg.NoNonceOnSuccess {
		w.Header().Set("DPoP-Nonce", s.asNonce.get())
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// revokeFor revokes token on behalf of client c, which must be the client
// it was issued to (RFC 7009 §2.1).
func (s *Server) revokeFor(c *Client, token string) *oauthError {
	if ti, err := s.parseToken(token); err == nil {
		if ti.ClientID != c.ID {
			return badRequest("unauthorized_client", "access token issued to another client")
		}
		s.revokeAccess(ti)
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.refresh[token]
	if g == nil {
		return nil // §2.2: an invalid token is not an error
	}
	if g.clientID != c.ID {
		return badRequest("unauthorized_client", "refresh token issued to another client")
	}
	delete(s.refresh, token)
	return nil
}
