package dpop

import (
	"net/http"
	"sync"
	"sync/atomic"
)

// MaxNonceLen is the longest server nonce a [NonceCache] stores. RFC 9449
// §8.1 sets no limit; real nonces are tens of bytes, and a bound keeps a
// hostile server from making every later proof large.
const MaxNonceLen = 512

// DefaultMaxOrigins is the number of origins a [NonceCache] remembers when
// no other bound is given.
const DefaultMaxOrigins = 256

// ValidNonce reports whether s is a nonce a client may store and send:
// 1*NQCHAR (RFC 9449 §8.1, NQCHAR = %x21 / %x23-5B / %x5D-7E), at most
// [MaxNonceLen] bytes.
func ValidNonce(s string) bool {
	if len(s) == 0 || len(s) > MaxNonceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

// NonceCache holds the current DPoP nonce of each server origin (RFC 9449
// §8, §9): one value per scheme://host[:port], the newest winning. It is
// safe for concurrent use and may be shared by several [Transport] values;
// its zero value is an empty cache holding up to [DefaultMaxOrigins]
// origins. Methods on a nil *NonceCache remember nothing.
//
// Reads take no lock and write no shared memory, so concurrent requests do
// not serialize on the cache. A write copies the origin table, which is
// cheap for the few origins a client talks to; when the table is full the
// origin whose nonce was set longest ago is dropped.
//
// Keep authorization-server and resource-server nonces in different caches
// when both sit behind one origin: they are separate values (§8, §9), and a
// shared cache would trade them back and forth at a round trip each time.
type NonceCache struct {
	max   int
	table atomic.Pointer[nonceTable]
	mu    sync.Mutex // serializes writers; readers never take it
}

type nonceTable struct {
	m   map[origin]nonceEntry
	seq uint64 // sequence number of the newest write
}

type nonceEntry struct {
	nonce string
	seq   uint64 // when it was set, for eviction of the oldest
}

// NewNonceCache returns a cache that remembers nonces for at most
// maxOrigins origins; maxOrigins <= 0 means [DefaultMaxOrigins].
func NewNonceCache(maxOrigins int) *NonceCache {
	return &NonceCache{max: maxOrigins}
}

// Get returns the nonce last stored for the origin of rawURL, or "".
func (c *NonceCache) Get(rawURL string) string {
	o, ok := parseOrigin(rawURL)
	if !ok {
		return ""
	}
	return c.get(o)
}

// Put stores nonce for the origin of rawURL and reports whether it did so.
// A value that is not a valid nonce ([ValidNonce]) or a URL that is not
// absolute http(s) is ignored.
func (c *NonceCache) Put(rawURL, nonce string) bool {
	o, ok := parseOrigin(rawURL)
	if !ok {
		return false
	}
	return c.put(o, nonce)
}

// Len returns the number of origins with a stored nonce.
func (c *NonceCache) Len() int {
	if c == nil {
		return 0
	}
	if t := c.table.Load(); t != nil {
		return len(t.m)
	}
	return 0
}

func (c *NonceCache) get(o origin) string {
	if c == nil {
		return ""
	}
	if t := c.table.Load(); t != nil {
		return t.m[o].nonce
	}
	return ""
}

func (c *NonceCache) put(o origin, nonce string) bool {
	if c == nil || !ValidNonce(nonce) {
		return false
	}
	if c.get(o) == nonce {
		return true // the common case: the server repeats its current nonce
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.table.Load()
	var n int
	if old != nil {
		if old.m[o].nonce == nonce {
			return true
		}
		n = len(old.m)
	}
	max := c.max
	if max <= 0 {
		max = DefaultMaxOrigins
	}
	next := &nonceTable{m: make(map[origin]nonceEntry, min(n+1, max))}
	if old != nil {
		next.seq = old.seq
		_, present := old.m[o]
		var evict origin
		if !present && n >= max {
			oldest := ^uint64(0)
			for k, e := range old.m {
				if e.seq < oldest {
					oldest, evict = e.seq, k
				}
			}
		}
		for k, e := range old.m {
			if !present && n >= max && k == evict {
				continue
			}
			next.m[k] = e
		}
	}
	next.seq++
	next.m[o] = nonceEntry{nonce: nonce, seq: next.seq}
	c.table.Store(next)
	return true
}

// responseNonce returns resp's DPoP-Nonce when it is valid (RFC 9449 §8.1).
func responseNonce(resp *http.Response) string {
	if v := resp.Header["Dpop-Nonce"]; len(v) == 1 && ValidNonce(v[0]) {
		return v[0]
	}
	return ""
}

// lazyNonceCache gives a struct whose zero value must work a NonceCache of
// its own, made on first use, for when the user set none. Unlike an
// atomic.Pointer it may be copied after use, as x/oauth2's
// LazyAuthStyleCache may: the copies then share one cache, which is right
// for copies of one client configuration.
type lazyNonceCache struct{ v atomic.Value } // of *NonceCache

// get returns c when it is set, else the lazily made cache.
func (l *lazyNonceCache) get(c *NonceCache) *NonceCache {
	if c != nil {
		return c
	}
	if own, ok := l.v.Load().(*NonceCache); ok {
		return own
	}
	l.v.CompareAndSwap(nil, new(NonceCache))
	return l.v.Load().(*NonceCache)
}
