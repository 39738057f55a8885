package dpoptest

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
)

// nonceState is one server-provided nonce (RFC 9449 §8, §9). The
// authorization server and the resource server each own one, so their
// values never coincide. Only the current value is accepted: after a
// rotation a proof with the previous nonce gets a use_dpop_nonce challenge.
type nonceState struct {
	every int // rotate after this many accepted proofs; 0 = never

	mu       sync.Mutex // guards current and accepted
	current  string
	accepted int
}

func newNonceState(every int) *nonceState {
	return &nonceState{every: every, current: randString(18)}
}

// get returns the current nonce.
func (n *nonceState) get() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.current
}

// valid reports whether nonce is the current one.
func (n *nonceState) valid(nonce string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return nonce != "" && nonce == n.current
}

// accept counts one accepted proof, rotates when due and returns the nonce
// to advertise in the response.
func (n *nonceState) accept() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.accepted++
	if n.every > 0 && n.accepted >= n.every {
		n.accepted = 0
		n.current = randString(18)
	}
	return n.current
}

// rotate replaces the nonce now.
func (n *nonceState) rotate() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.accepted = 0
	n.current = randString(18)
	return n.current
}

// randString returns n random bytes, base64url without padding: a valid
// 1*NQCHAR nonce (RFC 9449 §8.1), jti, code or token.
func randString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
