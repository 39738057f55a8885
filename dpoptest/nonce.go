package dpoptest

import (
	"sync"
	"time"
)

// nonceState is one server-provided nonce (RFC 9449 §8, §9). The
// authorization server and the resource server each own one, so their
// values never coincide. The current value and the window-1 values before
// it are accepted; after window rotations a nonce gets a use_dpop_nonce
// challenge. It rotates after every accepted proofs, when it is ttl old,
// and on demand.
type nonceState struct {
	every  int              // rotate after this many accepted proofs; 0 = never
	ttl    time.Duration    // rotate when this old; 0 = never
	window int              // how many of the newest nonces are accepted; at least 1
	now    func() time.Time // the server's clock

	mu       sync.Mutex // guards the fields below
	current  string
	issued   time.Time // when current became current (by ttl periods)
	recent   []string  // the window-1 nonces before current, newest last
	accepted int
}

func newNonceState(cfg *Config, now func() time.Time) *nonceState {
	return &nonceState{
		every:   cfg.NonceEvery,
		ttl:     max(cfg.NonceTTL, 0),
		window:  max(cfg.NonceWindow, 1),
		now:     now,
		current: randString(18),
		issued:  now(),
	}
}

// get returns the current nonce.
func (n *nonceState) get() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.expire()
	return n.current
}

// valid reports whether nonce is the current one or within the window.
func (n *nonceState) valid(nonce string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.expire()
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

// expire rotates once for each whole ttl period since the current nonce
// was issued, as a server rotating on a timer would have (at most window
// times: older values are out of the window anyway). n.mu is held.
func (n *nonceState) expire() {
	if n.ttl <= 0 {
		return
	}
	periods := n.now().Sub(n.issued) / n.ttl
	if periods <= 0 {
		return
	}
	for range min(int64(periods), int64(n.window)) {
		n.next()
	}
	n.issued = n.issued.Add(periods * n.ttl)
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
	n.expire()
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
	n.issued = n.now()
	return n.current
}
