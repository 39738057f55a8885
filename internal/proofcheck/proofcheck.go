// Package proofcheck is the seam through which the strict test server
// (dpoptest) checks DPoP proofs with the resource server's verifier
// (package resource), so that the repository has one proof verifier.
// Package resource fills New when it is initialised; a
// package that imports resource may call it.
//
// It exists for internal use only.
package proofcheck

import (
	"crypto"
	"time"
)

// Config configures a Checker: the accepted algorithms and the iat window
// (RFC 9449 §4.3 point 11).
type Config struct {
	Algs      []string
	MaxAge    time.Duration
	MaxFuture time.Duration
	Now       func() time.Time
}

// Checker checks one proof (RFC 9449 §4.3) of a request with this method
// to url, presenting token ("" for none: then the proof must carry no
// ath), without the nonce, the token's binding or the replay check. It
// returns the proof's key, or the resource package's reason for the
// refusal and its text.
type Checker interface {
	Check(proof, method, url, token string) (*Proof, *Failure)
}

// Proof is what a Checker verified of a proof.
type Proof struct {
	Alg string
	JKT string           // RFC 7638 thumbprint of the key, unpadded base64url
	Key crypto.PublicKey // the jwk's public key
}

// Failure is a refusal: Reason is a resource.Reason.
type Failure struct {
	Reason string
	Err    error
}

// New returns a Checker for c. Package resource sets it.
var New func(c Config) (Checker, error)
