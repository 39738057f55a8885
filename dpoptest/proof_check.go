package dpoptest

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// proofFailure is why a request's DPoP proof was refused: code is
// "invalid_dpop_proof" or "use_dpop_nonce" (RFC 9449 §7.1, §8, §9).
type proofFailure struct {
	code, desc string
}

// checkProof verifies the single DPoP header of r for the URL r was sent
// to, with ath for accessToken, and applies the nonce policy of nonces
// (RFC 9449 §4.3, §8, §9). It fills the record and, when the proof is
// accepted, counts it towards the next nonce rotation.
func (s *Server) checkProof(r *http.Request, accessToken string, nonces *nonceState) (*Proof, *proofFailure) {
	rec := record(r)
	hdrs := r.Header.Values("DPoP")
	switch {
	case len(hdrs) == 0:
		rec.ProofErr = "dpoptest: no DPoP header"
		return nil, &proofFailure{"invalid_dpop_proof", "DPoP proof required"}
	case len(hdrs) > 1: // §4.3 point 1
		rec.ProofErr = "dpoptest: more than one DPoP header"
		return nil, &proofFailure{"invalid_dpop_proof", "more than one DPoP header"}
	}
	p, err := s.verifier.Verify(hdrs[0], r.Method, requestURL(r), accessToken)
	if err != nil {
		rec.ProofErr = err.Error()
		desc := err.Error()
		var pe *ProofError
		if errors.As(err, &pe) {
			desc = "invalid " + pe.Check + ": " + pe.Err.Error()
		}
		return nil, &proofFailure{"invalid_dpop_proof", desc}
	}
	rec.Proof = p
	rec.Nonce = p.Nonce
	if s.cfg.FAPI2 && p.HTU != requestURL(r) {
		rec.ProofErr = "dpoptest: htu is not string-equal to the request URL"
		return nil, &proofFailure{"invalid_dpop_proof", "invalid htu: FAPI 2.0 requires htu " + quote(p.HTU) + " to equal the request URL " + quote(requestURL(r)) + " exactly"}
	}
	if s.cfg.RequireNonce {
		if p.Nonce == "" {
			return p, &proofFailure{"use_dpop_nonce", "the server requires a nonce in the DPoP proof"}
		}
		if !nonces.valid(p.Nonce) {
			return p, &proofFailure{"use_dpop_nonce", "DPoP proof nonce is not the current one"}
		}
		nonces.accept()
	}
	return p, nil
}

// requestURL is the URL r was sent to, path as on the wire, without the
// query: what the htu claim is compared with (RFC 9449 §4.3 point 9).
func requestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	path := r.RequestURI
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if !strings.HasPrefix(path, "/") { // absolute-form (RFC 9112 §3.2.2)
		return path
	}
	return scheme + "://" + r.Host + path
}

// proofAndClient checks the DPoP proof of a request to an endpoint that
// authenticates clients (token, PAR, revocation) and authenticates the
// client. A proof is required when required is set, else checked when
// present. The proof comes first, except that a client assertion is
// checked, and spent, before it: as oidc-provider does, so a client that
// resends an assertion on its nonce retry is refused (RFC 7523 §3 jti).
func (s *Server) proofAndClient(r *http.Request, form url.Values, required bool) (*Proof, *Client, *oauthError) {
	var c *Client
	var oe *oauthError
	if form.Has("client_assertion") {
		if c, oe = s.authenticateClient(r, form); oe != nil {
			return nil, nil, oe
		}
	}
	var p *Proof
	if required || len(r.Header.Values("DPoP")) > 0 {
		var fail *proofFailure
		if p, fail = s.checkProof(r, "", s.asNonce); fail != nil {
			return nil, nil, badRequest(fail.code, fail.desc)
		}
	}
	if c == nil {
		if c, oe = s.authenticateClient(r, form); oe != nil {
			return nil, nil, oe
		}
	}
	return p, c, nil
}
