package keystore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
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

// hangBound is how long a test waits for a call that must not block
// before it reports a hang: far longer than any such call takes on a
// loaded machine, far shorter than the test binary's own timeout.
const hangBound = 30 * time.Second

// noHang runs call and returns its error, or fails the test if call is
// still blocked after hangBound; then it opens the writing end of the named
// pipe p, if that is what p is, so that a call blocked opening it returns.
func noHang(t *testing.T, what, p string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(hangBound):
		t.Errorf("%s is still blocked after %v", what, hangBound)
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeNamedPipe != 0 {
			if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
				f.Close()
			}
		}
		return <-done
	}
}

// TestFileStoreFIFOEntry: a named pipe in place of a key would block the
// open for ever, waiting for a writer; LoadOrCreate refuses it at once,
// naming it.
func TestFileStoreFIFOEntry(t *testing.T) {
	s := newTestFileStore(t)
	if err := s.Put("other", []byte("x")); err != nil { // creates Dir
		t.Fatal(err)
	}
	p := filepath.Join(s.Dir, "key")
	mkfifo(t, p)
	err := noHang(t, "LoadOrCreate with a FIFO as the key", p, func() error {
		_, err := LoadOrCreate(s, "key", nil)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "named pipe") {
		t.Errorf("LoadOrCreate with a FIFO as the key = %v; want an error naming %s as a named pipe", err, p)
	}
}

// TestOpenEntryFIFO: the open itself, which a rename between the check
// and the open could point at a named pipe, neither blocks nor reads one.
func TestOpenEntryFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "key")
	mkfifo(t, p)
	err := noHang(t, "readEntry of a FIFO", p, func() error {
		_, err := readEntry("key", p)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "named pipe") {
		t.Errorf("readEntry of a FIFO = %v; want an error naming %s as a named pipe", err, p)
	}
}

// TestFileStoreIrregularEntries: an entry that is not a regular file,
// which this package never makes, is refused by every call that would
// read or replace it, with an error naming its path and what it is; Delete
// removes it, unless it is a directory.
func TestFileStoreIrregularEntries(t *testing.T) {
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kind string
		make func(t *testing.T, p string)
	}{
		{"symbolic link", func(t *testing.T, p string) {
			if err := os.Symlink(target, p); err != nil {
				t.Skip("no symbolic links here:", err)
			}
		}},
		{"symbolic link", func(t *testing.T, p string) {
			if err := os.Symlink(target+"-missing", p); err != nil {
				t.Skip("no symbolic links here:", err)
			}
		}},
		{"directory", func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
		{"named pipe", mkfifo},
		{"socket", makeSocket},
		{"device", makeDevice},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			s := newTestFileStore(t)
			if err := s.Put("other", []byte("x")); err != nil { // creates Dir
				t.Fatal(err)
			}
			p := filepath.Join(s.Dir, "key")
			tc.make(t, p)
			want := func(call string, err error) {
				t.Helper()
				if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.kind) {
					t.Errorf("%s with a %s as the entry = %v; want an error naming %s as a %s", call, tc.kind, err, p, tc.kind)
				}
			}
			want("Get", noHang(t, "Get", p, func() error { _, err := s.Get("key"); return err }))
			want("LoadOrCreate", noHang(t, "LoadOrCreate", p, func() error { _, err := LoadOrCreate(s, "key", nil); return err }))
			want("Put", s.Put("key", []byte("new")))
			if err := s.Create("key", []byte("new")); !errors.Is(err, ErrExist) {
				t.Errorf("Create with a %s as the entry = %v; want ErrExist", tc.kind, err)
			}
			if got, err := os.ReadFile(target); err != nil || string(got) != "key" {
				t.Errorf("the link's target holds %q, %v; want it untouched", got, err)
			}
			err := s.Delete("key")
			if tc.kind == "directory" {
				want("Delete", err)
				return
			}
			if err != nil {
				t.Errorf("Delete of a %s = %v; want it removed", tc.kind, err)
			}
			if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after Delete, Lstat = %v; want it gone", err)
			}
		})
	}
}

// TestFileStoreRefusesOpenParent: whoever can write to a directory on the
// way to Dir can rename Dir, or a directory above it, and put their own
// keys in its place; so, as ssh does for key files, every call refuses a
// Dir below a directory that group or others can write to, unless the
// sticky bit (as on /tmp) keeps them from renaming what is not theirs.
func TestFileStoreRefusesOpenParent(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("permission bits are not used on Windows")
	}
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o700, true},
		{0o755, true},
		{0o777 | os.ModeSticky, true}, // /tmp
		{0o770 | os.ModeSticky, true},
		{0o777, false},
		{0o775, false},
		{0o757, false},
		{0o730, false},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			open := filepath.Join(t.TempDir(), "open")
			if err := os.Mkdir(open, 0o700); err != nil {
				t.Fatal(err)
			}
			// The store one level below the open directory, and three.
			for _, dir := range []string{filepath.Join(open, "store"), filepath.Join(open, "a", "b", "store")} {
				s := &FileStore{Dir: dir}
				if err := s.Put("tok", []byte("t")); err != nil { // made while open is private
					t.Fatal(err)
				}
				if err := os.Chmod(open, tc.mode); err != nil {
					t.Fatal(err)
				}
				for _, c := range []struct {
					name string
					call func() error
				}{
					{"Get", func() error { _, err := s.Get("tok"); return err }},
					{"Put", func() error { return s.Put("tok", []byte("u")) }},
					{"Create", func() error { return s.Create("key", []byte("k")) }},
					{"Delete", func() error { return s.Delete("key") }},
				} {
					name, err := c.name, c.call()
					switch {
					case tc.ok && err != nil:
						t.Errorf("%s in %s below a %v directory = %v; want nil", name, dir, tc.mode, err)
					case !tc.ok && (err == nil || !strings.Contains(err.Error(), open+" ") || !strings.Contains(err.Error(), "writable by group or others")):
						t.Errorf("%s in %s below a %v directory = %v; want an error naming %s", name, dir, tc.mode, err, open)
					}
				}
				if err := os.Chmod(open, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			// A Dir still to be made is not made there.
			s := &FileStore{Dir: filepath.Join(open, "new", "store")}
			if err := os.Chmod(open, tc.mode); err != nil {
				t.Fatal(err)
			}
			err := s.Put("tok", []byte("t"))
			if _, serr := os.Stat(filepath.Join(open, "new")); !tc.ok && (err == nil || !errors.Is(serr, fs.ErrNotExist)) {
				t.Errorf("Put in a new Dir below a %v directory = %v, and Stat of it = %v; want a refusal before anything is made", tc.mode, err, serr)
			}
			os.Chmod(open, 0o700)
		})
	}
}

// TestFileStoreSymlinkedDir: a Dir reached through symbolic links is
// trusted only if every directory the links lead through is, and every
// link is the user's (or root's).
func TestFileStoreSymlinkedDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("permission bits are not used on Windows")
	}
	base := t.TempDir()
	mk := func(p string, mode os.FileMode) string {
		t.Helper()
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	link := func(target, p string) string {
		t.Helper()
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	safe := mk(filepath.Join(base, "safe"), 0o755)
	open := mk(filepath.Join(base, "open"), 0o700)
	sticky := mk(filepath.Join(base, "sticky"), 0o777|os.ModeSticky)
	mk(filepath.Join(safe, "store"), 0o700)
	mk(filepath.Join(open, "store"), 0o700)
	os.Chmod(open, 0o777)

	ok := []string{
		link(filepath.Join(safe, "store"), filepath.Join(safe, "to-safe")), // a ~/.config that is a link
		link("store", filepath.Join(safe, "relative")),
		filepath.Join(link("../safe", filepath.Join(safe, "up")), "store"),
		link(filepath.Join(safe, "store"), filepath.Join(sticky, "mine")), // my link in /tmp
	}
	for _, dir := range ok {
		s := &FileStore{Dir: dir}
		if err := s.Put("tok", []byte("t")); err != nil {
			t.Errorf("Put in %s = %v; want nil", dir, err)
		}
	}
	bad := map[string]string{
		link(filepath.Join(open, "store"), filepath.Join(safe, "to-open")):  open, // the link is safe, its target is not
		link(filepath.Join(safe, "store"), filepath.Join(open, "to-safe")):  open, // the target is safe, the link is not
		filepath.Join(link(open, filepath.Join(safe, "open-dir")), "store"): open,
		link("loop-b", filepath.Join(safe, "loop-a")):                       "symbolic links",
	}
	link("loop-a", filepath.Join(safe, "loop-b"))
	for dir, want := range bad {
		s := &FileStore{Dir: dir}
		if err := s.Put("tok", []byte("t")); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Put in %s = %v; want an error naming %s", dir, err, want)
		}
	}
	// A name another user chose, met on the way, reaches the error escaped.
	if os.Geteuid() == 0 {
		evil := mk(filepath.Join(sticky, "evil\x1b[2J\u202e"), 0o755)
		if err := os.Lchown(evil, otherUID, otherUID); err != nil {
			t.Fatal(err)
		}
		dir := link(filepath.Join(evil, "store"), filepath.Join(safe, "to-evil"))
		err := (&FileStore{Dir: dir}).Put("tok", []byte("t"))
		checkErrorText(t, "Put through a link to another user's directory", err)
		if err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Errorf("Put through a link to another user's directory = %v; want an error naming its owner", err)
		}
	}
	// Another user's link in a sticky directory is theirs to replace.
	theirs := link(filepath.Join(safe, "store"), filepath.Join(sticky, "theirs"))
	if os.Geteuid() == 0 {
		if err := os.Lchown(theirs, otherUID, otherUID); err != nil {
			t.Fatal(err)
		}
		s := &FileStore{Dir: theirs}
		if err := s.Put("tok", []byte("t")); err == nil || !strings.Contains(err.Error(), theirs) || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Errorf("Put through another user's link = %v; want an error naming %s and its owner", err, theirs)
		}
	}
}

// TestTrustDirRoot: the walk ends at the root, which, owned by root and
// writable by no one else, is trusted like any other directory.
func TestTrustDirRoot(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("permission bits are not used on Windows")
	}
	fi, err := os.Stat("/")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		t.Skipf("/ has mode %v here; the test wants a usual root", fi.Mode())
	}
	if err := trustDir("/"); err != nil {
		t.Errorf("trustDir(/) = %v; want nil", err)
	}
}
