package dpoptest

import "time"

// maxJTIs bounds the replay cache of a [Verifier]. When it is full the
// oldest entries are dropped first, expired or not.
const maxJTIs = 1 << 16

// jtiCache remembers the jti values of accepted proofs until they expire
// (RFC 9449 §11.1). Entries are kept in insertion order so that expiry
// and eviction are O(1) amortised. The zero value is empty.
type jtiCache struct {
	m     map[string]time.Time // jti → expiry
	order []jtiEntry           // insertion order; may hold stale entries
}

type jtiEntry struct {
	jti string
	exp time.Time
}

// add records jti until exp and reports whether it was not already present.
func (c *jtiCache) add(jti string, now, exp time.Time) bool {
	if c.m == nil {
		c.m = make(map[string]time.Time)
	}
	c.prune(now)
	if e, ok := c.m[jti]; ok && now.Before(e) {
		return false
	}
	c.m[jti] = exp
	c.order = append(c.order, jtiEntry{jti, exp})
	return true
}

func (c *jtiCache) prune(now time.Time) {
	n := 0
	for n < len(c.order) {
		e := c.order[n]
		if now.Before(e.exp) && len(c.order)-n < maxJTIs {
			break
		}
		if c.m[e.jti].Equal(e.exp) {
			delete(c.m, e.jti)
		}
		n++
	}
	c.order = c.order[n:] // append reallocates, dropping the consumed prefix
}
