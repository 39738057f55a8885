//go:build linux

package keystore

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// TestKeychainAbsent: with DBUS_SESSION_BUS_ADDRESS pointing at a dead
// socket, a Keychain call fails fast with a clear error. It runs in a
// helper process, since godbus keeps one session bus per process.
func TestKeychainAbsent(t *testing.T) {
	dead := "unix:path=" + t.TempDir() + "/no-bus"
	cmd, out := startHelper(t, helperEnv+"=keychain-get", "DBUS_SESSION_BUS_ADDRESS="+dead)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	ms, rest, _ := strings.Cut(helperResult(out), "|")
	unavailable, msg, _ := strings.Cut(rest, "|")
	elapsed, _ := strconv.Atoi(ms)
	if unavailable != "true" || !strings.Contains(msg, "D-Bus session bus") || !strings.Contains(msg, "FileStore") {
		t.Errorf("Get with a dead bus = %s; want ErrKeychainUnavailable about the D-Bus session bus", msg)
	}
	if elapsed > 2000+10000 { // loose, for a loaded machine: unbounded would never return
		t.Errorf("Get with a dead bus took %dms; want the 2s timeout to end it", elapsed)
	}
	t.Logf("dead bus: %dms: %s", elapsed, msg)
}

const (
	secretsDest     = "org.freedesktop.secrets"
	secretsPath     = dbus.ObjectPath("/org/freedesktop/secrets")
	secretsService  = "org.freedesktop.Secret.Service"
	loginCollection = dbus.ObjectPath("/org/freedesktop/secrets/collection/login")
)

// TestKeychainLocked locks the login collection of the throwaway keyring
// with org.freedesktop.Secret.Service.Lock; every call must then fail with
// a clear error within the timeout, not hang. It unlocks the collection
// again with gnome-keyring's UnlockWithMasterPassword.
func TestKeychainLocked(t *testing.T) {
	k := newTestKeychain(t)
	if err := k.Create("before", []byte("x")); err != nil {
		t.Fatal(err)
	}
	password := os.Getenv("DPOP_KEYCHAIN_TEST_PASSWORD")
	if password == "" {
		t.Fatal("DPOP_KEYCHAIN_TEST_PASSWORD is not set: run under scripts/with-keychain.sh")
	}
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	svc := conn.Object(secretsDest, secretsPath)

	var locked []dbus.ObjectPath
	var prompt dbus.ObjectPath
	if err := svc.Call(secretsService+".Lock", 0, []dbus.ObjectPath{loginCollection}).Store(&locked, &prompt); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if len(locked) != 1 || prompt != "/" {
		t.Fatalf("Lock = %v, prompt %v; want the login collection locked without a prompt", locked, prompt)
	}
	t.Cleanup(func() { unlockCollection(t, conn, password) }) // runs before conn.Close

	k.Timeout = 2 * time.Second
	calls := map[string]func() error{
		"Get":    func() error { _, err := k.Get("before"); return err },
		"Create": func() error { return k.Create("new", []byte("x")) },
		"Put":    func() error { return k.Put("before", []byte("y")) },
		"Delete": func() error { return k.Delete("before") },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		elapsed := time.Since(start)
		if !errors.Is(err, ErrKeychainUnavailable) || !strings.Contains(err.Error(), "unlock") {
			t.Errorf("%s on a locked keychain = %v; want ErrKeychainUnavailable telling to unlock", name, err)
		}
		if elapsed > k.Timeout+500*time.Millisecond {
			t.Errorf("%s on a locked keychain took %v; want within %v", name, elapsed, k.Timeout)
		}
		t.Logf("%s locked: %v: %v", name, elapsed.Round(time.Millisecond), err)
	}
}

// unlockCollection unlocks the login collection with its password through
// gnome-keyring's org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface,
// which needs no prompt.
func unlockCollection(t *testing.T, conn *dbus.Conn, password string) {
	t.Helper()
	svc := conn.Object(secretsDest, secretsPath)
	var out dbus.Variant
	var session dbus.ObjectPath
	if err := svc.Call(secretsService+".OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&out, &session); err != nil {
		t.Fatalf("OpenSession: %v", err)
	}
	secret := struct {
		Session     dbus.ObjectPath
		Parameters  []byte
		Value       []byte
		ContentType string
	}{session, []byte{}, []byte(password), "text/plain"}
	err := svc.Call("org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface.UnlockWithMasterPassword", 0, loginCollection, secret).Err
	if err != nil {
		t.Fatalf("UnlockWithMasterPassword: %v", err)
	}
	k := &Keychain{Service: "dpop-keystore-probe", Timeout: 5 * time.Second}
	if _, err := k.Get("probe"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after unlocking, Get = %v; want ErrNotFound", err)
	}
}

// TestKeychainLockDirChecked: Create refuses a lock directory that others
// can write to, or that another user owns, rather than take a lock that
// may not exclude anything.
func TestKeychainLockDirChecked(t *testing.T) {
	be := new(fakeBackend)
	k := newFakeKeychain(t, be)
	if err := os.Chmod(k.lockDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := k.Create("e", []byte("x")); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("Create with a 0777 lock directory = %v; want an error about its mode", err)
	}
	if err := os.Chmod(k.lockDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() == 0 {
		// As root, give the directory to another user.
		if err := os.Chown(k.lockDir, 12345, 12345); err != nil {
			t.Fatal(err)
		}
		if err := k.Create("e", []byte("x")); err == nil || !strings.Contains(err.Error(), "owned by uid 12345") {
			t.Errorf("Create with another user's lock directory = %v; want an error about its owner", err)
		}
		if err := os.Chown(k.lockDir, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Below a directory that others can write to, the lock directory can
	// be renamed away and replaced.
	open := filepath.Dir(k.lockDir)
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := k.Create("e", []byte("x")); err == nil || !strings.Contains(err.Error(), open+" on the way") {
		t.Errorf("Create with a lock directory below a 0777 one = %v; want an error naming %s", err, open)
	}
	if err := os.Chmod(open, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(k.lockDir, link); err != nil {
		t.Fatal(err)
	}
	k.lockDir = link
	if err := k.Create("e", []byte("x")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Create with a symlinked lock directory = %v; want an error", err)
	}
	if len(be.m) != 0 {
		t.Errorf("backend holds %d entries; want none written", len(be.m))
	}
}

// TestDefaultLockDir: the lock directory depends on the user, not on the
// environment.
func TestDefaultLockDir(t *testing.T) {
	want, err := defaultLockDir()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(want, "dpop-keystore-"+strconv.Itoa(os.Getuid())) {
		t.Errorf("defaultLockDir = %q; want it to end in dpop-keystore-%d", want, os.Getuid())
	}
	for _, v := range []string{"HOME", "XDG_CACHE_HOME", "TMPDIR"} {
		t.Setenv(v, t.TempDir())
	}
	if got, err := defaultLockDir(); err != nil || got != want {
		t.Errorf("defaultLockDir with another HOME, XDG_CACHE_HOME and TMPDIR = %q, %v; want %q", got, err, want)
	}
}
