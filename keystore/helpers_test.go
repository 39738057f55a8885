package keystore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
)

// requireKeychain skips the test unless it runs under
// scripts/with-keychain.sh (DPOP_KEYCHAIN_TEST=1), whose throwaway Secret
// Service it may lock and fill; with DPOP_FULL_TEST=1 a missing keychain
// fails the test instead. The tests never touch a developer's own keychain.
func requireKeychain(t *testing.T) {
	t.Helper()
	const msg = "keystore: no Secret Service; run: scripts/with-keychain.sh go test ./keystore/"
	if os.Getenv("DPOP_KEYCHAIN_TEST") != "1" {
		if os.Getenv("DPOP_FULL_TEST") == "1" {
			t.Fatal(msg + " (DPOP_FULL_TEST=1 requires the keychain tests)")
		}
		t.Skip(msg)
	}
	k := &Keychain{Service: "dpop-keystore-probe", Timeout: 10 * time.Second}
	if _, err := k.Get("probe"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DPOP_KEYCHAIN_TEST=1 but the keychain does not work: Get = %v; want ErrNotFound", err)
	}
}

// randomSuffix returns a short random hex string for unique names.
func randomSuffix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newTestKeychain returns a Keychain on the real OS keychain under a fresh
// service whose entries are removed when the test ends.
func newTestKeychain(t *testing.T) *Keychain {
	t.Helper()
	requireKeychain(t)
	k := &Keychain{Service: "dpop-keystore-test-" + randomSuffix(t), Timeout: 10 * time.Second}
	t.Cleanup(func() {
		if err := keyring.DeleteAll(k.Service); err != nil {
			t.Logf("cleanup: DeleteAll(%q): %v", k.Service, err)
		}
	})
	return k
}

// newTestFileStore returns a FileStore in a fresh temporary directory.
func newTestFileStore(t *testing.T) *FileStore {
	t.Helper()
	return &FileStore{Dir: t.TempDir() + "/store"}
}

// testStores returns a constructor for each Store implementation; the
// keychain's skips (or fails) as requireKeychain says.
func testStores() []struct {
	name string
	new  func(t *testing.T) Store
} {
	return []struct {
		name string
		new  func(t *testing.T) Store
	}{
		{"memory", func(t *testing.T) Store { return new(MemoryStore) }},
		{"file", func(t *testing.T) Store { return newTestFileStore(t) }},
		{"keychain", func(t *testing.T) Store { return newTestKeychain(t) }},
	}
}

// fakeBackend is an in-memory keychain backend for Keychain's own logic
// (timeouts, sizes, error mapping). block, when not nil, stalls every call
// until it is closed.
type fakeBackend struct {
	block chan struct{}

	mu sync.Mutex // guards m
	m  map[string]string
}

func (f *fakeBackend) wait() {
	if f.block != nil {
		<-f.block
	}
}

func (f *fakeBackend) Get(service, user string) (string, error) {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.m[service+"\x00"+user]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (f *fakeBackend) Set(service, user, password string) error {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = make(map[string]string)
	}
	f.m[service+"\x00"+user] = password
	return nil
}

func (f *fakeBackend) Delete(service, user string) error {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[service+"\x00"+user]; !ok {
		return keyring.ErrNotFound
	}
	delete(f.m, service+"\x00"+user)
	return nil
}
