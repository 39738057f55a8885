package resource

import (
	"context"
	"errors"
	"time"
)

// ReplayStore remembers the DPoP proofs a resource server has accepted, so
// that none is accepted twice (RFC 9449 §11.1). Stores shared by several
// instances of an API (Redis) make a replay to another instance visible.
//
// Claim records the proof named by jkt and jti until the time until, and
// returns nil, or [ErrReplayed] when that proof is already recorded and its
// record has not expired. It must be atomic: of concurrent calls with the
// same jkt and jti, on any instance sharing the store, at most one returns
// nil. Any other error means the store could not answer; the [Verifier]
// then refuses the request with 503 (fails closed).
//
// jkt is the RFC 7638 thumbprint of the proof's key and jti is the
// SHA-256 hash of the proof's jti claim, both unpadded base64url of 32
// bytes (43 characters) computed by the Verifier, whatever the client sent.
// The pair, not jti alone, names a proof, so that one client cannot burn
// another's jti.
//
// Claim must be safe for concurrent use and must honour ctx.
type ReplayStore interface {
	Claim(ctx context.Context, jkt, jti string, until time.Time) error
}

// ErrReplayed is returned by [ReplayStore.Claim] for a proof already
// accepted.
var ErrReplayed = errors.New("dpop: DPoP proof already used")
