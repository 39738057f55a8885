package keystore

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/zalando/go-keyring"
)

// DefaultKeychainTimeout is the time a [Keychain] call waits for the OS
// keychain when [Keychain.Timeout] is zero.
const DefaultKeychainTimeout = 5 * time.Second

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
// it is a directory owned by the user, not writable by group or others, and
// trusted the way a [FileStore]'s Dir is (no other user can rename it or a
// directory above it), and refuses a lock file that is not a regular file
// (another local user who creates the directory first can make Create
// fail, but not break its exclusivity). On Windows it is under
// os.UserCacheDir, which is per user.
//
// As a last check, Create reads the entry back after its Set, and returns
// an error matching [ErrExist] if another writer's value is there, so that
// [LoadOrCreate] loads that value. This narrows, but cannot close, the race
// with a writer that bypasses the lock file: one whose Set lands after
// Create's read-back still overwrites the entry.
//
// Keychain is safe for concurrent use. Printing one, as a value or a
// pointer, with any verb of package fmt or any slog handler, shows its
// Service and Timeout only; so does encoding/json.
type Keychain struct {
	Service string
	Timeout time.Duration

	backend backend // nil means go-keyring; tests inject others
	lockDir string  // "" means defaultLockDir; tests use temporary ones
}

var (
	_ Store          = (*Keychain)(nil)
	_ slog.LogValuer = (*Keychain)(nil)
)

// Format implements [fmt.Formatter]: every verb prints Service and Timeout,
// and nothing of the backend, whose entries hold keys and tokens. Its
// receiver is a value, so that a Keychain value prints so too.
func (k Keychain) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "keystore.Keychain{Service: %q, Timeout: %v}", k.Service, k.Timeout)
}

// LogValue implements [slog.LogValuer]: a group holding Service and
// Timeout.
func (k *Keychain) LogValue() slog.Value {
	if k == nil {
		return slog.AnyValue(nil)
	}
	return slog.GroupValue(slog.String("service", k.Service), slog.Duration("timeout", k.Timeout))
}

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

// backendOrOS returns the injected backend, or go-keyring's OS keychain.
func (k *Keychain) backendOrOS() backend {
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
	if k == nil {
		return errors.New("keystore: the Keychain is nil")
	}
	if k.Service == "" {
		return errors.New("keystore: Keychain's Service is empty")
	}
	if len(k.Service) > 256 {
		return fmt.Errorf("keystore: Keychain's Service is %d bytes long; the limit is 256", len(k.Service))
	}
	return validateName(name)
}

// Get implements [Store]. Data that is not valid base64 is a
// [*CorruptError]; more than 64 KiB of it, a [*TooLargeError].
func (k *Keychain) Get(name string) ([]byte, error) {
	if err := k.check(name); err != nil {
		return nil, err
	}
	var s string
	err := k.run(name, time.Now().Add(k.timeout()), func() (err error) {
		s, err = k.backendOrOS().Get(k.Service, name)
		return err
	}, nil)
	if err != nil {
		return nil, err
	}
	if len(s) > maxKeychainEntry {
		return nil, &TooLargeError{Name: name, Size: len(s), Limit: maxKeychainEntry}
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
	return k.write(name, data, true, func(b backend, enc string) error {
		_, err := b.Get(k.Service, name)
		switch {
		case err == nil:
			return fmt.Errorf("%w: %q in keychain service %q", ErrExist, name, k.Service)
		case !errors.Is(err, keyring.ErrNotFound):
			return err
		}
		if err := b.Set(k.Service, name, enc); err != nil {
			return err
		}
		// A writer that does not take the lock file may have raced us
		// and Set after our Set: then its value is the one stored.
		got, err := b.Get(k.Service, name)
		switch {
		case errors.Is(err, keyring.ErrNotFound):
			return fmt.Errorf("%w: %q in keychain service %q vanished right after Create stored it: another process deleted it", errRaced, name, k.Service)
		case err != nil:
			return err
		case got != enc:
			return fmt.Errorf("%w: %q in keychain service %q was stored by another writer at the same time", ErrExist, name, k.Service)
		}
		return nil
	})
}

// Put implements [Store].
func (k *Keychain) Put(name string, data []byte) error {
	return k.write(name, data, false, func(b backend, enc string) error {
		return b.Set(k.Service, name, enc)
	})
}

// Delete implements [Store].
func (k *Keychain) Delete(name string) error {
	return k.write(name, nil, false, func(b backend, _ string) error {
		return b.Delete(k.Service, name)
	})
}

// write is every write to entry name: it checks name, encodes data (nil for
// Delete) and refuses it if too large, waits for the earlier writes of this
// process to the entry ([Keychain.lockEntry]), takes the Service's lock file
// too if exclusive (Create), and runs f with the encoded data on the
// backend, waiting for it until the timeout. The locks are released when f
// returns, not when write gives up waiting: a write that lands late must
// still be ordered, and a late Create exclusive.
func (k *Keychain) write(name string, data []byte, exclusive bool, f func(b backend, enc string) error) error {
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
	if exclusive {
		unlockEntry := unlock
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
		unlock = func() {
			unlockFile()
			unlockEntry()
		}
	}
	b := k.backendOrOS()
	return k.run(name, deadline, func() error { return f(b, enc) }, unlock)
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
