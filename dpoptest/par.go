package dpoptest

import (
	"net/http"
	"net/url"
	"time"
)

const (
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

// servePAR is the pushed authorization request endpoint (RFC 9126 §2).
// A DPoP proof, when sent, is verified like at the token endpoint, nonce
// policy included, and its key is bound to the request; a dpop_jkt must
// then name the same key (RFC 9449 §10.1).
func (s *Server) servePAR(w http.ResponseWriter, r *http.Request) {
	rec := record(r)
	rec.Kind = KindPAR
	form, oe := parseForm(w, r)
	if oe != nil {
		s.writeError(w, r, oe)
		return
	}
	p, c, oe := s.proofAndClient(r, form, false)
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
