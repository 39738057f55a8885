package resource

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of a [NonceIssuer].
const (
	minNonceKey  = 32 // bytes of a key: as many as the HMAC-SHA256 output
	minNonceStep = time.Second
	maxNonceStep = 24 * time.Hour
	nonceLen     = 32 // base64url characters of a nonce: 24 bytes of MAC
)

// nonceLabel separates the MACs of nonces from any other use of the key.
const nonceLabel = "dpopkit resource nonce v1\x00"

// NonceIssuer makes the server nonces of a resource server (RFC 9449 §9)
// without shared state: a nonce is an HMAC-SHA256, under a secret key, of
// the current time step. Every instance of an API holding the same key
// issues the same nonce during a step and accepts the nonces of the
// others; no store is consulted, and no one without the key can make one.
//
// A nonce is accepted during the step it was issued in and the next one
// (so for one to two steps), and one step early, for instances whose
// clocks run ahead of each other by less than a step. The key ring holds
// the current key, which issues, and the previous one, which is still
// accepted: [NonceIssuer.Rotate] installs a new key without a restart.
// Rotate every instance within one step.
//
// A nonce is 32 base64url characters, of the syntax of §8.1. It does not
// depend on the client: clients keep one nonce per server, and proofs are
// bound to their key by their signature, not by the nonce.
//
// A NonceIssuer is safe for concurrent use. Give it to [Config.Nonces].
type NonceIssuer struct {
	step time.Duration

	mu   sync.Mutex // guards keys; held while state is rebuilt
	keys [2][]byte  // current and previous; previous is nil until a rotation

	state atomic.Pointer[nonceState] // the nonces of the step last seen; nil after Rotate
}

// nonceState holds the nonces of one time step: what is issued, and what
// is accepted with the time each is accepted until.
type nonceState struct {
	step    int64 // the time step, Unix time / step
	current string
	valid   [6][]byte    // steps step-1, step, step+1 under each key
	until   [6]time.Time // end of acceptance of each of valid
}

// NewNonceIssuer returns a NonceIssuer whose nonces are HMAC-SHA256 under
// key, of at least 32 random bytes shared by the instances of the API and
// kept secret, over time steps of step, from one second to one day. A
// zero step means one minute.
func NewNonceIssuer(key []byte, step time.Duration) (*NonceIssuer, error) {
	if step == 0 {
		step = time.Minute
	}
	if step < minNonceStep || step > maxNonceStep {
		return nil, fmt.Errorf("dpop: NewNonceIssuer: step %v is not between %v and %v", step, minNonceStep, maxNonceStep)
	}
	if len(key) < minNonceKey {
		return nil, fmt.Errorf("dpop: NewNonceIssuer: key has %d bytes; want at least %d", len(key), minNonceKey)
	}
	n := &NonceIssuer{step: step}
	n.keys[0] = clone(key)
	return n, nil
}

// Rotate makes key the current key and the current key the previous one,
// which is still accepted; the key before that is forgotten. Nonces of the
// new key are issued at once. key must have at least 32 bytes.
func (n *NonceIssuer) Rotate(key []byte) error {
	if len(key) < minNonceKey {
		return fmt.Errorf("dpop: NonceIssuer.Rotate: key has %d bytes; want at least %d", len(key), minNonceKey)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.keys[1], n.keys[0] = n.keys[0], clone(key)
	n.state.Store(nil)
	return nil
}

// Nonce returns the nonce to announce now in the DPoP-Nonce header
// (RFC 9449 §8.1, §9).
func (n *NonceIssuer) Nonce() string { return n.at(time.Now()).current }

// check reports whether nonce is one this issuer, or an instance holding
// its keys, issued and still accepts at now, and until when it is
// accepted.
func (n *NonceIssuer) check(nonce []byte, now time.Time) (time.Time, bool) {
	if len(nonce) != nonceLen {
		return time.Time{}, false
	}
	s := n.at(now)
	for i, v := range s.valid {
		if v != nil && subtle.ConstantTimeCompare(v, nonce) == 1 {
			return s.until[i], true
		}
	}
	return time.Time{}, false
}

// at returns the nonces of the time step of now, computing them once per
// step.
func (n *NonceIssuer) at(now time.Time) *nonceState {
	if n == nil || n.step == 0 {
		return &noNonces // not made by NewNonceIssuer
	}
	step := now.UnixNano() / int64(n.step)
	if s := n.state.Load(); s != nil && s.step == step {
		return s
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.state.Load(); s != nil && s.step == step {
		return s
	}
	s := &nonceState{step: step}
	for k, key := range n.keys {
		if key == nil {
			continue
		}
		for d := int64(-1); d <= 1; d++ {
			i := 3*k + int(d+1)
			s.valid[i] = []byte(nonceFor(key, step+d))
			// Accepted during its step and the next.
			s.until[i] = time.Unix(0, (step+d+2)*int64(n.step))
		}
	}
	s.current = string(s.valid[1])
	n.state.Store(s)
	return s
}

// Format prints the same summary for every verb of package fmt: the step
// and how many keys the ring holds; never a key. A NonceIssuer must not be
// copied, so Format has a pointer receiver: print a *NonceIssuer.
func (n *NonceIssuer) Format(f fmt.State, verb rune) {
	if n == nil {
		fmt.Fprint(f, "<nil>")
		return
	}
	fmt.Fprintf(f, "resource.NonceIssuer{step: %v, keys: %d}", n.step, n.keyCount())
}

// LogValue implements [slog.LogValuer]: the step and the number of keys.
func (n *NonceIssuer) LogValue() slog.Value {
	if n == nil {
		return slog.AnyValue(nil)
	}
	return slog.GroupValue(slog.Duration("step", n.step), slog.Int("keys", n.keyCount()))
}

// MarshalJSON encodes the step and the number of keys, never a key.
func (n *NonceIssuer) MarshalJSON() ([]byte, error) {
	if n == nil {
		return []byte("null"), nil
	}
	return json.Marshal(struct {
		Step string `json:"step"`
		Keys int    `json:"keys"`
	}{n.step.String(), n.keyCount()})
}

func (n *NonceIssuer) keyCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, k := range n.keys {
		if k != nil {
			c++
		}
	}
	return c
}

// noNonces is the state of a NonceIssuer without keys: nothing issued,
// nothing accepted.
var noNonces nonceState

// nonceFor returns the nonce of a time step under key.
func nonceFor(key []byte, step int64) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(nonceLabel))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(step))
	m.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:nonceLen*3/4])
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
