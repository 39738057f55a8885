package redisstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpopkit/dpop/resource"
	"github.com/dpopkit/dpop/resource/storetest"
	"github.com/redis/go-redis/v9"
)

// TestConformance runs what every resource.ReplayStore must do against a
// Store on a real Redis: one server (through clients with and without
// ContextTimeoutEnabled), one found through Sentinel, and a Cluster (of one
// node).
func TestConformance(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		redisAddr(t)
		storetest.TestReplayStore(t, func(t *testing.T) resource.ReplayStore { return newTestStore(t) })
	})
	t.Run("server-without-ContextTimeoutEnabled", func(t *testing.T) {
		c := newClient(t, redisAddr(t), false)
		storetest.TestReplayStore(t, func(t *testing.T) resource.ReplayStore {
			return &Store{Client: c, Prefix: testPrefix(t), Timeout: testTimeout}
		})
	})
	t.Run("sentinel", func(t *testing.T) {
		c := startSentinel(t)
		storetest.TestReplayStore(t, func(t *testing.T) resource.ReplayStore {
			return &Store{Client: c, Prefix: testPrefix(t), Timeout: testTimeout}
		})
	})
	t.Run("cluster", func(t *testing.T) {
		c := startCluster(t)
		storetest.TestReplayStore(t, func(t *testing.T) resource.ReplayStore {
			return &Store{Client: c, Prefix: testPrefix(t), Timeout: testTimeout}
		})
	})
}

func TestClaimNilClient(t *testing.T) {
	for _, s := range []*Store{{}, {FailOpen: true}} {
		err := s.Claim(context.Background(), "jkt", "jti", time.Now().Add(time.Minute))
		if err == nil || !strings.HasPrefix(err.Error(), "dpop: ") {
			t.Errorf("Claim with a nil Client (FailOpen %v) = %v; want a dpop: error", s.FailOpen, err)
		}
	}
}

// TestClaimKeys checks the keys a Store writes: under its prefix, of one
// length whatever the client sent, one per (jkt, jti), holding a small
// value and an expiry.
func TestClaimKeys(t *testing.T) {
	s := newTestStore(t)
	huge := strings.Repeat("A", 1<<20)
	odd := []string{"", "\x00", "\r\n*3\r\n$3\r\nDEL\r\n", "\xff\xfe", "a:b", "*", "é"}
	var pairs [][2]string
	for _, a := range append(odd, huge) {
		for _, b := range append(odd, huge) {
			pairs = append(pairs, [2]string{a, b})
		}
	}
	for _, p := range pairs {
		if err := s.Claim(context.Background(), p[0], p[1], time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("Claim(%d bytes, %d bytes) = %v; want nil", len(p[0]), len(p[1]), err)
		}
	}
	keys := scanKeys(t, s.Client, s.Prefix)
	if len(keys) != len(pairs) {
		t.Errorf("%d keys under %q for %d pairs; want one each", len(keys), s.Prefix, len(pairs))
	}
	for _, k := range keys {
		if len(k) != len(s.Prefix)+43 {
			t.Errorf("key %q: %d bytes; want the prefix and 43", k, len(k))
		}
		v, err := s.Client.Get(context.Background(), k).Result()
		if err != nil || len(v) != 22 {
			t.Errorf("GET %s = %q, %v; want a value of 22 bytes", k, v, err)
		}
	}

	// The default prefix, when Prefix is empty.
	d := &Store{Client: s.Client, Timeout: testTimeout}
	jkt, jti := newPair(t)
	if err := d.Claim(context.Background(), jkt, jti, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Client.Exists(context.Background(), d.key(jkt, jti)).Result(); err != nil || n != 1 ||
		!strings.HasPrefix(d.key(jkt, jti), DefaultPrefix) {
		t.Errorf("key %q exists %d, %v; want 1 under %q", d.key(jkt, jti), n, err, DefaultPrefix)
	}
	s.Client.Del(context.Background(), d.key(jkt, jti))
}

// TestClaimExpiry checks that a record lives until the time the Verifier
// gives, by Redis's own clock.
func TestClaimExpiry(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	jkt, jti := newPair(t)
	until := time.Now().Add(10 * time.Minute)
	if err := s.Claim(ctx, jkt, jti, until); err != nil {
		t.Fatal(err)
	}
	ttl, err := s.Client.PTTL(ctx, s.key(jkt, jti)).Result()
	if err != nil || ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Errorf("PTTL = %v, %v; want about 10m (until)", ttl, err)
	}

	// Redis ends the record when its time has come: set it in the past.
	if err := s.Client.PExpireAt(ctx, s.key(jkt, jti), time.Now().Add(-time.Second)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Claim(ctx, jkt, jti, until); err != nil {
		t.Errorf("Claim after the record expired = %v; want nil", err)
	}

	// An until already past still records the proof, for a millisecond: a
	// claim is never skipped.
	jkt, jti = newPair(t)
	for _, until := range []time.Time{time.Now().Add(-time.Hour), {}} {
		if err := s.Claim(ctx, jkt, jti, until); err != nil {
			t.Errorf("Claim(until %v) = %v; want nil", until, err)
		}
		jkt, jti = newPair(t)
	}
	// A far until does not overflow the expiry Redis is sent.
	if err := s.Claim(ctx, jkt, jti, time.Unix(1<<40, 0)); err != nil {
		t.Errorf("Claim(until far ahead) = %v; want nil", err)
	}
	s.Client.Del(ctx, s.key(jkt, jti))
}

func TestTTLMillis(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		until    time.Time
		min, max int64
	}{
		{now.Add(-time.Hour), 1, 1},
		{time.Time{}, 1, 1},
		{now.Add(time.Minute), 59_000, 60_000},
		{now.Add(1500 * time.Microsecond), 1, 2},
		{time.Unix(1<<62, 0), 1 << 40, 1 << 53},
	} {
		if got := ttlMillis(tc.until); got < tc.min || got > tc.max {
			t.Errorf("ttlMillis(%v) = %d; want %d to %d", tc.until, got, tc.min, tc.max)
		}
	}
}

// TestClaimRoundTrips checks that a claim is one command in one round
// trip, counted on both sides: by a hook in the client and by Redis.
func TestClaimRoundTrips(t *testing.T) {
	srv := startServer(t)
	c := newClient(t, srv.addr, true)
	var commands, pipelines atomic.Int64
	c.AddHook(countHook{&commands, &pipelines})
	s := &Store{Client: c, Timeout: testTimeout}
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil { // the connection's own setup, once
		t.Fatal(err)
	}
	before := commandStats(t, c)
	commands.Store(0)
	pipelines.Store(0)
	const n = 100
	var jkt, jti string
	for range n {
		jkt, jti = newPair(t)
		if err := s.Claim(ctx, jkt, jti, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Claim(ctx, jkt, jti, time.Now().Add(time.Minute)); !errors.Is(err, resource.ErrReplayed) {
		t.Fatal(err)
	}
	if got := commands.Load(); got != n+1 || pipelines.Load() != 0 {
		t.Errorf("the client sent %d commands and %d pipelines for %d claims; want %d and 0", got, pipelines.Load(), n+1, n+1)
	}
	after := commandStats(t, c)
	for name, calls := range after {
		want := before[name]
		switch name {
		case "set":
			want += n + 1
		case "info":
			want++
		}
		if calls != want {
			t.Errorf("Redis served %s %d times during %d claims; want %d", name, calls-before[name], n+1, want-before[name])
		}
	}
}

// TestClaimAnswerLost loses Redis's answer to a claim: go-redis sends the
// SET again on another connection, and Redis, which carried out the first,
// finds the record. The claim is still the first of its proof and must
// succeed, not be refused as a replay of itself.
func TestClaimAnswerLost(t *testing.T) {
	srv := startServer(t)
	s := &Store{Client: newClient(t, startLossyProxy(t, srv.addr), true), Timeout: testTimeout}
	ctx := context.Background()
	jkt, jti := newPair(t)
	if err := s.Claim(ctx, jkt, jti, time.Now().Add(time.Hour)); err != nil {
		t.Errorf("Claim whose first answer was lost = %v; want nil", err)
	}
	if err := s.Claim(ctx, jkt, jti, time.Now().Add(time.Hour)); !errors.Is(err, resource.ErrReplayed) {
		t.Errorf("Claim again = %v; want ErrReplayed", err)
	}
	if sets := commandStats(t, newClient(t, srv.addr, true))["set"]; sets != 3 {
		t.Errorf("Redis served %d SETs; want 3 (the lost answer's command sent twice, then the replay)", sets)
	}
}

// TestClaimRedisStopped stops Redis under a Store: claims fail closed
// with an *UnavailableError that OnUnavailable sees, and succeed again
// once Redis is back. Redis comes back empty (no persistence): a proof
// claimed before is forgotten, as the package documentation says.
func TestClaimRedisStopped(t *testing.T) {
	srv := startServer(t)
	for _, contextTimeout := range []bool{true, false} {
		var reported atomic.Int32
		s := &Store{
			Client:  newClient(t, srv.addr, contextTimeout),
			Timeout: testTimeout,
			OnUnavailable: func(ctx context.Context, err *UnavailableError) {
				reported.Add(1)
			},
		}
		ctx := context.Background()
		far := time.Now().Add(time.Hour)
		old, oldJTI := newPair(t)
		if err := s.Claim(ctx, old, oldJTI, far); err != nil {
			t.Fatal(err)
		}

		srv.kill()
		jkt, jti := newPair(t)
		err := s.Claim(ctx, jkt, jti, far)
		var uerr *UnavailableError
		if !errors.As(err, &uerr) || errors.Is(err, resource.ErrReplayed) || !strings.HasPrefix(err.Error(), "dpop: ") {
			t.Errorf("ContextTimeoutEnabled %v: Claim with Redis stopped = %v; want an *UnavailableError", contextTimeout, err)
		}
		if reported.Load() != 1 {
			t.Errorf("OnUnavailable called %d times; want 1", reported.Load())
		}

		srv.restart()
		if err := s.Claim(ctx, jkt, jti, far); err != nil {
			t.Errorf("ContextTimeoutEnabled %v: Claim once Redis is back = %v; want nil", contextTimeout, err)
		}
		if err := s.Claim(ctx, jkt, jti, far); !errors.Is(err, resource.ErrReplayed) {
			t.Errorf("Claim again = %v; want ErrReplayed", err)
		}
		if err := s.Claim(ctx, old, oldJTI, far); err != nil {
			t.Errorf("Claim of a proof claimed before the restart = %v; want nil (Redis kept nothing)", err)
		}
	}
}

// TestClaimRedisFrozen freezes Redis (it accepts connections and answers
// nothing): the Store's Timeout ends each claim, with or without the
// client's ContextTimeoutEnabled, long before the client's own timeouts
// (a minute) would.
func TestClaimRedisFrozen(t *testing.T) {
	srv := startServer(t)
	for _, contextTimeout := range []bool{true, false} {
		s := &Store{Client: newClient(t, srv.addr, contextTimeout), Timeout: 100 * time.Millisecond}
		ctx := context.Background()
		if err := s.Client.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		srv.freeze()
		jkt, jti := newPair(t)
		start := time.Now()
		err := s.Claim(ctx, jkt, jti, time.Now().Add(time.Hour))
		elapsed := time.Since(start)
		srv.thaw()
		var uerr *UnavailableError
		if !errors.As(err, &uerr) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ContextTimeoutEnabled %v: Claim with Redis frozen = %v; want an *UnavailableError wrapping DeadlineExceeded", contextTimeout, err)
		}
		if elapsed > 30*time.Second {
			t.Errorf("ContextTimeoutEnabled %v: Claim took %v; want it ended by the Store's Timeout", contextTimeout, elapsed)
		}

		// The request's own deadline, shorter than the Timeout, ends it too.
		s.Timeout = time.Minute
		srv.freeze()
		rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		err = s.Claim(rctx, jkt, jti, time.Now().Add(time.Hour))
		cancel()
		srv.thaw()
		if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &uerr) {
			t.Errorf("ContextTimeoutEnabled %v: Claim past the request's deadline = %v; want its DeadlineExceeded", contextTimeout, err)
		}
	}
}

// TestClaimFailOpen checks the FailOpen option: a claim Redis cannot
// answer returns nil and is reported, but one whose request ended does
// not (a client closing its connection must not skip the claim).
func TestClaimFailOpen(t *testing.T) {
	srv := startServer(t)
	var reported []error
	var mu sync.Mutex
	s := &Store{
		Client:   newClient(t, srv.addr, true),
		FailOpen: true,
		Timeout:  testTimeout,
		OnUnavailable: func(ctx context.Context, err *UnavailableError) {
			mu.Lock()
			reported = append(reported, err)
			mu.Unlock()
		},
	}
	ctx := context.Background()
	jkt, jti := newPair(t)
	if err := s.Claim(ctx, jkt, jti, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Claim(ctx, jkt, jti, time.Now().Add(time.Hour)); !errors.Is(err, resource.ErrReplayed) {
		t.Errorf("Claim again with Redis up = %v; want ErrReplayed (FailOpen changes only failures)", err)
	}

	srv.kill()
	if err := s.Claim(ctx, jkt, jti, time.Now().Add(time.Hour)); err != nil {
		t.Errorf("FailOpen: Claim with Redis stopped = %v; want nil", err)
	}
	var uerr *UnavailableError
	if len(reported) != 1 || !errors.As(reported[0], &uerr) {
		t.Errorf("OnUnavailable saw %v; want one *UnavailableError", reported)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Claim(canceled, jkt, jti, time.Now().Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("FailOpen: Claim with a canceled request = %v; want context.Canceled", err)
	}
	if len(reported) != 1 {
		t.Errorf("OnUnavailable called %d times; want 1 (a canceled request is not Redis being away)", len(reported))
	}
}

func TestStoreTimeout(t *testing.T) {
	for _, tc := range []struct{ set, want time.Duration }{
		{0, DefaultTimeout},
		{-time.Second, DefaultTimeout},
		{time.Second, time.Second},
	} {
		if got := (&Store{Timeout: tc.set}).timeout(); got != tc.want {
			t.Errorf("Timeout %v: timeout() = %v; want %v", tc.set, got, tc.want)
		}
	}
}

func TestUnavailableError(t *testing.T) {
	cause := errors.New("connection refused")
	err := error(&UnavailableError{Err: cause})
	if !errors.Is(err, cause) {
		t.Errorf("errors.Is(%v, cause) = false; want true", err)
	}
	if got, want := err.Error(), "dpop: replay store unavailable: connection refused"; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}

func TestHonoursContext(t *testing.T) {
	for _, tc := range []struct {
		c    redis.UniversalClient
		want bool
	}{
		{redis.NewClient(&redis.Options{ContextTimeoutEnabled: true}), true},
		{redis.NewClient(&redis.Options{}), false},
		{redis.NewClusterClient(&redis.ClusterOptions{ContextTimeoutEnabled: true}), true},
		{redis.NewClusterClient(&redis.ClusterOptions{}), false},
		{redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "m", ContextTimeoutEnabled: true}), true},
		{redis.NewRing(&redis.RingOptions{ContextTimeoutEnabled: true}), true},
		{redis.NewUniversalClient(&redis.UniversalOptions{ContextTimeoutEnabled: true}), true},
	} {
		if got := honoursContext(tc.c); got != tc.want {
			t.Errorf("honoursContext(%T) = %v; want %v", tc.c, got, tc.want)
		}
		tc.c.Close()
	}
}

// FuzzKey checks the keys of any (jkt, jti): one length, the prefix, and
// another key when the split between jkt and jti moves.
func FuzzKey(f *testing.F) {
	f.Add("jkt", "jti", 1)
	f.Add("", "", 0)
	f.Add("\x00\xff", "a:b\r\n", 3)
	s := &Store{Prefix: "p:"}
	f.Fuzz(func(t *testing.T, jkt, jti string, cut int) {
		k := s.key(jkt, jti)
		if len(k) != len("p:")+43 || !strings.HasPrefix(k, "p:") {
			t.Fatalf("key(%q, %q) = %q; want p: and 43 characters", jkt, jti, k)
		}
		if k != s.key(jkt, jti) {
			t.Fatalf("key(%q, %q) differs between calls", jkt, jti)
		}
		joined := jkt + jti
		if cut < 0 || cut > len(joined) || cut == len(jkt) {
			return
		}
		if k2 := s.key(joined[:cut], joined[cut:]); k2 == k {
			t.Errorf("key(%q, %q) = key(%q, %q)", jkt, jti, joined[:cut], joined[cut:])
		}
	})
}
