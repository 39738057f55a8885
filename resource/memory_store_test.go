package resource

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"
	"time"
)

// fakeStore is a MemoryStore on a clock the test moves.
func fakeStore(maxEntries, maxPerKey int) (*MemoryStore, *time.Time) {
	now := testNow
	return &MemoryStore{MaxEntries: maxEntries, MaxPerKey: maxPerKey, now: func() time.Time { return now }}, &now
}

func hashName() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestMemoryStoreQuota(t *testing.T) {
	s, now := fakeStore(8, 3)
	ctx := context.Background()
	greedy, other, first := hashName(), hashName(), hashName()
	until := now.Add(time.Minute)
	for i := range 3 {
		jti := hashName()
		if i == 0 {
			jti = first
		}
		if err := s.Claim(ctx, greedy, jti, until); err != nil {
			t.Fatalf("claim %d: %v", i, err)
		}
	}
	var full *StoreFullError
	if err := s.Claim(ctx, greedy, hashName(), until); !errors.As(err, &full) || !full.PerKey || full.Limit != 3 {
		t.Fatalf("claim over the key's quota = %v; want a per-key StoreFullError", err)
	}
	// The others are not affected.
	for i := range 3 {
		if err := s.Claim(ctx, other, hashName(), until); err != nil {
			t.Fatalf("another key's claim %d: %v", i, err)
		}
	}
	s.Claim(ctx, hashName(), hashName(), until)
	s.Claim(ctx, hashName(), hashName(), until)
	if err := s.Claim(ctx, hashName(), hashName(), until); !errors.As(err, &full) || full.PerKey || full.Limit != 8 {
		t.Fatalf("claim in a full store = %v; want a StoreFullError", err)
	}
	// A replay is still recognised when full.
	if err := s.Claim(ctx, greedy, first, until); !errors.Is(err, ErrReplayed) {
		t.Errorf("replay in a full store = %v; want ErrReplayed", err)
	}
	jti := hashName()
	*now = now.Add(time.Minute) // everything expires
	if err := s.Claim(ctx, greedy, jti, now.Add(time.Minute)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if len(s.seen) != 1 || len(s.perKey) != 1 || len(s.expiry) != 1 {
		t.Errorf("after expiry the store holds %d entries, %d keys, %d in the heap; want 1", len(s.seen), len(s.perKey), len(s.expiry))
	}
	if err := s.Claim(ctx, greedy, jti, now.Add(time.Minute)); !errors.Is(err, ErrReplayed) {
		t.Errorf("replay = %v; want ErrReplayed", err)
	}
}

func TestMemoryStoreExpiryOrder(t *testing.T) {
	s, now := fakeStore(0, 0)
	ctx := context.Background()
	jkt := hashName()
	var jtis []string
	for i := range 100 {
		jti := hashName()
		jtis = append(jtis, jti)
		// Untils out of order, as nonce and iat windows make them.
		if err := s.Claim(ctx, jkt, jti, now.Add(time.Duration((i*37)%100+1)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	for sec := 1; sec <= 100; sec++ {
		*now = testNow.Add(time.Duration(sec) * time.Second)
		s.sweep(now.UnixNano())
		if got, want := len(s.seen), 100-sec; got != want {
			t.Fatalf("at +%ds: %d entries; want %d", sec, got, want)
		}
	}
	if err := s.Claim(ctx, jkt, jtis[0], now.Add(time.Second)); err != nil {
		t.Errorf("claim of an expired proof: %v", err)
	}
}

func TestMemoryStoreShrinks(t *testing.T) {
	s, now := fakeStore(0, 0)
	ctx := context.Background()
	for range 5000 {
		s.Claim(ctx, hashName(), hashName(), now.Add(time.Second))
	}
	*now = now.Add(time.Hour)
	s.Claim(ctx, hashName(), hashName(), now.Add(-time.Second)) // expired: sweeps, records nothing
	if s.seen != nil || s.expiry != nil || s.peak != 0 {
		t.Errorf("after a burst expired: seen %d, heap cap %d, peak %d; want fresh maps", len(s.seen), cap(s.expiry), s.peak)
	}
}

func TestMemoryStoreCanceled(t *testing.T) {
	var s MemoryStore
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Claim(ctx, hashName(), hashName(), time.Now().Add(time.Minute)); !errors.Is(err, context.Canceled) {
		t.Errorf("Claim with a cancelled context = %v; want context.Canceled", err)
	}
}

func TestPrefix128(t *testing.T) {
	b := make([]byte, 32)
	rand.Read(b)
	s := base64.RawURLEncoding.EncodeToString(b)
	if got := prefix128(s); string(got[:]) != string(b[:16]) {
		t.Errorf("prefix128 = %x; want %x", got, b[:16])
	}
	sum := sha256.Sum256([]byte("not base64 of 32 bytes"))
	if got := prefix128("not base64 of 32 bytes"); string(got[:]) != string(sum[:16]) {
		t.Errorf("prefix128 of another string = %x; want its hash", got)
	}
	if n := testing.AllocsPerRun(100, func() { prefix128(s) }); n != 0 {
		t.Errorf("prefix128: %v allocations", n)
	}
}
