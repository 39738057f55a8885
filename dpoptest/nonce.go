package dpoptest

import "sync"

// nonceState is one server-provided nonce (RFC 9449 §8, §9). The
// authorization server and the resource server each own one, so their
// values never coincide. The current value and the window-1 values before
// it are accepted; after window rotations a nonce gets a use_dpop_nonce
// challenge.
type nonceState struct {
	every  int // rotate after this many accepted proofs; 0 = never
	window int // how many of the newest nonces are accepted; at least 1

	mu       sync.Mutex // guards current, recent and accepted
	current  string
	recent   []string // the window-1 nonces before current, newest last
	accepted int
}

func newNonceState(every, window int) *nonceState {
	return &nonceState{every: every, window: max(window, 1), current: randString(18)}
}

// get returns the current nonce.
func (n *nonceState) get() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.current
}

// valid reports whether nonce is the current one or within the window.
func (n *nonceState) valid(nonce string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if nonce == "" {
		return false
	}
	if nonce == n.current {
		return true
	}
	for _, r := range n.recent {
		if r == nonce {
			return true
		}
	}
	return false
}

// next replaces the current nonce, keeping it in the window. n.mu is held.
func (n *nonceState) next() {
	n.accepted = 0
	if n.window > 1 {
		n.recent = append(n.recent, n.current)
		if len(n.recent) > n.window-1 {
			n.recent = n.recent[len(n.recent)-(n.window-1):]
		}
	}
	n.current = randString(18)
}

// accept counts one accepted proof, rotates when due and returns the nonce
// to advertise in the response.
func (n *nonceState) accept() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.accepted++
	if n.every > 0 && n.accepted >= n.every {
		n.next()
	}
	return n.current
}

// rotate replaces the nonce now.
func (n *nonceState) rotate() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.next()
	return n.current
}
