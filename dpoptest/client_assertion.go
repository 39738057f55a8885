package dpoptest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// PrivateKeyJWT is a client assertion: a JWT signed by the client's key
// (RFC 7523 §2.2), for clients registered with a [Client.PublicKey].
const PrivateKeyJWT ClientAuth = "private_key_jwt"

const (
	assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

	// maxAssertionLifetime bounds how far in the future a client
	// assertion's exp may lie: assertions are meant to be short-lived.
	maxAssertionLifetime = 10 * time.Minute
)

// assertionAlgs are the JWS algorithms accepted for client assertions;
// in FAPI 2.0 mode only fapiAlgs.
var assertionAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.PS256, jose.RS256}

// assertionClaims are the claims of a client assertion (RFC 7523 §3);
// aud stays raw so that a string and an array differ.
type assertionClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp *float64        `json:"exp"`
	Nbf *float64        `json:"nbf"`
	Iat *float64        `json:"iat"`
	JTI string          `json:"jti"`
}

// authenticateAssertion authenticates a client with private_key_jwt
// (RFC 7521 §4.2, RFC 7523 §2.2, §3).
func (s *Server) authenticateAssertion(r *http.Request, form url.Values) (*Client, *oauthError) {
	rec := record(r)
	fail := func(desc string) (*Client, *oauthError) {
		return nil, &oauthError{http.StatusUnauthorized, "invalid_client", "client assertion: " + desc, false}
	}
	if _, _, ok := r.BasicAuth(); ok || form.Has("client_secret") {
		return nil, badRequest("invalid_request", "more than one client authentication method")
	}
	if form.Get("client_assertion_type") != assertionType {
		return fail("client_assertion_type must be " + assertionType)
	}
	raw := form.Get("client_assertion")
	unverified, err := peekClaims(raw)
	if err != nil {
		return fail(err.Error())
	}
	id := form.Get("client_id") // optional (RFC 7521 §4.2); else sub, or iss
	if _, known := s.clients[unverified.Sub]; id == "" && known {
		id = unverified.Sub
	} else if id == "" {
		id = unverified.Iss
	}
	rec.ClientID = id
	c, ok := s.clients[id]
	if id == "" || !ok {
		return fail("unknown client")
	}
	if c.PublicKey == nil {
		return fail("client " + quote(id) + " has no registered public key")
	}
	claims, err := s.verifyAssertion(raw, &c, r)
	if err != nil {
		return fail(err.Error())
	}
	s.mu.Lock()
	fresh := s.assertionJTIs.add(c.ID+" "+claims.JTI, s.now(), time.Unix(int64(*claims.Exp), 0).Add(time.Minute))
	s.mu.Unlock()
	if !fresh {
		return fail("jti " + quote(claims.JTI) + " already used (RFC 7523 section 3)")
	}
	rec.ClientAuth = PrivateKeyJWT
	return &c, nil
}

// peekClaims decodes the payload of a compact JWS without verifying it,
// to learn which client it claims to be.
func peekClaims(raw string) (*assertionClaims, error) {
	parts := strings.Split(raw, ".")
	if raw == "" || len(raw) > maxProofLen || len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errors.New("payload is not base64url")
	}
	var c assertionClaims
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&c); err != nil || dec.More() {
		return nil, errors.New("payload is not a JSON object of claims")
	}
	return &c, nil
}

// verifyAssertion checks the signature of a client assertion with c's key
// and its claims (RFC 7523 §3): iss and sub are the client_id, aud names
// this server, exp is present and near, jti is present.
func (s *Server) verifyAssertion(raw string, c *Client, r *http.Request) (*assertionClaims, error) {
	algs := assertionAlgs
	if s.cfg.FAPI2 {
		algs = fapiAlgs
	}
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil {
		return nil, fmt.Errorf("alg or JWS not accepted: %v", err)
	}
	payload, err := jws.Verify(c.PublicKey)
	if err != nil {
		return nil, errors.New("signature does not verify with the client's registered key")
	}
	var cl assertionClaims
	if err := json.Unmarshal(payload, &cl); err != nil {
		return nil, errors.New("claims are not a JSON object")
	}
	now := s.now()
	switch {
	case cl.Iss != c.ID:
		return nil, fmt.Errorf("iss %q is not the client_id", cl.Iss)
	case cl.Sub != c.ID:
		return nil, fmt.Errorf("sub %q is not the client_id", cl.Sub)
	case cl.JTI == "":
		return nil, errors.New("jti missing")
	case cl.Exp == nil:
		return nil, errors.New("exp missing")
	case !now.Before(time.Unix(int64(*cl.Exp), 0)):
		return nil, errors.New("exp has passed")
	case time.Unix(int64(*cl.Exp), 0).After(now.Add(maxAssertionLifetime)):
		return nil, fmt.Errorf("exp more than %s away", maxAssertionLifetime)
	case cl.Nbf != nil && time.Unix(int64(*cl.Nbf), 0).After(now.Add(s.verifier.maxSkew())):
		return nil, errors.New("nbf in the future")
	}
	if err := s.checkAudience(cl.Aud, r); err != nil {
		return nil, err
	}
	return &cl, nil
}

// checkAudience checks a client assertion's aud. In FAPI 2.0 mode it must
// be the issuer identifier as a single string (FAPI 2.0 Security Profile
// §5.3.2.1); otherwise RFC 7523 §3 also allows the token endpoint or the
// endpoint called, and an array holding one of them.
func (s *Server) checkAudience(aud json.RawMessage, r *http.Request) error {
	var one string
	if s.cfg.FAPI2 {
		if json.Unmarshal(aud, &one) != nil || one != s.URL {
			return fmt.Errorf("FAPI 2.0 requires aud to be the issuer %q as a string, got %s", s.URL, orMissing(aud))
		}
		return nil
	}
	var many []string
	if json.Unmarshal(aud, &one) == nil {
		many = []string{one}
	} else if json.Unmarshal(aud, &many) != nil {
		return fmt.Errorf("aud %s is not a string or an array of strings", orMissing(aud))
	}
	for _, a := range many {
		if a == s.URL || a == s.URL+pathToken || a == requestURL(r) {
			return nil
		}
	}
	return fmt.Errorf("aud %s names neither the issuer nor this endpoint", orMissing(aud))
}
