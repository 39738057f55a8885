package keystore

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
)

// newFakeKeychain returns a Keychain over a fakeBackend, with its lock
// files in a temporary cache directory.
func newFakeKeychain(t *testing.T, be *fakeBackend) *Keychain {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	return &Keychain{Service: "svc", Timeout: 200 * time.Millisecond, backend: be}
}

func TestKeychainFakeRoundTrip(t *testing.T) {
	be := new(fakeBackend)
	k := newFakeKeychain(t, be)
	data := []byte{0, 1, 2, 0xff}
	if err := k.Create("e", data); err != nil {
		t.Fatal(err)
	}
	if got, want := be.m["svc\x00e"], base64.StdEncoding.EncodeToString(data); got != want {
		t.Errorf("stored %q; want base64 %q", got, want)
	}
	if err := k.Create("e", []byte("x")); !errors.Is(err, ErrExist) {
		t.Errorf("Create(existing) = %v; want ErrExist", err)
	}
	if got, err := k.Get("e"); err != nil || string(got) != string(data) {
		t.Errorf("Get = %q, %v; want %q", got, err, data)
	}
	if _, err := k.Get("none"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(none) = %v; want ErrNotFound", err)
	}
	if err := k.Delete("none"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete(none) = %v; want ErrNotFound", err)
	}
}

func TestKeychainEmptyService(t *testing.T) {
	k := &Keychain{backend: new(fakeBackend)}
	if _, err := k.Get("e"); err == nil || !strings.Contains(err.Error(), "Service is empty") {
		t.Errorf("Get = %v; want an error about the empty Service", err)
	}
}

func TestKeychainCorruptBase64(t *testing.T) {
	be := &fakeBackend{m: map[string]string{"svc\x00e": "not base64!"}}
	k := newFakeKeychain(t, be)
	_, err := k.Get("e")
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Name != "e" {
		t.Errorf("Get = %v; want *CorruptError naming %q", err, "e")
	}
}

// TestKeychainTimeout checks that a keychain that never answers (as one
// waiting for an unlock prompt) gives a clear error after Timeout, for every
// method, and that a Create abandoned mid-way keeps its lock until the
// backend returns.
func TestKeychainTimeout(t *testing.T) {
	be := &fakeBackend{block: make(chan struct{})}
	k := newFakeKeychain(t, be)
	calls := map[string]func() error{
		"Get":    func() error { _, err := k.Get("g"); return err },
		"Create": func() error { return k.Create("c", []byte("x")) },
		"Put":    func() error { return k.Put("p", []byte("x")) },
		"Delete": func() error { return k.Delete("d") },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		elapsed := time.Since(start)
		if !errors.Is(err, ErrKeychainUnavailable) || !strings.Contains(err.Error(), "did not answer within 200ms") {
			t.Errorf("%s = %v; want ErrKeychainUnavailable saying it did not answer", name, err)
		}
		if elapsed < k.Timeout || elapsed > k.Timeout+time.Second {
			t.Errorf("%s took %v; want about %v", name, elapsed, k.Timeout)
		}
	}
	// The abandoned Create still holds the lock: a second Create waits on
	// it and times out too.
	if err := k.Create("c", []byte("y")); !errors.Is(err, ErrKeychainUnavailable) || !strings.Contains(err.Error(), "lock file") {
		t.Errorf("Create while abandoned Create holds the lock = %v; want a lock timeout", err)
	}
	close(be.block)
	// Once the backend answers, the abandoned Create finishes and releases
	// its lock.
	k.Timeout = 5 * time.Second
	if err := k.Create("c", []byte("z")); !errors.Is(err, ErrExist) {
		t.Errorf("Create after unblock = %v; want ErrExist (the abandoned Create stored first)", err)
	}
	if got, err := k.Get("c"); err != nil || string(got) != "x" {
		t.Errorf("Get = %q, %v; want %q from the abandoned Create", got, err, "x")
	}
}

func TestKeychainSize(t *testing.T) {
	tests := []struct {
		goos, service, name string
		n, size, limit      int
	}{
		{"windows", "svc", "e", 2560, 2560, 2560},
		{"windows", "svc", "e", 2561, 2561, 2560},
		{"linux", "svc", "e", 1000, 1000, 64 << 10},
		// security(1) line: len("add-generic-password -U -s  -a  -w go-keyring-base64:\n") = 54,
		// plus service, name and the base64 of 300 bytes of base64 (400).
		{"darwin", "svc", "e", 300, 54 + 3 + 1 + 400, 4096},
		{"darwin", "my app", "e", 300, 54 + 8 + 1 + 400, 4096},
		{"darwin", "it's", "e", 300, 54 + 4 + 2 + 4 + 1 + 400, 4096},
	}
	for _, tc := range tests {
		size, limit := keychainSize(tc.goos, tc.service, tc.name, tc.n)
		if size != tc.size || limit != tc.limit {
			t.Errorf("keychainSize(%q, %q, %q, %d) = %d, %d; want %d, %d", tc.goos, tc.service, tc.name, tc.n, size, limit, tc.size, tc.limit)
		}
	}
}

func TestKeychainTooLarge(t *testing.T) {
	be := new(fakeBackend)
	k := newFakeKeychain(t, be)
	_, limit := keychainSize("linux", k.Service, "e", 0)
	data := make([]byte, limit) // its base64 is larger than limit on every OS
	for _, call := range []func() error{
		func() error { return k.Create("e", data) },
		func() error { return k.Put("e", data) },
	} {
		err := call()
		var tl *TooLargeError
		if !errors.As(err, &tl) || tl.Name != "e" || tl.Size <= tl.Limit {
			t.Errorf("= %v; want *TooLargeError for %q", err, "e")
		}
	}
	if len(be.m) != 0 {
		t.Errorf("backend holds %d entries; want none written", len(be.m))
	}
}

func TestKeychainErrorMapping(t *testing.T) {
	k := &Keychain{Service: "svc"}
	tests := []struct {
		in   error
		want error
	}{
		{keyring.ErrNotFound, ErrNotFound},
		{keyring.ErrUnsupportedPlatform, ErrUnsupportedPlatform},
		{keyring.ErrSetDataTooBig, keyring.ErrSetDataTooBig},
	}
	for _, tc := range tests {
		if got := k.explain("e", tc.in); !errors.Is(got, tc.want) || !strings.HasPrefix(got.Error(), "keystore: ") {
			t.Errorf("explain(%v) = %v; want it to match %v", tc.in, got, tc.want)
		}
	}
}

// TestKeychainReal runs the real OS keychain through details the Store
// contract test does not: entries written by others that are not base64.
func TestKeychainReal(t *testing.T) {
	k := newTestKeychain(t)
	if err := keyring.Set(k.Service, "foreign", "not base64!"); err != nil {
		t.Fatal(err)
	}
	_, err := k.Get("foreign")
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Name != "foreign" {
		t.Errorf("Get = %v; want *CorruptError naming %q", err, "foreign")
	}
	if got, err := keyring.Get(k.Service, "foreign"); err != nil || got != "not base64!" {
		t.Errorf("the corrupt entry changed: %q, %v", got, err)
	}
}
