package resource

import (
	"crypto/sha256"
	"sync"
	"time"
)

// tokenKey is the key of a token in a tokenCache: the SHA-256 hash of the
// token, so that the cache never holds a token.
type tokenKey [sha256.Size]byte

// evictScan bounds how many entries a full cache looks at to make room.
const evictScan = 32

// tokenCache remembers answers about tokens by tokenKey, each until its
// own deadline, at most max entries, of which at most a quarter are
// refusals (so that a flood of bad tokens does not push out the good
// ones). When full, it drops an expired entry, else an arbitrary one: it
// is a cache, losing an entry costs one more check. Its zero value is
// ready; its methods are safe for concurrent use.
type tokenCache struct {
	mu      sync.Mutex // guards the fields below
	entries map[tokenKey]cacheEntry
	refused int // entries with at == nil
}

// cacheEntry is one answer: a token's grant, or its refusal.
type cacheEntry struct {
	at    *AccessToken // nil for a refusal
	err   error        // the refusal
	until time.Time    // the entry is used while now is before until
	gen   uint64       // for the JWTVerifier: the key set generation
}

// get returns the entry for k if there is one and now is before its
// deadline.
func (c *tokenCache) get(k tokenKey, now time.Time) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return cacheEntry{}, false
	}
	if !now.Before(e.until) {
		c.remove(k, e)
		return cacheEntry{}, false
	}
	return e, true
}

// put records e for k, unless the cache cannot make room for it among at
// most max entries.
func (c *tokenCache) put(k tokenKey, e cacheEntry, now time.Time, max int) {
	if max <= 0 || !now.Before(e.until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[tokenKey]cacheEntry)
	}
	if old, ok := c.entries[k]; ok {
		c.remove(k, old)
	}
	refusal := e.at == nil
	if refusal && c.refused >= max/4 && !c.evict(now, true) {
		return
	}
	if len(c.entries) >= max && !c.evict(now, false) {
		return
	}
	c.entries[k] = e
	if refusal {
		c.refused++
	}
}

// evict drops one entry (a refusal if onlyRefusals) and reports whether
// it did: among the first evictScan entries it looks at, the first
// expired one, else the first one that qualifies. Map iteration starts at a random place, so whom it drops is
// not for a client to choose.
func (c *tokenCache) evict(now time.Time, onlyRefusals bool) bool {
	var victim tokenKey
	found, n := false, 0
	for k, e := range c.entries {
		if n++; n > evictScan {
			break
		}
		if onlyRefusals && e.at != nil {
			continue
		}
		if !now.Before(e.until) {
			victim, found = k, true
			break
		}
		if !found {
			victim, found = k, true
		}
	}
	if found {
		c.remove(victim, c.entries[victim])
	}
	return found
}

// remove deletes k, whose entry is e. c.mu must be held.
func (c *tokenCache) remove(k tokenKey, e cacheEntry) {
	delete(c.entries, k)
	if e.at == nil {
		c.refused--
	}
}

// copyToken returns a copy of at for a caller, sharing its slices and map
// (which callers must not modify), or nil: a caller that sets a field of
// its AccessToken changes no other caller's.
func copyToken(at *AccessToken) *AccessToken {
	if at == nil {
		return nil
	}
	c := *at
	return &c
}
