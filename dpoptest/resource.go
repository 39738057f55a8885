package dpoptest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
)

// Handle registers h for pattern (see http.ServeMux) behind the resource
// server's DPoP checks (RFC 9449 §7, §9; RFC 6750 §3): h runs only for a
// request carrying "Authorization: DPoP <token>" with a token minted by
// this server, not expired, and a single valid DPoP proof whose ath matches
// the token and whose key is the one the token is bound to (cnf.jkt), with
// the current resource server nonce when [Config.RequireNonce] is set.
// h finds the token with [TokenFromContext].
//
// Every refusal is a 401 with a DPoP WWW-Authenticate challenge: no error
// code when no DPoP credentials were sent, invalid_token for a bad, expired,
// revoked or differently bound token or a DPoP-bound token sent as Bearer,
// invalid_dpop_proof for a bad proof, and use_dpop_nonce with a DPoP-Nonce
// header for a missing or stale nonce.
//
// The default handler at pathAPI answers 200 with a JSON object holding
// method, path, subject, jkt, client_id, scope, body_len and body_sha256
// (hex SHA-256 of the whole request body).
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.protect(h))
}

func (s *Server) protect(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := record(r)
		rec.Kind = KindResource
		if s.cfg.RequireNonce && !s.cfg.NoNonceOnSuccess {
			w.Header().Set("DPoP-Nonce", s.rsNonce.get())
		}
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		tok = strings.TrimSpace(tok)
		switch {
		case strings.EqualFold(scheme, "DPoP") && tok != "":
		case strings.EqualFold(scheme, "Bearer") && tok != "":
			desc := "DPoP-bound access token presented as a bearer token"
			if _, err := s.parseToken(tok); err != nil {
				desc = "not a valid access token of this server"
			}
			s.challenge(w, rec, "invalid_token", desc)
			return
		default:
			s.challenge(w, rec, "", "")
			return
		}
		p, fail := s.checkProof(r, tok, s.rsNonce)
		if fail != nil {
			s.challenge(w, rec, fail.code, fail.desc)
			return
		}
		ti, err := s.parseToken(tok)
		if err != nil {
			s.challenge(w, rec, "invalid_token", strings.TrimPrefix(err.Error(), "dpoptest: "))
			return
		}
		rec.ClientID = ti.ClientID
		if s.revoked(ti) {
			s.challenge(w, rec, "invalid_token", "access token revoked")
			return
		}
		if ti.JKT != p.Thumbprint { // §7.1: the proof key is the bound key
			s.challenge(w, rec, "invalid_token", "access token is bound to another key (cnf.jkt)")
			return
		}
		if s.cfg.RequireNonce && !s.cfg.NoNonceOnSuccess {
			w.Header().Set("DPoP-Nonce", s.rsNonce.get()) // a rotation shows at once
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), accessTokenKey{}, ti)))
	})
}

// serveEcho is the default resource: it hashes the whole body, streaming,
// and describes the request.
func serveEcho(w http.ResponseWriter, r *http.Request) {
	ti, _ := TokenFromContext(r.Context())
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, "dpoptest: reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"method":      r.Method,
		"path":        r.URL.EscapedPath(),
		"subject":     ti.Subject,
		"jkt":         ti.JKT,
		"client_id":   ti.ClientID,
		"scope":       ti.Scope,
		"body_len":    n,
		"body_sha256": hex.EncodeToString(h.Sum(nil)),
	})
}
