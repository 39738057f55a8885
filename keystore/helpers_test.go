package keystore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

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

// hostile is text a stored entry or a keychain daemon could hold: long,
// with terminal escapes, newlines and a bidi override.
var hostile = strings.Repeat("\x1b[31mX\u202e\n\r\x00", 8<<10)

// checkErrorText fails unless err is an error whose text a log can take:
// short, valid UTF-8, without control or format (bidi) characters.
func checkErrorText(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s = nil error; want one", what)
		return
	}
	msg := err.Error()
	if len(msg) > 2048 {
		t.Errorf("%s error is %d bytes long; want it cut: %.200q…", what, len(msg), msg)
	}
	if i := strings.IndexFunc(msg, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }); i >= 0 || !utf8.ValidString(msg) {
		t.Errorf("%s error holds a control or format character (at %d) or bad UTF-8: %.200q", what, i, msg)
	}
}

// noPanic calls f and fails the test, instead of crashing it, if f panics.
func noPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s panicked: %v", what, r)
		}
	}()
	f()
}
