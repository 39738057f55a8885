package keystore

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// otherUID owns the files that belong to someone else: nobody.
const otherUID = 65534

// chownToOther gives path to another user, or skips the test when this
// process cannot (only root can chown).
func chownToOther(t *testing.T, path string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("file owners are not checked on Windows")
	}
	if os.Geteuid() != 0 {
		t.Skip("keystore: needs root to chown a file to another uid; run as root (e.g. in a container) to test foreign owners")
	}
	if err := os.Chown(path, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
}

// TestFileStoreRefusesForeignDir: a Dir owned by another user could have
// its entries replaced by that user, so no call trusts it.
func TestFileStoreRefusesForeignDir(t *testing.T) {
	s := newTestFileStore(t)
	if err := s.Put("tok", []byte("t")); err != nil {
		t.Fatal(err)
	}
	chownToOther(t, s.Dir)
	for name, call := range map[string]func() error{
		"Get":    func() error { _, err := s.Get("tok"); return err },
		"Put":    func() error { return s.Put("tok", []byte("u")) },
		"Create": func() error { return s.Create("key", []byte("k")) },
		"Delete": func() error { return s.Delete("tok") },
	} {
		err := call()
		if err == nil || !strings.Contains(err.Error(), s.Dir) || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Errorf("%s in a directory owned by uid %d = %v; want an error naming the directory and its owner", name, otherUID, err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(s.Dir, "tok")); err != nil || string(got) != "t" {
		t.Errorf("entry = %q, %v; want it untouched", got, err)
	}
}

// TestFileStoreRefusesForeignEntry: an entry file owned by another user is
// not read.
func TestFileStoreRefusesForeignEntry(t *testing.T) {
	s := newTestFileStore(t)
	if err := s.Put("tok", []byte("t")); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.Dir, "tok")
	chownToOther(t, p)
	if got, err := s.Get("tok"); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("Get = %q, %v; want an error naming %s and its owner", got, err, p)
	}
}

// TestFileStoreRefusesOpenEntry: as ssh refuses a private key that others
// can read or change, Get refuses an entry with group or other bits.
func TestFileStoreRefusesOpenEntry(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("permission bits are not used on Windows")
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o620, 0o602, 0o660, 0o644, 0o666, 0o601} {
		t.Run(mode.String(), func(t *testing.T) {
			s := newTestFileStore(t)
			if err := s.Create("key", []byte("k")); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(s.Dir, "key")
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get("key")
			if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), mode.String()) {
				t.Errorf("Get of a %v entry = %q, %v; want an error naming %s and its mode", mode, got, err, p)
			}
			if _, err := LoadOrCreate(s, "key", nil); err == nil {
				t.Error("LoadOrCreate of an open key = nil error; want the refusal")
			}
		})
	}
}

// TestFileStoreSizeBound: Get reads at most the bound, and names an entry
// that is larger; Put and Create refuse data that Get could not read back.
func TestFileStoreSizeBound(t *testing.T) {
	const bound = 64 << 10
	s := newTestFileStore(t)
	if err := s.Put("ok", make([]byte, bound)); err != nil {
		t.Fatalf("Put of %d bytes = %v", bound, err)
	}
	if got, err := s.Get("ok"); err != nil || len(got) != bound {
		t.Errorf("Get = %d bytes, %v; want %d", len(got), err, bound)
	}
	p := filepath.Join(s.Dir, "big")
	if err := os.WriteFile(p, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("big")
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Name != "big" || tl.Limit != bound || !strings.Contains(err.Error(), `"big"`) {
		t.Errorf("Get of 8 MiB = %d bytes, %v; want a *TooLargeError naming big and the bound %d", len(got), err, bound)
	}
	for name, call := range map[string]func() error{
		"Put":    func() error { return s.Put("huge", make([]byte, bound+1)) },
		"Create": func() error { return s.Create("huge", make([]byte, bound+1)) },
	} {
		if err := call(); !errors.As(err, &tl) || tl.Name != "huge" {
			t.Errorf("%s of %d bytes = %v; want a *TooLargeError", name, bound+1, err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "huge")); !errors.Is(err, os.ErrNotExist) {
		t.Error("the too large entry was written anyway")
	}
}
