package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dpopkit/dpop/resource"
	"github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every key a [Store] writes when its Prefix is empty.
const DefaultPrefix = "dpop:jti:"

// DefaultTimeout bounds each claim when a [Store]'s Timeout is not set: long
// enough for a Redis on the same network, short enough that a request does
// not hang on one that is away.
const DefaultTimeout = 150 * time.Millisecond

// Store is a [resource.ReplayStore] kept in Redis, shared by every
// instance of an API that uses the same Redis (RFC 9449 §11.1).
//
// Each claim is one command in one round trip, SET key value PX ttl NX
// GET: the key is Prefix and a hash of jkt and jti, of fixed size whatever
// the client sent; the value names the claim; the expiry is until. The
// package documentation tells why, what Redis it needs (7.0 or later), and
// what happens when Redis is away or loses its records.
//
// Client is the only required field. A Store is safe for concurrent use.
// Its fields must not be changed, and it must not be copied, after its
// first Claim.
type Store struct {
	// Client is the Redis the records are kept in: a *redis.Client (one
	// server, or Sentinel through redis.NewFailoverClient), a
	// *redis.ClusterClient, or what redis.NewUniversalClient returns. Give
	// it ContextTimeoutEnabled: see the package documentation.
	Client redis.UniversalClient

	// Prefix starts every key, so that the records cannot collide with the
	// application's own keys. If empty, DefaultPrefix is used. A prefix
	// holding a Cluster hash tag ("{…}") would put every record in one
	// slot, on one node.
	Prefix string

	// Timeout bounds each claim, on top of the request's context. If zero or
	// negative, DefaultTimeout is used.
	Timeout time.Duration

	// FailOpen makes Claim return nil (the proof is accepted, unrecorded)
	// when Redis cannot answer, instead of an *UnavailableError (the
	// Verifier then refuses the request with 503). With FailOpen, replays
	// are accepted for as long as Redis is away: set it only where that is
	// worth more than refusing every request. A request whose own context
	// ends during the claim is never accepted this way.
	FailOpen bool

	// OnUnavailable, if not nil, is called with every claim Redis could not
	// answer, whether FailOpen is set or not, before Claim returns: count
	// them. A claim ended by the request's own context is not one of them.
	// It must not block.
	OnUnavailable func(ctx context.Context, err *UnavailableError)

	once      sync.Once
	directCtx bool    // set by once: Client bounds its I/O by the context itself
	id        [8]byte // set by once: random, this Store's part of each value
	claims    atomic.Uint64
}

var _ resource.ReplayStore = (*Store)(nil)

// Claim records the proof named by jkt and jti until the time until, as
// [resource.ReplayStore] says: nil when it was not recorded yet,
// [resource.ErrReplayed] when it was, an *[UnavailableError] when Redis
// could not answer within the Store's Timeout (nil instead with FailOpen),
// or the context's error when ctx ended first.
func (s *Store) Claim(ctx context.Context, jkt, jti string, until time.Time) error {
	if s.Client == nil {
		return errors.New("dpop: redisstore: Store's Client is nil")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dpop: replay claim not made: %w", err)
	}
	s.once.Do(s.init)

	key, value := s.key(jkt, jti), s.value()
	tctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	cmd := redis.NewStringCmd(tctx, "set", key, value, "px", ttlMillis(until), "nx", "get")
	err := s.process(tctx, cmd)
	switch {
	case errors.Is(err, redis.Nil):
		return nil // no record: this claim made it
	case err == nil && cmd.Val() == value:
		// The record is this claim's own: go-redis sent the command again
		// after losing the first answer (a connection closed between the
		// two, a failover).
		return nil
	case err == nil:
		return resource.ErrReplayed
	}
	if ctx.Err() != nil {
		// The request itself ended (its client went away, or its own
		// deadline passed): never a reason to fail open.
		return fmt.Errorf("dpop: replay claim not made: %w", ctx.Err())
	}
	if tctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (%v): %w", context.DeadlineExceeded, s.timeout(), err)
	}
	uerr := &UnavailableError{Err: err}
	if s.OnUnavailable != nil {
		s.OnUnavailable(ctx, uerr)
	}
	if s.FailOpen {
		return nil
	}
	return uerr
}

func (s *Store) init() {
	s.directCtx = honoursContext(s.Client)
	rand.Read(s.id[:])
}

// value returns the value of a new record: the Store's id and the number
// of the claim, in 22 characters of unpadded base64url. Each claim writes
// its own, so that a claim sent twice by go-redis (when the first answer
// was lost) recognises its record when SET ... GET returns it.
func (s *Store) value() string {
	var v [16]byte
	copy(v[:8], s.id[:])
	binary.BigEndian.PutUint64(v[8:], s.claims.Add(1))
	var out [22]byte
	return string(base64.RawURLEncoding.AppendEncode(out[:0], v[:]))
}

// process sends cmd and waits for its answer, or for ctx to end. A client
// without ContextTimeoutEnabled bounds its reads by its ReadTimeout alone
// (3 s by default), not by ctx: the command then runs in a goroutine of its
// own, left to finish (or time out) after Claim returns.
func (s *Store) process(ctx context.Context, cmd redis.Cmder) error {
	if s.directCtx {
		return s.Client.Process(ctx, cmd)
	}
	done := make(chan struct{})
	go func() {
		s.Client.Process(ctx, cmd)
		close(done)
	}()
	select {
	case <-done:
		return cmd.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// honoursContext reports whether c bounds its socket reads and writes by
// the context's deadline (go-redis's ContextTimeoutEnabled).
func honoursContext(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

func (s *Store) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

// key returns the key of the record of the proof named by jkt and jti: the
// prefix and the unpadded base64url SHA-256 of both, each preceded by its
// length so that no two pairs share an input (43 characters after the
// prefix, whatever the lengths of jkt and jti).
func (s *Store) key(jkt, jti string) string {
	prefix := s.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	var in [2 * (8 + 64)]byte // the Verifier's jkt and jti (43 characters) fit
	b := binary.BigEndian.AppendUint64(in[:0], uint64(len(jkt)))
	b = append(b, jkt...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(jti)))
	b = append(b, jti...)
	sum := sha256.Sum256(b)
	var out [96]byte
	k := append(out[:0], prefix...)
	return string(base64.RawURLEncoding.AppendEncode(k, sum[:]))
}

// ttlMillis returns the time left until until in whole milliseconds,
// rounded up, and at least 1. Redis counts it from its own clock when the
// command arrives, so a Redis clock that is off does not shorten the record.
func ttlMillis(until time.Time) int64 {
	d := time.Until(until)
	if d <= time.Millisecond {
		return 1
	}
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond != 0 {
		ms++
	}
	return ms
}

// UnavailableError is the error of a claim that Redis could not answer: it
// was away, refused the command, or did not answer within the Store's
// Timeout. The resource Verifier answers such a failure with 503 (the
// client keeps its token and may try again).
type UnavailableError struct {
	// Err is the client's error; it wraps context.DeadlineExceeded when the
	// Store's Timeout ended the claim.
	Err error
}

func (e *UnavailableError) Error() string {
	return "dpop: replay store unavailable: " + e.Err.Error()
}

func (e *UnavailableError) Unwrap() error { return e.Err }
