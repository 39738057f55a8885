package redisstore

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpopkit/dpop/resource"
)

// memoryStore is the baseline the Redis store is measured against: the
// least an in-memory store does, a map under a mutex (emptied now and then
// so that a long run does not grow it without bound).
type memoryStore struct {
	mu sync.Mutex // guards m
	m  map[string]time.Time
}

func (s *memoryStore) Claim(ctx context.Context, jkt, jti string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k := jkt + jti
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || len(s.m) >= 1<<16 {
		s.m = make(map[string]time.Time, 1<<16)
	}
	if exp, ok := s.m[k]; ok && time.Now().Before(exp) {
		return resource.ErrReplayed
	}
	s.m[k] = until
	return nil
}

// benchProofs makes the (jkt, jti) pairs of the claims: 256 senders, and
// a jti of 43 characters that no other claim of the run has.
type benchProofs struct {
	jkts [256]string
	n    atomic.Uint64
}

func newBenchProofs(b *testing.B) *benchProofs {
	p := new(benchProofs)
	for i := range p.jkts {
		p.jkts[i] = randomString(b, 32)
	}
	return p
}

func (p *benchProofs) next(base string) (jkt, jti string) {
	n := p.n.Add(1)
	var buf [43]byte
	copy(buf[:], base)
	for i, m := len(buf)-1, n; i >= 23; i-- { // n in 20 digits
		buf[i] = byte('0' + m%10)
		m /= 10
	}
	return p.jkts[n%256], string(buf[:])
}

// baselineNs is the time per claim of the memory store in this run, for
// the Redis store's added-ns/op.
var baselineNs float64

// BenchmarkClaim measures one claim after another: the in-memory baseline,
// then the Redis store over loopback (with the latency it adds to the
// baseline's, and the round trips per claim a client hook counts).
//
//	scripts/with-redis.sh bash -c 'cd redisstore && go test -run ^$ -bench Claim -benchmem'
func BenchmarkClaim(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		benchClaims(b, &memoryStore{})
		baselineNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("redis", func(b *testing.B) {
		s, roundTrips := newBenchStore(b)
		benchClaims(b, s)
		b.ReportMetric(float64(roundTrips.Load())/float64(b.N), "roundtrips/op")
		if baselineNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)-baselineNs, "added-ns/op")
		}
	})
}

// BenchmarkClaimParallel measures claims from GOMAXPROCS goroutines at
// once (many requests on one instance).
func BenchmarkClaimParallel(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchClaimsParallel(b, &memoryStore{}) })
	b.Run("redis", func(b *testing.B) {
		s, roundTrips := newBenchStore(b)
		benchClaimsParallel(b, s)
		b.ReportMetric(float64(roundTrips.Load())/float64(b.N), "roundtrips/op")
	})
}

// newBenchStore returns a Store on the shared test Redis and the number
// of round trips its client makes from now on (commands and pipelines).
func newBenchStore(b *testing.B) (*Store, *atomic.Int64) {
	c := newClient(b, redisAddr(b), true)
	if err := c.Ping(context.Background()).Err(); err != nil { // the connection's setup, once
		b.Fatal(err)
	}
	var commands, pipelines atomic.Int64
	c.AddHook(countHook{&commands, &pipelines})
	b.Cleanup(func() {
		if n := pipelines.Load(); n > 0 {
			b.Logf("%d pipelines: connections set up during the run", n)
		}
	})
	// The pipelines are the setup of new connections (parallel runs): the
	// round trips that count are the claims' commands.
	return &Store{Client: c, Prefix: "dpop:bench:", Timeout: testTimeout}, &commands
}

func benchClaims(b *testing.B, s resource.ReplayStore) {
	p := newBenchProofs(b)
	base := randomString(b, 32)
	ctx := context.Background()
	until := time.Now().Add(5 * time.Second)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		jkt, jti := p.next(base)
		if err := s.Claim(ctx, jkt, jti, until); err != nil {
			b.Fatal(err)
		}
	}
}

func benchClaimsParallel(b *testing.B, s resource.ReplayStore) {
	p := newBenchProofs(b)
	base := randomString(b, 32)
	ctx := context.Background()
	until := time.Now().Add(5 * time.Second)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			jkt, jti := p.next(base)
			if err := s.Claim(ctx, jkt, jti, until); err != nil {
				b.Fatal(err)
			}
		}
	})
}
