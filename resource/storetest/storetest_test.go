package storetest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/dpopkit/dpop/resource"
	"github.com/dpopkit/dpop/resource/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.TestReplayStore(t, func(*testing.T) resource.ReplayStore { return &resource.MemoryStore{} })
}

// brokenStore breaks one rule of the contract.
type brokenStore struct {
	kind string
	mu   sync.Mutex // guards seen
	seen map[string]time.Time
}

func (s *brokenStore) Claim(ctx context.Context, jkt, jti string, until time.Time) error {
	if s.kind != "nil-on-cancel" {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	key := jkt + " " + jti
	switch s.kind {
	case "jti-only":
		key = jti
	case "never-expires":
		until = until.Add(time.Hour)
	}
	s.mu.Lock()
	e, ok := s.seen[key]
	if s.kind == "check-then-set" {
		s.mu.Unlock()
		runtime.Gosched()
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	if ok && time.Now().Before(e) {
		return resource.ErrReplayed
	}
	if s.seen == nil {
		s.seen = map[string]time.Time{}
	}
	s.seen[key] = until
	return nil
}

// TestBrokenStoreHelper runs the suite against a broken store when
// started by TestSuiteCatchesBrokenStores.
func TestBrokenStoreHelper(t *testing.T) {
	kind := os.Getenv("STORETEST_BROKEN")
	if kind == "" {
		t.Skip("run by TestSuiteCatchesBrokenStores")
	}
	storetest.TestReplayStore(t, func(*testing.T) resource.ReplayStore { return &brokenStore{kind: kind} })
}

// TestSuiteCatchesBrokenStores checks that the suite fails each store that
// breaks a rule, and passes the store that breaks none.
func TestSuiteCatchesBrokenStores(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the test binary once per store")
	}
	for _, kind := range []string{"none", "jti-only", "check-then-set", "never-expires", "nil-on-cancel"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStoreHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), "STORETEST_BROKEN="+kind)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		failed := errors.As(err, &exit)
		if err != nil && !failed {
			t.Fatalf("%s: %v", kind, err)
		}
		if want := kind != "none"; failed != want {
			t.Errorf("suite against the %s store: failed = %v; want %v\n%s", kind, failed, want, out)
		}
	}
}
