package dpoptest

import (
	"net/http"

	"github.com/go-jose/go-jose/v4"
)

// serveJWKS publishes the access token signing key (RFC 7517 §5).
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	record(r).Kind = KindJWKS
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &s.key.PublicKey, KeyID: s.kid, Algorithm: "ES256", Use: "sig",
	}}}
	writeJSON(w, http.StatusOK, set)
}

// metadata is the authorization server metadata (RFC 8414 §2,
// RFC 9449 §5.1).
func (s *Server) metadata() map[string]any {
	return map[string]any{
		"issuer":                                s.URL,
		"authorization_endpoint":                s.URL + pathAuthorize,
		"token_endpoint":                        s.URL + pathToken,
		"device_authorization_endpoint":         s.URL + pathDeviceAuth,
		"pushed_authorization_request_endpoint": s.URL + pathPAR,
		"jwks_uri":                              s.URL + pathJWKS,
		"revocation_endpoint":                   s.URL + pathRevoke,
		"response_types_supported":              []string{"code"},
		"grant_types_supported": []string{
			"authorization_code", "client_credentials", "refresh_token", grantDeviceCode,
		},
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            s.authMethods(),
		"token_endpoint_auth_signing_alg_values_supported": s.assertionAlgs(),
		"revocation_endpoint_auth_methods_supported":       s.authMethods(),
		"authorization_response_iss_parameter_supported":   true,
		"require_pushed_authorization_requests":            s.cfg.FAPI2,
		"dpop_signing_alg_values_supported":                s.verifier.AllowedAlgs(),
	}
}

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	record(r).Kind = KindMetadata
	writeJSON(w, http.StatusOK, s.metadata())
}

// serveResourceMetadata publishes protected resource metadata (RFC 9728).
func (s *Server) serveResourceMetadata(w http.ResponseWriter, r *http.Request) {
	record(r).Kind = KindMetadata
	writeJSON(w, http.StatusOK, map[string]any{
		"resource":                          s.URL,
		"authorization_servers":             []string{s.URL},
		"dpop_signing_alg_values_supported": s.verifier.AllowedAlgs(),
		"dpop_bound_access_tokens_required": true,
	})
}

// authMethods are the client authentication methods the endpoints accept
// (RFC 8414 §2).
func (s *Server) authMethods() []string {
	if s.cfg.FAPI2 {
		return []string{string(PrivateKeyJWT)}
	}
	return []string{string(ClientSecretBasic), string(ClientSecretPost), string(PrivateKeyJWT), string(ClientAuthNone)}
}

// assertionAlgs are the algorithms accepted for client assertions.
func (s *Server) assertionAlgs() []string {
	algs := assertionAlgs
	if s.cfg.FAPI2 {
		algs = fapiAlgs
	}
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return out
}
