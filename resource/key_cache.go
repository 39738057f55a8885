package resource

import (
	"strings"
	"sync"
)

// Bounds of the proof key cache.
const (
	maxCachedHeaders = 1024 // protected headers remembered
	maxHeadersPerKey = 2    // of them for one key: a client sends one header, two while it changes its form
)

// keyCache remembers the key and thumbprint parsed from a protected
// header, by the exact bytes of its segment: a client sends the same typ,
// alg and jwk with every proof, so each is parsed, its point checked and
// its thumbprint hashed once. A header is added only when its proof was
// accepted, token and binding included, and one key holds at most
// maxHeadersPerKey entries, so that a client cannot fill the cache for the
// others with headers of fresh keys or of many forms of its own. When full,
// an arbitrary entry gives way.
//
// The zero value is an empty cache.
type keyCache struct {
	mu     sync.Mutex           // guards the fields below
	keys   map[string]*proofKey // header segment → key
	perJKT map[string]int       // entries of each key
}

// get returns the key of the header segment seg, or nil.
func (c *keyCache) get(seg string) *proofKey {
	c.mu.Lock()
	k := c.keys[seg]
	c.mu.Unlock()
	return k
}

// put remembers k as the key of the header segment seg.
func (c *keyCache) put(seg string, k *proofKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.keys[seg]; ok || c.perJKT[k.jkt] >= maxHeadersPerKey {
		return
	}
	if c.keys == nil {
		c.keys = make(map[string]*proofKey)
		c.perJKT = make(map[string]int)
	}
	if len(c.keys) >= maxCachedHeaders {
		for s, old := range c.keys { // map order: an arbitrary entry
			delete(c.keys, s)
			if c.perJKT[old.jkt]--; c.perJKT[old.jkt] <= 0 {
				delete(c.perJKT, old.jkt)
			}
			break
		}
	}
	c.keys[strings.Clone(seg)] = k // not a substring of the whole proof
	c.perJKT[k.jkt]++
}
