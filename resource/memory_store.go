package resource

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// Default bounds of a [MemoryStore].
const (
	defaultMaxEntries = 1 << 19
	perKeyShare       = 8 // MaxPerKey defaults to MaxEntries / perKeyShare
)

// MemoryStore is a [ReplayStore] in the memory of one process: for an API
// served by one instance. Instances behind a load balancer need a store
// they share (the Redis store of this module's redisstore).
//
// It is bounded: at most MaxEntries proofs are recorded, at most MaxPerKey
// of them for one key, so that one client (even one holding a valid
// token) cannot fill it for the others. A recorded proof is never dropped
// before its time, since that would let it be replayed: when a bound is
// reached, Claim refuses the new proof with a [*StoreFullError] (fails
// closed). Expired proofs are swept as new ones are claimed. Each recorded
// proof costs about 100 bytes.
//
// The zero value is ready to use with the defaults. The fields must not be
// changed after the first Claim. A MemoryStore is safe for concurrent use
// and must not be copied after first use.
type MemoryStore struct {
	// MaxEntries bounds the proofs recorded and not yet expired. If zero,
	// 524288: a rate of about 8000 proofs a second with the Verifier's
	// default window. Size it to the rate of requests times how long a
	// proof stays acceptable.
	MaxEntries int

	// MaxPerKey bounds the live proofs of one key. If zero, MaxEntries/8.
	MaxPerKey int

	now func() time.Time // the clock; nil means time.Now (tests set it)

	mu     sync.Mutex         // guards the fields below
	seen   map[memKey]int64   // recorded proof → until, in Unix nanoseconds
	perKey map[[16]byte]int32 // live proofs per key
	expiry []memEntry         // a min-heap on until of every entry of seen
	peak   int                // most entries held since the maps were made
}

// memKey names a proof: the first 128 bits of its key's thumbprint and of
// the hash of its jti. Finding another key or jti with the same prefix
// costs 2^128 work; a client could only collide with its own proofs.
type memKey struct {
	jkt, jti [16]byte
}

type memEntry struct {
	key   memKey
	until int64
}

// Claim records the proof named by jkt and jti until the time until
// (RFC 9449 §11.1). It returns [ErrReplayed] for a proof already recorded
// and not expired, a [*StoreFullError] when a bound is reached, and
// ctx.Err() when ctx is done.
func (s *MemoryStore) Claim(ctx context.Context, jkt, jti string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k := memKey{jkt: prefix128(jkt), jti: prefix128(jti)}
	now := s.clock().UnixNano()
	u := until.UnixNano()

	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if _, ok := s.seen[k]; ok {
		return ErrReplayed
	}
	if u <= now {
		return nil // it can not be accepted again: nothing to keep
	}
	maxEntries, maxPerKey := s.limits()
	if len(s.seen) >= maxEntries {
		return &StoreFullError{Limit: maxEntries}
	}
	if int(s.perKey[k.jkt]) >= maxPerKey {
		return &StoreFullError{PerKey: true, Limit: maxPerKey}
	}
	if s.seen == nil {
		s.seen = make(map[memKey]int64)
		s.perKey = make(map[[16]byte]int32)
	}
	s.seen[k] = u
	s.perKey[k.jkt]++
	s.push(memEntry{k, u})
	s.peak = max(s.peak, len(s.seen))
	return nil
}

func (s *MemoryStore) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

func (s *MemoryStore) limits() (maxEntries, maxPerKey int) {
	maxEntries = s.MaxEntries
	if maxEntries <= 0 {
		maxEntries = defaultMaxEntries
	}
	maxPerKey = s.MaxPerKey
	if maxPerKey <= 0 {
		maxPerKey = max(maxEntries/perKeyShare, 1)
	}
	return maxEntries, maxPerKey
}

// sweep forgets the proofs expired at now. s.mu is held.
func (s *MemoryStore) sweep(now int64) {
	for len(s.expiry) > 0 && s.expiry[0].until <= now {
		e := s.pop()
		delete(s.seen, e.key)
		if n := s.perKey[e.key.jkt] - 1; n > 0 {
			s.perKey[e.key.jkt] = n
		} else {
			delete(s.perKey, e.key.jkt)
		}
	}
	// Maps never shrink: after a burst, start again with small ones.
	if len(s.seen) == 0 && s.peak > 1<<12 {
		s.seen, s.perKey, s.expiry, s.peak = nil, nil, nil, 0
	}
}

func (s *MemoryStore) push(e memEntry) {
	h := append(s.expiry, e)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if h[p].until <= h[i].until {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
	s.expiry = h
}

func (s *MemoryStore) pop() memEntry {
	h := s.expiry
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < n && h[l].until < h[small].until {
			small = l
		}
		if r := l + 1; r < n && h[r].until < h[small].until {
			small = r
		}
		if small == i {
			break
		}
		h[i], h[small] = h[small], h[i]
		i = small
	}
	s.expiry = h
	return top
}

// prefix128 returns the first 16 bytes of s, the base64url encoding of
// a SHA-256 hash as the Verifier passes it, or of the SHA-256 hash of s
// when s is not one.
func prefix128(s string) [16]byte {
	var out [16]byte
	var b [18]byte
	if len(s) == 43 && decodePrefix(b[:], s) {
		copy(out[:], b[:])
		return out
	}
	sum := sha256.Sum256([]byte(s))
	copy(out[:], sum[:])
	return out
}

// decodePrefix decodes the first len(dst) bytes of the unpadded base64url
// s into dst, a multiple of 3 bytes, after checking that all of s is
// base64url, without allocating.
func decodePrefix(dst []byte, s string) bool {
	for i := 0; i < len(s); i++ {
		if b64Value(s[i]) < 0 {
			return false
		}
	}
	for i, j := 0, 0; i+3 <= len(dst); i, j = i+3, j+4 {
		v := b64Value(s[j])<<18 | b64Value(s[j+1])<<12 | b64Value(s[j+2])<<6 | b64Value(s[j+3])
		dst[i], dst[i+1], dst[i+2] = byte(v>>16), byte(v>>8), byte(v)
	}
	return true
}

func b64Value(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 26
	case '0' <= c && c <= '9':
		return int(c-'0') + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	}
	return -1
}

var _ ReplayStore = (*MemoryStore)(nil)
