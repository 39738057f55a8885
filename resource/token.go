package resource

import (
	"context"
	"time"
)

// TokenVerifier verifies an access token presented to the resource server
// and returns what it grants. Verify must check the token itself (signature
// or introspection, issuer, audience, expiry) before anything is read from
// it: the key binding (cnf.jkt, RFC 9449 §6) is trusted only because the
// token was verified.
//
// VerifyToken must be safe for concurrent use and must honour ctx.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string) (*AccessToken, error)
}

// AccessToken is what a verified access token grants. It never holds the
// token itself.
type AccessToken struct {
	Issuer   string
	Subject  string
	ClientID string    // client_id (RFC 9068 §2.2, RFC 7662 §2.2)
	Audience []string  // aud
	Scopes   []string  // scope, split on spaces
	Expiry   time.Time // exp; zero when the token states none

	// JKT is the RFC 7638 thumbprint the token is bound to (cnf.jkt,
	// RFC 9449 §6), "" for an unbound (Bearer) token.
	JKT string

	// Claims holds every claim or introspection member, as decoded
	// from JSON.
	Claims map[string]any
}
