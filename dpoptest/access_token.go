package dpoptest

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// AccessToken describes a verified access token: a JWT in the style of
// RFC 9068 bound to a DPoP key by its cnf.jkt claim (RFC 9449 §6.1).
type AccessToken struct {
	Token    string // the access token as presented
	ID       string // jti
	Subject  string // sub: the user, or the client for client_credentials
	ClientID string // client_id
	Scope    string // scope, space separated
	JKT      string // cnf.jkt: the thumbprint of the key the token is bound to
	IssuedAt time.Time
	Expiry   time.Time
}

type accessTokenKey struct{}

// TokenFromContext returns the access token of the request whose context
// is ctx, as verified by the resource server before it called a handler
// registered with [Server.Handle].
func TokenFromContext(ctx context.Context) (*AccessToken, bool) {
	ti, ok := ctx.Value(accessTokenKey{}).(*AccessToken)
	return ti, ok
}

// accessClaims are the claims of an access token (RFC 9068 §2.2,
// RFC 9449 §6.1).
type accessClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	ClientID string `json:"client_id,omitempty"`
	Scope    string `json:"scope,omitempty"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	ID       string `json:"jti"`
	Cnf      struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// IssueToken mints an access token bound to the key with thumbprint jkt,
// without the token endpoint, for tests of the resource server alone.
// Its client_id is empty.
func (s *Server) IssueToken(jkt, subject, scope string) string {
	tok, _ := s.mintToken(jkt, subject, "", scope)
	return tok
}

// mintToken signs an access token and returns it with its lifetime.
func (s *Server) mintToken(jkt, subject, clientID, scope string) (string, time.Duration) {
	now := s.now()
	c := accessClaims{
		Issuer:   s.URL,
		Subject:  subject,
		Audience: s.URL,
		ClientID: clientID,
		Scope:    scope,
		IssuedAt: now.Unix(),
		Expiry:   now.Add(s.cfg.TokenTTL).Unix(),
		ID:       randString(16),
	}
	c.Cnf.JKT = jkt
	payload, err := json.Marshal(c)
	if err != nil {
		panic("dpoptest: " + err.Error())
	}
	jws, err := s.signer.Sign(payload)
	if err != nil {
		panic("dpoptest: signing an access token: " + err.Error())
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		panic("dpoptest: " + err.Error())
	}
	return tok, s.cfg.TokenTTL
}

// parseToken verifies an access token minted by this server: signature,
// typ, iss, aud and exp (RFC 9068 §4).
func (s *Server) parseToken(tok string) (*AccessToken, error) {
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, errors.New("dpoptest: access token is not a JWS: " + err.Error())
	}
	if typ, _ := jws.Signatures[0].Protected.ExtraHeaders["typ"].(string); typ != "at+jwt" {
		return nil, errors.New("dpoptest: access token typ is not at+jwt")
	}
	payload, err := jws.Verify(&s.key.PublicKey)
	if err != nil {
		return nil, errors.New("dpoptest: access token signature invalid")
	}
	var c accessClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, errors.New("dpoptest: access token claims: " + err.Error())
	}
	if c.Issuer != s.URL || c.Audience != s.URL {
		return nil, errors.New("dpoptest: access token issued for another server")
	}
	exp := time.Unix(c.Expiry, 0)
	if !s.now().Before(exp) {
		return nil, errors.New("dpoptest: access token expired")
	}
	if c.Cnf.JKT == "" {
		return nil, errors.New("dpoptest: access token has no cnf.jkt")
	}
	return &AccessToken{
		Token:    tok,
		ID:       c.ID,
		Subject:  c.Subject,
		ClientID: c.ClientID,
		Scope:    c.Scope,
		JKT:      c.Cnf.JKT,
		IssuedAt: time.Unix(c.IssuedAt, 0),
		Expiry:   exp,
	}, nil
}
