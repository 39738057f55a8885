package dpop

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxNonceLen is the longest server nonce a [NonceCache] stores. RFC 9449
// §8.1 sets no limit; real nonces are tens of bytes, and a bound keeps a
// hostile server from making every later proof large.
const maxNonceLen = 512

// defaultMaxOrigins is the number of origins a [NonceCache] remembers when
// no other bound is given.
const defaultMaxOrigins = 256

// validNonce reports whether s is a nonce a client may store and send:
// 1*NQCHAR (RFC 9449 §8.1, NQCHAR = %x21 / %x23-5B / %x5D-7E), at most
// maxNonceLen bytes.
func validNonce(s string) bool {
	if len(s) == 0 || len(s) > maxNonceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

// NonceCache holds what a client learned of each server origin (RFC 9449
// §8, §9): its current DPoP nonce (one value per scheme://host[:port], the
// newest winning), or that it asked for none, and how far its clock is from
// ours when a server refused a proof for its iat (§11.1). It is safe for
// concurrent use and may be shared by several [Transport] values; its zero
// value is an empty cache holding up to 256 origins.
// Methods on a nil *NonceCache remember nothing.
//
// Reads take no lock and write no shared memory, so concurrent requests do
// not serialize on the cache. A write copies the origin table, which is
// cheap for the few origins a client talks to; when the table is full the
// origin written longest ago is dropped.
//
// While an origin is unknown, the cache lets one request go first and the
// others wait for its response headers (see "Nonces" in the package
// documentation), so that a cold start does not pay a challenge per
// request.
//
// Keep authorization-server and resource-server nonces in different caches
// when both sit behind one origin: they are separate values (§8, §9), and a
// shared cache would trade them back and forth at a round trip each time.
type NonceCache struct {
	max    int
	table  atomic.Pointer[nonceTable]
	mu     sync.Mutex               // serializes writers and guards probes; readers never take it
	probes map[origin]chan struct{} // origins whose first request is under way; closed when it has its answer
}

type nonceTable struct {
	m   map[origin]nonceEntry
	seq uint64 // sequence number of the newest write
}

// nonceEntry is what is known of one origin.
type nonceEntry struct {
	nonce  string        // the current nonce, or "" when the origin sent none
	offset time.Duration // the server's clock minus ours, when learned; else 0
	seq    uint64        // when it was written, for eviction of the oldest
}

// NewNonceCache returns a cache that remembers at most maxOrigins origins;
// maxOrigins <= 0 means 256.
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
// A value that is not a valid nonce (1*NQCHAR, RFC 9449 §8.1, of at most
// 512 bytes) or a URL that is not
// absolute http(s) is ignored.
func (c *NonceCache) Put(rawURL, nonce string) bool {
	o, ok := parseOrigin(rawURL)
	if !ok {
		return false
	}
	return c.put(o, nonce)
}

// Len returns the number of origins the cache knows.
func (c *NonceCache) Len() int {
	if c == nil {
		return 0
	}
	if t := c.table.Load(); t != nil {
		return len(t.m)
	}
	return 0
}

// lookup returns what is known of o, and whether anything is.
func (c *NonceCache) lookup(o origin) (nonceEntry, bool) {
	if c == nil {
		return nonceEntry{}, false
	}
	if t := c.table.Load(); t != nil {
		e, ok := t.m[o]
		return e, ok
	}
	return nonceEntry{}, false
}

func (c *NonceCache) get(o origin) string {
	e, _ := c.lookup(o)
	return e.nonce
}

// put stores nonce as o's current nonce, when it is valid.
func (c *NonceCache) put(o origin, nonce string) bool {
	if c == nil || !validNonce(nonce) {
		return false
	}
	c.store(o, nonce)
	return true
}

// store makes nonce, a valid one, o's current nonce, and reports whether
// that changed o's nonce, and whether o had one before.
func (c *NonceCache) store(o origin, nonce string) (changed, had bool) {
	if c.get(o) == nonce {
		return false, true // the common case: the server repeats its current nonce
	}
	c.update(o, func(e *nonceEntry, _ bool) bool {
		had, changed = e.nonce != "", e.nonce != nonce
		if changed {
			e.nonce = nonce
		}
		return changed
	})
	return changed, had
}

// learn records what the response to a request to o said of its nonce:
// a valid DPoP-Nonce becomes o's nonce; none, from an origin the cache
// does not know yet, records that o asked for none, so that later requests
// do not wait for a first one. It reports whether the response changed
// o's nonce, and whether o had one before.
func (c *NonceCache) learn(o origin, resp *http.Response) (changed, had bool) {
	if c == nil {
		return false, false
	}
	if n := responseNonce(resp); n != "" {
		return c.store(o, n)
	}
	if _, known := c.lookup(o); !known {
		c.update(o, func(_ *nonceEntry, present bool) bool { return !present })
	}
	return false, false
}

// setOffset records o's clock offset (the server's clock minus ours).
func (c *NonceCache) setOffset(o origin, d time.Duration) {
	if c == nil {
		return
	}
	c.update(o, func(e *nonceEntry, _ bool) bool {
		if e.offset == d {
			return false
		}
		e.offset = d
		return true
	})
}

// update applies f to a copy of o's entry (the zero entry when o is not
// present) and, when f reports a change, stores the copy in a new table,
// dropping the oldest origin when the table is full.
func (c *NonceCache) update(o origin, f func(e *nonceEntry, present bool) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.table.Load()
	var n int
	var e nonceEntry
	var present bool
	if old != nil {
		e, present = old.m[o]
		n = len(old.m)
	}
	if !f(&e, present) {
		return
	}
	max := c.max
	if max <= 0 {
		max = defaultMaxOrigins
	}
	next := &nonceTable{m: make(map[origin]nonceEntry, min(n+1, max))}
	if old != nil {
		next.seq = old.seq
		var evict origin
		full := !present && n >= max
		if full {
			oldest := ^uint64(0)
			for k, e := range old.m {
				if e.seq < oldest {
					oldest, evict = e.seq, k
				}
			}
		}
		for k, e := range old.m {
			if full && k == evict {
				continue
			}
			next.m[k] = e
		}
	}
	next.seq++
	e.seq = next.seq
	next.m[o] = e
	c.table.Store(next)
}

// probe is called for a request to an origin the cache does not know. The
// first caller gets first == true and must call c.release(o, wait) once it
// has the response headers (or failed); the others get the channel to wait
// on. A nil cache makes nobody wait.
func (c *NonceCache) probe(o origin) (wait chan struct{}, first bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.probes[o]; ok {
		return ch, false
	}
	if t := c.table.Load(); t != nil {
		if _, known := t.m[o]; known {
			return nil, false // learned while the caller looked
		}
	}
	if c.probes == nil {
		c.probes = make(map[origin]chan struct{})
	}
	ch := make(chan struct{})
	c.probes[o] = ch
	return ch, true
}

// release ends the first request's turn at o: the waiters go on with what
// the cache now knows.
func (c *NonceCache) release(o origin, ch chan struct{}) {
	c.mu.Lock()
	if c.probes[o] == ch {
		delete(c.probes, o)
	}
	c.mu.Unlock()
	close(ch)
}

// responseNonce returns resp's DPoP-Nonce when it is valid (RFC 9449 §8.1).
func responseNonce(resp *http.Response) string {
	if v := resp.Header["Dpop-Nonce"]; len(v) == 1 && validNonce(v[0]) {
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
