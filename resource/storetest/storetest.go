// Package storetest checks that an implementation of
// [resource.ReplayStore] keeps its contract (RFC 9449 §11.1): the
// conformance suite a store's author runs against their store, in the
// spirit of testing/fstest.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dpopkit/dpop/resource"
)

// TestReplayStore runs the conformance suite against the stores newStore
// makes, one for each subtest:
//
//   - a proof claimed once is refused with [resource.ErrReplayed] the
//     second time;
//   - the pair names a proof: the same jti under another key, and another
//     jti under the same key, are new proofs (one client cannot burn
//     another's jti);
//   - a record ends at its until time, and not before;
//   - of N concurrent claims of one proof, exactly one returns nil and the
//     others ErrReplayed;
//   - a claim with a cancelled context returns an error, never nil.
//
// The keys are random, so a store shared between runs (a Redis server)
// does not see them twice. The expiry subtest waits about half a second.
func TestReplayStore(t *testing.T, newStore func(t *testing.T) resource.ReplayStore) {
	t.Run("ClaimThenReplay", func(t *testing.T) { testReplay(t, newStore(t)) })
	t.Run("SenderScoped", func(t *testing.T) { testSenderScoped(t, newStore(t)) })
	t.Run("Expiry", func(t *testing.T) { testExpiry(t, newStore(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newStore(t)) })
	t.Run("CanceledContext", func(t *testing.T) { testCanceled(t, newStore(t)) })
}

// name returns a random value of the form the Verifier passes: the
// unpadded base64url of 32 bytes.
func name() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func claim(t *testing.T, s resource.ReplayStore, jkt, jti string, until time.Time) error {
	t.Helper()
	return s.Claim(context.Background(), jkt, jti, until)
}

func testReplay(t *testing.T, s resource.ReplayStore) {
	jkt, jti := name(), name()
	until := time.Now().Add(time.Minute)
	if err := claim(t, s, jkt, jti, until); err != nil {
		t.Fatalf("first Claim = %v; want nil", err)
	}
	for i := range 3 {
		if err := claim(t, s, jkt, jti, until); !errors.Is(err, resource.ErrReplayed) {
			t.Fatalf("Claim #%d of a claimed proof = %v; want ErrReplayed", i+2, err)
		}
	}
}

func testSenderScoped(t *testing.T, s resource.ReplayStore) {
	jkt, other, jti := name(), name(), name()
	until := time.Now().Add(time.Minute)
	if err := claim(t, s, jkt, jti, until); err != nil {
		t.Fatalf("Claim = %v; want nil", err)
	}
	if err := claim(t, s, other, jti, until); err != nil {
		t.Errorf("Claim of the same jti under another key = %v; want nil: one client burnt another's jti", err)
	}
	if err := claim(t, s, jkt, name(), until); err != nil {
		t.Errorf("Claim of another jti under the same key = %v; want nil", err)
	}
	if err := claim(t, s, other, jti, until); !errors.Is(err, resource.ErrReplayed) {
		t.Errorf("second Claim under the other key = %v; want ErrReplayed", err)
	}
}

func testExpiry(t *testing.T, s resource.ReplayStore) {
	jkt, jti := name(), name()
	until := time.Now().Add(300 * time.Millisecond)
	if err := claim(t, s, jkt, jti, until); err != nil {
		t.Fatalf("Claim = %v; want nil", err)
	}
	err := claim(t, s, jkt, jti, until)
	if time.Now().Before(until) && !errors.Is(err, resource.ErrReplayed) {
		t.Fatalf("Claim before until = %v; want ErrReplayed", err)
	}
	// Poll: the record must go once until has passed, and not before.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := claim(t, s, jkt, jti, until.Add(time.Minute))
		if err == nil {
			// Only a claim that was answered before until proves the
			// record gone early: one sent before it may be run after.
			if time.Now().Before(until) {
				t.Fatal("Claim succeeded again before the record's until time")
			}
			break
		}
		if !errors.Is(err, resource.ErrReplayed) {
			t.Fatalf("Claim = %v; want nil or ErrReplayed", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("record still there %v after its until time", time.Since(until).Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A record far in the future stays.
	jti = name()
	if err := claim(t, s, jkt, jti, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := claim(t, s, jkt, jti, time.Now().Add(time.Hour)); !errors.Is(err, resource.ErrReplayed) {
		t.Errorf("Claim of a record with an hour left = %v; want ErrReplayed", err)
	}
}

func testConcurrent(t *testing.T, s resource.ReplayStore) {
	const rounds, n = 20, 32
	for range rounds {
		jkt, jti := name(), name()
		until := time.Now().Add(time.Minute)
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = s.Claim(context.Background(), jkt, jti, until)
			}()
		}
		close(start)
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, resource.ErrReplayed):
				t.Fatalf("concurrent Claim = %v; want nil or ErrReplayed", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d of %d concurrent claims of one proof returned nil; want exactly 1", wins, n)
		}
	}
}

func testCanceled(t *testing.T, s resource.ReplayStore) {
	jkt, jti := name(), name()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, ctx := range []context.Context{canceled, expired} {
		err := s.Claim(ctx, jkt, jti, time.Now().Add(time.Minute))
		if err == nil || errors.Is(err, resource.ErrReplayed) {
			t.Errorf("Claim with an ended context = %v; want its error", err)
		} else if !errors.Is(err, ctx.Err()) {
			t.Errorf("Claim with an ended context = %v; want it to wrap %v", err, ctx.Err())
		}
	}
	if err := s.Claim(context.Background(), jkt, jti, time.Now().Add(time.Minute)); err != nil {
		t.Errorf("Claim after the ended ones = %v; want nil (they recorded nothing)", err)
	}
}
