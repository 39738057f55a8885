package keystore

import (
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/zalando/go-keyring"
)

// DefaultKeychainTimeout is the time a [Keychain] call waits for the OS
// keychain when [Keychain.Timeout] is zero.
const DefaultKeychainTimeout = 5 * time.Second

// ErrKeychainUnavailable means that the OS keychain could not be used: there
// is none (no Secret Service on the D-Bus session bus, no session bus), it
// is locked, or it did not answer within [Keychain.Timeout]. The error's text
// says which and what to do. This package never falls back to another store
// by itself; an application that wants to can test for this error.
var ErrKeychainUnavailable = errors.New("keystore: keychain unavailable")

// errRaced means that another process deleted an entry while Create was
// storing it.
var errRaced = errors.New("keystore: concurrent write")

// Keychain is a [Store] in the OS keychain, through go-keyring: the Secret
// Service (gnome-keyring, KWallet, KeePassXC) over D-Bus on Linux and the
// BSDs, the login Keychain on macOS, the Credential Manager on Windows.
// Entries are generic passwords under Service (the account or user is the
// entry name) holding the data base64-encoded, since keychains hold strings.
//
// Service is required: a name of the application such as
// "com.example.mycli". Timeout bounds every call; zero means
// [DefaultKeychainTimeout]. A keychain can wait forever for a user to
// unlock it, so each call runs in a goroutine of its own and is abandoned
// after Timeout with an error matching [ErrKeychainUnavailable]; the
// abandoned goroutine ends when the keychain answers.
//
// An abandoned write still lands when the keychain answers, so the writes
// to an entry (Put, Create, Delete) are serialized within the process,
// across Keychain values of one Service: a write first waits, within its
// own Timeout, until the earlier writes to the entry have finished, even
// abandoned ones, and fails with an error matching [ErrKeychainUnavailable]
// if they have not. So a write that returned nil is never overwritten by an
// earlier write of this process, such as a token save that timed out. Get
// does not wait. Puts from different processes are not ordered.
//
// Data larger than the backend holds is refused before writing with a
// [*TooLargeError]: 2560 bytes of base64 on Windows (1920 bytes of data),
// about 3000 on macOS, 64 KiB elsewhere.
//
// The keychain has no atomic create, so [Keychain.Create] holds a lock file
// (flock, or LockFileEx on Windows) across its Get and Set; every process
// that creates entries in a Service must go through this package for
// Create to be exclusive. The lock file is in one directory per user that
// does not depend on the environment, so that processes with different
// HOME, XDG_CACHE_HOME or TMPDIR take the same lock: /tmp/dpop-keystore-UID
// on unix, created with mode 0700; Create refuses it with an error unless
// it is a directory owned by the user and not writable by group or others
// (another local user who creates it first can make Create fail, but not
// break its exclusivity). On Windows it is under os.UserCacheDir, which is
// per user.
//
// As a last check, Create reads the entry back after its Set, and returns
// an error matching [ErrExist] if another writer's value is there, so that
// [LoadOrCreate] loads that value. This narrows, but cannot close, the race
// with a writer that bypasses the lock file: one whose Set lands after
// Create's read-back still overwrites the entry.
//
// Keychain is safe for concurrent use.
type Keychain struct {
	Service string
	Timeout time.Duration

	backend backend // nil means go-keyring; tests inject others
	lockDir string  // "" means defaultLockDir; tests use temporary ones
}

var _ Store = (*Keychain)(nil)

// backend is the part of go-keyring's Keyring that Keychain uses.
// Implementations must be comparable: they key the write locks.
type backend interface {
	Get(service, user string) (string, error)
	Set(service, user, password string) error
	Delete(service, user string) error
}

// goKeyring calls go-keyring's package functions (the OS provider).
type goKeyring struct{}

func (goKeyring) Get(service, user string) (string, error) { return keyring.Get(service, user) }
func (goKeyring) Set(service, user, password string) error {
	return keyring.Set(service, user, password)
}
func (goKeyring) Delete(service, user string) error { return keyring.Delete(service, user) }

func (k *Keychain) be() backend {
	if k.backend != nil {
		return k.backend
	}
	return goKeyring{}
}

func (k *Keychain) timeout() time.Duration {
	if k.Timeout > 0 {
		return k.Timeout
	}
	return DefaultKeychainTimeout
}

func (k *Keychain) check(name string) error {
	if k.Service == "" {
		return errors.New("keystore: Keychain's Service is empty")
	}
	if len(k.Service) > 256 {
		return fmt.Errorf("keystore: Keychain's Service is %d bytes long; the limit is 256", len(k.Service))
	}
	return validateName(name)
}

// Get implements [Store]. Data that is not valid base64 is a
// [*CorruptError].
func (k *Keychain) Get(name string) ([]byte, error) {
	if err := k.check(name); err != nil {
		return nil, err
	}
	var s string
	err := k.run(name, time.Now().Add(k.timeout()), func() (err error) {
		s, err = k.be().Get(k.Service, name)
		return err
	}, nil)
	if err != nil {
		return nil, err
	}
	data, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, &CorruptError{Name: name, Err: fmt.Errorf("keychain data is not base64: %w", err)}
	}
	return data, nil
}

// Create implements [Store]. It takes the lock file, then Gets and Sets only
// when the entry is not found, then Gets again: if another writer's value
// is stored by then, it returns an error matching [ErrExist].
func (k *Keychain) Create(name string, data []byte) error {
	if err := k.check(name); err != nil {
		return err
	}
	enc, err := k.encode(name, data)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(k.timeout())
	unlockEntry, err := k.lockEntry(name, deadline)
	if err != nil {
		return err
	}
	lp, err := lockPath(k.Service, k.lockDir)
	if err != nil {
		unlockEntry()
		return err
	}
	unlockFile, err := acquireLock(lp, deadline)
	if err != nil {
		unlockEntry()
		return err
	}
	// The locks are released when the backend calls return, not when
	// Create gives up waiting: a Set that completes late must still be
	// exclusive.
	return k.run(name, deadline, func() error {
		_, err := k.be().Get(k.Service, name)
		switch {
		case err == nil:
			return fmt.Errorf("%w: %q in keychain service %q", ErrExist, name, k.Service)
		case !errors.Is(err, keyring.ErrNotFound):
			return err
		}
		if err := k.be().Set(k.Service, name, enc); err != nil {
			return err
		}
		// A writer that does not take the lock file may have raced us
		// and Set after our Set: then its value is the one stored.
		got, err := k.be().Get(k.Service, name)
		switch {
		case errors.Is(err, keyring.ErrNotFound):
			return fmt.Errorf("%w: %q in keychain service %q vanished right after Create stored it: another process deleted it", errRaced, name, k.Service)
		case err != nil:
			return err
		case got != enc:
			return fmt.Errorf("%w: %q in keychain service %q was stored by another writer at the same time", ErrExist, name, k.Service)
		}
		return nil
	}, func() {
		unlockFile()
		unlockEntry()
	})
}

// Put implements [Store].
func (k *Keychain) Put(name string, data []byte) error {
	if err := k.check(name); err != nil {
		return err
	}
	enc, err := k.encode(name, data)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(k.timeout())
	unlock, err := k.lockEntry(name, deadline)
	if err != nil {
		return err
	}
	return k.run(name, deadline, func() error {
		return k.be().Set(k.Service, name, enc)
	}, unlock)
}

// Delete implements [Store].
func (k *Keychain) Delete(name string) error {
	if err := k.check(name); err != nil {
		return err
	}
	deadline := time.Now().Add(k.timeout())
	unlock, err := k.lockEntry(name, deadline)
	if err != nil {
		return err
	}
	return k.run(name, deadline, func() error {
		return k.be().Delete(k.Service, name)
	}, unlock)
}

// entryKey names one entry of one backend.
type entryKey struct {
	be            backend
	service, name string
}

// writeLocks orders the writes to each keychain entry within the process;
// see [Keychain.lockEntry].
var writeLocks struct {
	mu sync.Mutex // guards m and every refs
	m  map[entryKey]*writeLock
}

// writeLock is held by the write to one entry that runs now.
type writeLock struct {
	held chan struct{} // full while a write runs; waiters queue to send
	refs int           // writes holding or waiting for the lock
}

// lockEntry waits, until deadline at most, for the earlier writes to entry
// name to finish, and returns the function that lets the next one go. The
// caller must call it when its own backend call returns, not when it gives
// up waiting for it. Waiters are let go in the order they came (a channel's
// send queue is FIFO).
func (k *Keychain) lockEntry(name string, deadline time.Time) (unlock func(), err error) {
	key := entryKey{k.be(), k.Service, name}
	writeLocks.mu.Lock()
	l := writeLocks.m[key]
	if l == nil {
		if writeLocks.m == nil {
			writeLocks.m = make(map[entryKey]*writeLock)
		}
		l = &writeLock{held: make(chan struct{}, 1)}
		writeLocks.m[key] = l
	}
	l.refs++
	writeLocks.mu.Unlock()
	drop := func() {
		writeLocks.mu.Lock()
		defer writeLocks.mu.Unlock()
		if l.refs--; l.refs == 0 {
			delete(writeLocks.m, key)
		}
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case l.held <- struct{}{}:
		return func() {
			<-l.held
			drop()
		}, nil
	case <-t.C:
		drop()
		return nil, fmt.Errorf("%w: an earlier write to entry %q (service %q) that the keychain has not answered is still pending after %v: "+
			"is the keychain locked? unlock it (log in to the desktop session, or run gnome-keyring-daemon --unlock), raise Keychain.Timeout, or use a FileStore",
			ErrKeychainUnavailable, name, k.Service, k.timeout())
	}
}

// encode base64-encodes data and refuses it if the backend cannot hold it.
func (k *Keychain) encode(name string, data []byte) (string, error) {
	enc := base64.StdEncoding.EncodeToString(data)
	size, limit := keychainSize(runtime.GOOS, k.Service, name, len(enc))
	if size > limit {
		return "", &TooLargeError{Name: name, Size: size, Limit: limit}
	}
	return enc, nil
}

// keychainSize returns what go-keyring's backend on goos counts for an entry
// whose base64 data is n bytes long, and the most it accepts.
func keychainSize(goos, service, name string, n int) (size, limit int) {
	switch goos {
	case "windows":
		// keyring_windows.go: len(password) > 2560 → ErrSetDataTooBig.
		return n, 2560
	case "darwin", "ios":
		// keyring_darwin.go base64-encodes again behind a prefix and
		// refuses a security(1) command line longer than 4096 bytes:
		// add-generic-password -U -s SERVICE -a NAME -w go-keyring-base64:B64\n
		// Names and base64 need no shell quoting; SERVICE may (2 quotes,
		// plus 4 bytes per embedded quote).
		svc := len(service)
		if strings.ContainsFunc(service, func(r rune) bool { return !isShellSafe(r) }) {
			svc += 2 + 4*strings.Count(service, "'")
		}
		size = len("add-generic-password -U -s  -a  -w go-keyring-base64:\n") + svc + len(name) + base64.StdEncoding.EncodedLen(n)
		return size, 4096
	default:
		// The Secret Service has no hard limit; go-keyring notes that
		// values beyond 100 KiB are slow. Keys and tokens are far smaller.
		return n, 64 << 10
	}
}

// isShellSafe reports whether shellescape.Quote leaves r unquoted.
func isShellSafe(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("_@%+=:,./-", r)
}

// run calls f in a goroutine of its own and waits for it until deadline.
// done, if not nil, runs after f returns, even if run gave up waiting.
func (k *Keychain) run(name string, deadline time.Time, f func() error, done func()) error {
	ch := make(chan error, 1)
	go func() {
		if done != nil {
			defer done()
		}
		ch <- f()
	}()
	wait := time.Until(deadline)
	if wait < 0 {
		wait = 0
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-ch:
		return k.explain(name, err)
	case <-t.C:
		return fmt.Errorf("%w: the keychain did not answer within %v (entry %q, service %q): is it locked? "+
			"unlock it (log in to the desktop session, or run gnome-keyring-daemon --unlock), raise Keychain.Timeout, or use a FileStore",
			ErrKeychainUnavailable, k.timeout(), name, k.Service)
	}
}

// explain maps go-keyring's errors onto this package's.
func (k *Keychain) explain(name string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrExist), errors.Is(err, errRaced):
		return err
	case errors.Is(err, keyring.ErrNotFound):
		return fmt.Errorf("%w: %q in keychain service %q", ErrNotFound, name, k.Service)
	case errors.Is(err, keyring.ErrSetDataTooBig):
		return fmt.Errorf("keystore: the keychain refused entry %q as too large (use a FileStore): %w", name, err)
	case errors.Is(err, keyring.ErrUnsupportedPlatform):
		return fmt.Errorf("%w: no keychain support in go-keyring: use a FileStore: %w", ErrUnsupportedPlatform, err)
	}
	return explainPlatform(name, err)
}
