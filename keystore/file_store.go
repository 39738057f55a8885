package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
)

// FileStore is a [Store] that keeps each entry in a file of its own in Dir,
// for servers and containers without a keychain. Dir is the only field and
// is required.
//
// The directory, and any missing parent of it, is created with mode 0700.
// Files are created with mode 0600. Every write goes to a temporary file in
// Dir that is synced and then renamed (Put) or hard-linked (Create) to its
// final name, so a crash never leaves half an entry, and of two processes
// that Create the same name exactly one wins. On a file system without hard
// links, Create falls back to an O_EXCL open of the final name, which is
// still exclusive but not crash-atomic.
//
// FileStore trusts only what its user controls, as ssh does with key files:
// whoever can change a directory on the way to a key can put a key of their
// own in its place. Every call refuses, with an error naming the path:
//   - a Dir that is not a directory, is owned by another user than the
//     process's effective user (root excepted), or is writable by group or
//     others;
//   - a directory on the way to Dir, from the root down and through the
//     targets of symbolic links, that is owned by another user (root
//     excepted), or writable by group or others without the sticky bit (a
//     Dir below /tmp, which has it, is fine); and a symbolic link on the
//     way owned by another user.
//
// Get refuses an entry that is not a regular file (a symbolic link, a
// directory, a named pipe, a device), is owned by another user, or has any
// group or other permission bit; it opens the file without following a link
// or waiting for a pipe's writer, and checks the file it opened. Put refuses
// to replace an entry that is not a regular file, and Delete to remove a
// directory. On Windows, where permission bits and owner uids mean nothing,
// only the kinds of files are checked. Entries hold at most 64 KiB: larger
// data is refused before writing, and a larger entry file without reading
// it, with a [*TooLargeError].
//
// FileStore is safe for concurrent use, by several processes too. Entry data
// is not encrypted: anyone who can read Dir can read the keys. Printing a
// FileStore, under any encoder, shows Dir only.
type FileStore struct {
	Dir string
}

var (
	_ Store          = (*FileStore)(nil)
	_ slog.LogValuer = (*FileStore)(nil)
)

// LogValue implements [slog.LogValuer]: a group holding Dir, so that every
// store of this package logs as a group of its configuration.
func (s *FileStore) LogValue() slog.Value {
	if s == nil {
		return slog.AnyValue(nil)
	}
	return slog.GroupValue(slog.String("dir", s.Dir))
}

// tempPrefix starts temporary files; valid names never start with '.'.
const tempPrefix = ".tmp-"

// maxFileEntry bounds the data of an entry: keys are at most a few KiB
// (doc.go), tokens rarely more than one, and a Keychain holds 48 KiB at most.
const maxFileEntry = 64 << 10

// path validates name and the directory and returns the entry's path.
func (s *FileStore) path(name string) (string, error) {
	if s == nil {
		return "", errors.New("keystore: the FileStore is nil")
	}
	if err := validateName(name); err != nil {
		return "", err
	}
	if s.Dir == "" {
		return "", errors.New("keystore: FileStore's Dir is empty")
	}
	if err := trustDir(s.Dir); err != nil {
		return "", err
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
	// Look before opening: opening a device can have effects of its own.
	fi, err := os.Lstat(p)
	if err == nil && !fi.Mode().IsRegular() {
		return nil, notRegular(p, fi.Mode())
	}
	var data []byte
	if err == nil {
		data, err = readEntry(name, p)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q in %s", ErrNotFound, name, s.Dir)
	}
	if err != nil {
		return nil, err
	}
	return data, nil
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
	if fi, err := os.Lstat(p); err == nil && !fi.Mode().IsRegular() {
		return notRegular(p, fi.Mode())
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
	// os.Remove would remove an empty directory too.
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		return notRegular(p, fi.Mode())
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
