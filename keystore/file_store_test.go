package keystore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestFileStorePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("permission bits are not used on Windows")
	}
	s := newTestFileStore(t)
	if err := s.Create("key", []byte("k")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("tok", []byte("t")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("directory mode = %v; want 0700", got)
	}
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode = %v; want 0600", e.Name(), got)
		}
	}
	if got, want := strings.Join(names, ","), "key,tok"; got != want {
		t.Errorf("directory holds %s; want %s (no temporary files left)", got, want)
	}
}

func TestFileStoreRefusesOpenDirectory(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("permission bits are not used on Windows")
	}
	for _, mode := range []os.FileMode{0o770, 0o777, 0o702} {
		dir := filepath.Join(t.TempDir(), "open")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		s := &FileStore{Dir: dir}
		err := s.Put("e", []byte("x"))
		if err == nil || !strings.Contains(err.Error(), "writable by group or others") {
			t.Errorf("mode %v: Put = %v; want a refusal", mode, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "e")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("mode %v: the entry was written anyway", mode)
		}
	}
}

func TestFileStoreEmptyDir(t *testing.T) {
	var s FileStore
	if _, err := s.Get("e"); err == nil || !strings.Contains(err.Error(), "Dir is empty") {
		t.Errorf("Get = %v; want an error about the empty Dir", err)
	}
}

func TestFileStoreNotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &FileStore{Dir: f}
	if err := s.Put("e", nil); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Put = %v; want a not-a-directory error", err)
	}
}

// TestFileStoreCreateExclusive has many goroutines Create one name: exactly
// one wins and its data is what is stored.
func TestFileStoreCreateExclusive(t *testing.T) {
	s := newTestFileStore(t)
	const n = 32
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Create("key", fmt.Appendf(nil, "writer %d", i))
			switch {
			case err == nil:
				mu.Lock()
				wins = append(wins, i)
				mu.Unlock()
			case !errors.Is(err, ErrExist):
				t.Errorf("Create = %v; want nil or ErrExist", err)
			}
		}()
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d Creates won; want 1", len(wins))
	}
	got, err := s.Get("key")
	if want := fmt.Sprintf("writer %d", wins[0]); err != nil || string(got) != want {
		t.Errorf("Get = %q, %v; want %q", got, err, want)
	}
}
