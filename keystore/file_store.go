package keystore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// FileStore is a [Store] that keeps each entry in a file of its own in Dir,
// for servers and containers without a keychain. Dir is the only field and
// is required.
//
// The directory is created with mode 0700 if it is missing; an existing
// directory that is group- or world-writable is refused (on Windows, where
// permission bits mean nothing, this check is skipped). Files are created
// with mode 0600. Every write goes to a temporary file in Dir that is
// synced and then renamed (Put) or hard-linked (Create) to its final name,
// so a crash never leaves half an entry, and of two processes that Create
// the same name exactly one wins. On a file system without hard links,
// Create falls back to an O_EXCL open of the final name, which is still
// exclusive but not crash-atomic.
//
// FileStore trusts only what its user controls, as ssh does with key files
// (on Windows, where permission bits and owner uids mean nothing, these
// checks are skipped): every call refuses a Dir owned by another user
// than the process's effective user (root excepted), and Get refuses an
// entry file owned by another user or with any group or other permission
// bit, with an error naming the file and its mode. Entries hold at most 64
// KiB: larger data is refused before writing, and a larger entry file
// without reading it, with a [*TooLargeError].
//
// FileStore is safe for concurrent use, by several processes too. Entry data
// is not encrypted: anyone who can read Dir can read the keys. Printing a
// FileStore shows Dir only.
type FileStore struct {
	Dir string
}

var _ Store = (*FileStore)(nil)

// tempPrefix starts temporary files; valid names never start with '.'.
const tempPrefix = ".tmp-"

// maxFileEntry bounds the data of an entry: keys are at most a few KiB
// (doc.go), tokens rarely more than one, and a Keychain holds 48 KiB at most.
const maxFileEntry = 64 << 10

// path validates name and the directory and returns the entry's path.
func (s *FileStore) path(name string) (string, error) {
	if err := validateName(name); err != nil {
		return "", err
	}
	if s.Dir == "" {
		return "", errors.New("keystore: FileStore's Dir is empty")
	}
	fi, err := os.Stat(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(s.Dir, 0o700); err != nil {
			return "", fmt.Errorf("keystore: creating FileStore directory: %w", err)
		}
		fi, err = os.Stat(s.Dir)
	}
	if err != nil {
		return "", fmt.Errorf("keystore: FileStore directory: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("keystore: FileStore directory %s is not a directory", s.Dir)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o022 != 0 {
		return "", fmt.Errorf("keystore: FileStore directory %s is writable by group or others (mode %v): chmod go-w it or choose a private directory", s.Dir, fi.Mode().Perm())
	}
	if uid, foreign := foreignOwner(fi); foreign {
		return "", fmt.Errorf("keystore: FileStore directory %s is owned by uid %d, not by this user (uid %d) or root, "+
			"who could replace its keys: choose a directory of your own", s.Dir, uid, os.Geteuid())
	}
	return filepath.Join(s.Dir, name), nil
}

// checkSize refuses data that Get would not read back.
func checkSize(name string, data []byte) error {
	if len(data) > maxFileEntry {
		return &TooLargeError{Name: name, Size: len(data), Limit: maxFileEntry, file: true}
	}
	return nil
}

// Get implements [Store].
func (s *FileStore) Get(name string) ([]byte, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q in %s", ErrNotFound, name, s.Dir)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	if err := checkEntryFile(name, p, fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileEntry+1))
	if err != nil {
		return nil, fmt.Errorf("keystore: reading %s: %w", p, err)
	}
	if len(data) > maxFileEntry { // it grew after Stat
		return nil, &TooLargeError{Name: name, Size: len(data), Limit: maxFileEntry, file: true}
	}
	return data, nil
}

// checkEntryFile refuses to read the entry file p unless it is a regular
// file that only its owner, this user (or root), can read or change, and
// small enough.
func checkEntryFile(name, p string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("keystore: entry file %s is not a regular file (mode %v)", p, fi.Mode())
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("keystore: entry file %s has mode %v, open to group or others: "+
			"it may have been read or changed; chmod 600 it if you trust it, or delete it", p, fi.Mode())
	}
	if uid, foreign := foreignOwner(fi); foreign {
		return fmt.Errorf("keystore: entry file %s is owned by uid %d, not by this user (uid %d) or root: delete it if you do not trust it", p, uid, os.Geteuid())
	}
	if fi.Size() > maxFileEntry {
		return &TooLargeError{Name: name, Size: int(min(fi.Size(), 1<<62)), Limit: maxFileEntry, file: true}
	}
	return nil
}

// Create implements [Store].
func (s *FileStore) Create(name string, data []byte) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if err := checkSize(name, data); err != nil {
		return err
	}
	tmp, err := s.writeTemp(data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	err = os.Link(tmp, p)
	switch {
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%w: %q in %s", ErrExist, name, s.Dir)
	case err != nil:
		// No hard links here: fall back to an exclusive create.
		if err := createExcl(p, data); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%w: %q in %s", ErrExist, name, s.Dir)
			}
			return fmt.Errorf("keystore: %w", err)
		}
	}
	syncDir(s.Dir)
	return nil
}

// Put implements [Store].
func (s *FileStore) Put(name string, data []byte) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if err := checkSize(name, data); err != nil {
		return err
	}
	tmp, err := s.writeTemp(data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("keystore: %w", err)
	}
	syncDir(s.Dir)
	return nil
}

// Delete implements [Store].
func (s *FileStore) Delete(name string) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	err = os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %q in %s", ErrNotFound, name, s.Dir)
	}
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	syncDir(s.Dir)
	return nil
}

// writeTemp writes data to a new synced 0600 file in s.Dir and returns its
// path.
func (s *FileStore) writeTemp(data []byte) (string, error) {
	f, err := os.CreateTemp(s.Dir, tempPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("keystore: %w", err)
	}
	if err := writeAndClose(f, data); err != nil {
		return "", fmt.Errorf("keystore: writing %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

// createExcl writes data to a new file p, failing if p exists.
func createExcl(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	return writeAndClose(f, data)
}

// writeAndClose writes data to the new file f, syncs and closes it; if any
// step fails, it removes the file.
func writeAndClose(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// syncDir makes a new or removed directory entry durable, where the
// platform allows it; failures are ignored (the file data is already synced).
func syncDir(dir string) {
	if runtime.GOOS == "windows" {
		return
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
