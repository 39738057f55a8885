package keystore

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
)

// newFakeKeychain returns a Keychain over be (a fake), with its lock
// files in a temporary directory.
func newFakeKeychain(t *testing.T, be backend) *Keychain {
	t.Helper()
	return &Keychain{Service: "svc", Timeout: 200 * time.Millisecond, backend: be, lockDir: t.TempDir()}
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
		// The backend never answers: the call must end by its timeout (the
		// upper bound is loose, for a loaded machine; without the timeout
		// the call would never return).
		if elapsed < k.Timeout || elapsed > k.Timeout+10*time.Second {
			t.Errorf("%s took %v; want the %v timeout to end it", name, elapsed, k.Timeout)
		}
	}
	// The abandoned Create still holds the service's lock file: a Create
	// of another entry waits on it and times out too.
	if err := k.Create("c2", []byte("y")); !errors.Is(err, ErrKeychainUnavailable) || !strings.Contains(err.Error(), "lock file") {
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

// stallingBackend is a fakeBackend whose Set of one value waits for
// release, as a keychain stalled by an unlock prompt would; landed is
// closed once that Set has written.
type stallingBackend struct {
	*fakeBackend
	stall   string
	release chan struct{}
	landed  chan struct{}
}

func (b *stallingBackend) Set(service, user, password string) error {
	if password == b.stall {
		<-b.release
		defer close(b.landed)
	}
	return b.fakeBackend.Set(service, user, password)
}

// TestKeychainAbandonedPutOrder: a Put abandoned after its timeout must not
// land over a later Put (a rotated refresh token). The later Put waits for
// the abandoned one to finish, so the store ends with the later value.
func TestKeychainAbandonedPutOrder(t *testing.T) {
	be := &stallingBackend{
		fakeBackend: new(fakeBackend),
		stall:       base64.StdEncoding.EncodeToString([]byte("rt1")),
		release:     make(chan struct{}),
		landed:      make(chan struct{}),
	}
	k := newFakeKeychain(t, be)
	if err := k.Put("tok", []byte("rt1")); !errors.Is(err, ErrKeychainUnavailable) {
		t.Fatalf("Put(rt1) = %v; want ErrKeychainUnavailable (timeout)", err)
	}

	// A second Keychain value on the same service and backend: the order
	// holds across values, as TokenSource and other code may use several.
	k2 := &Keychain{Service: k.Service, Timeout: 5 * time.Second, backend: be, lockDir: k.lockDir}
	put2 := make(chan error, 1)
	go func() { put2 <- k2.Put("tok", []byte("rt2")) }()
	select {
	case err := <-put2:
		t.Errorf("Put(rt2) = %v before the abandoned Put(rt1) finished; want it to wait", err)
		put2 <- err
	case <-time.After(100 * time.Millisecond):
	}
	close(be.release)
	if err := <-put2; err != nil {
		t.Fatalf("Put(rt2) = %v; want nil", err)
	}
	select {
	case <-be.landed:
	default:
		t.Errorf("Put(rt2) returned before the abandoned Put(rt1) landed")
	}
	<-be.landed
	if got, err := k.Get("tok"); err != nil || string(got) != "rt2" {
		t.Errorf("Get = %q, %v; want %q (the abandoned rt1 must not overwrite it)", got, err, "rt2")
	}
}

// TestKeychainWaitForAbandonedWrite: a write that waits for an abandoned
// one longer than its own Timeout gives up with ErrKeychainUnavailable and
// writes nothing; Get does not wait.
func TestKeychainWaitForAbandonedWrite(t *testing.T) {
	be := &stallingBackend{
		fakeBackend: new(fakeBackend),
		stall:       base64.StdEncoding.EncodeToString([]byte("rt1")),
		release:     make(chan struct{}),
		landed:      make(chan struct{}),
	}
	k := newFakeKeychain(t, be)
	if err := k.Put("tok", []byte("rt1")); !errors.Is(err, ErrKeychainUnavailable) {
		t.Fatalf("Put(rt1) = %v; want ErrKeychainUnavailable (timeout)", err)
	}
	for name, call := range map[string]func() error{
		"Put":    func() error { return k.Put("tok", []byte("rt2")) },
		"Delete": func() error { return k.Delete("tok") },
		"Create": func() error { return k.Create("tok", []byte("rt2")) },
	} {
		if err := call(); !errors.Is(err, ErrKeychainUnavailable) || !strings.Contains(err.Error(), "earlier write") {
			t.Errorf("%s during the abandoned Put = %v; want ErrKeychainUnavailable about the earlier write", name, err)
		}
	}
	if _, err := k.Get("tok"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get during the abandoned Put = %v; want ErrNotFound", err)
	}
	// Other entries are not held up.
	if err := k.Put("other", []byte("x")); err != nil {
		t.Errorf("Put(other) = %v; want nil", err)
	}
	close(be.release)
	<-be.landed
	if err := k.Put("tok", []byte("rt2")); err != nil {
		t.Errorf("Put after the abandoned Put landed = %v; want nil", err)
	}
}

// racingBackend is a fakeBackend on which another writer, one that does not
// take Create's lock file, races a Create of the same entry: its Get also
// found nothing, and its Set lands right after the first Set.
type racingBackend struct {
	*fakeBackend
	other string // base64 value the other writer stores

	once sync.Once
}

func (b *racingBackend) Set(service, user, password string) error {
	err := b.fakeBackend.Set(service, user, password)
	b.once.Do(func() { b.fakeBackend.Set(service, user, b.other) })
	return err
}

// TestKeychainCreateReadBack: Create reads the entry back after its Set;
// if another writer's value is there, it returns ErrExist, and LoadOrCreate
// returns the other writer's key instead of one that is no longer stored.
func TestKeychainCreateReadBack(t *testing.T) {
	other, err := generateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := MarshalKey(other)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.StdEncoding.EncodeToString(der)

	k := newFakeKeychain(t, &racingBackend{fakeBackend: new(fakeBackend), other: enc})
	if err := k.Create("e", []byte("mine")); !errors.Is(err, ErrExist) {
		t.Errorf("Create overwritten by a racing writer = %v; want ErrExist", err)
	}

	k = newFakeKeychain(t, &racingBackend{fakeBackend: new(fakeBackend), other: enc})
	key, err := LoadOrCreate(k, "key", nil)
	if err != nil {
		t.Fatalf("LoadOrCreate = %v", err)
	}
	if got, want := publicDER(t, key), publicDER(t, other); !bytes.Equal(got, want) {
		t.Errorf("LoadOrCreate returned its own key; want the racing writer's, which is the one stored")
	}
}

// TestKeychainGetBound: an entry larger than any this package writes is
// refused, not decoded.
func TestKeychainGetBound(t *testing.T) {
	be := new(fakeBackend)
	k := newFakeKeychain(t, be)
	be.Set(k.Service, "big", strings.Repeat("A", 64<<10+4))
	got, err := k.Get("big")
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Name != "big" || tl.Limit != 64<<10 {
		t.Errorf("Get = %d bytes, %v; want a *TooLargeError naming big", len(got), err)
	}
}

// errBackend fails every call with err.
type errBackend struct{ err error }

func (b errBackend) Get(service, user string) (string, error) { return "", b.err }
func (b errBackend) Set(service, user, password string) error { return b.err }
func (b errBackend) Delete(service, user string) error        { return b.err }

// TestKeychainHostileError: the text of a keychain failure comes from
// outside (any process on the session bus can own the Secret Service's
// name): it reaches the error quoted and cut, and errors.Is still finds it.
func TestKeychainHostileError(t *testing.T) {
	cause := errors.New(hostile)
	k := newFakeKeychain(t, errBackend{cause})
	for name, call := range map[string]func() error{
		"Get":    func() error { _, err := k.Get("e"); return err },
		"Put":    func() error { return k.Put("e", []byte("x")) },
		"Create": func() error { return k.Create("e", []byte("x")) },
		"Delete": func() error { return k.Delete("e") },
	} {
		err := call()
		checkErrorText(t, name, err)
		if !errors.Is(err, cause) {
			t.Errorf("%s = %v; want it to wrap the keychain's error", name, err)
		}
	}
	for _, sentinel := range []error{keyring.ErrSetDataTooBig, keyring.ErrUnsupportedPlatform} {
		checkErrorText(t, "explain", k.explain("e", fmt.Errorf("%w: %s", sentinel, hostile)))
	}
}
