package keystore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// The rules by which a FileStore trusts a file system, after ssh's for key
// files: whoever can change a directory on the way to a key can put a key of
// their own in its place, so every directory and link on the way, and every
// entry read, must be something only this user (or root) controls. Where
// permission bits and owner uids mean nothing (Windows), only the kinds of
// files are checked.

// checkPerms reports whether permission bits and owners are checked.
const checkPerms = runtime.GOOS != "windows"

// maxLinks bounds the symbolic links followed on the way to a directory,
// as the kernel's own limit (40 on Linux) does.
const maxLinks = 40

// trustDir checks the way to dir and dir itself, making the directories of
// it that are missing with mode 0700, and returns an error naming the first
// directory or link that someone other than this user and root controls:
//
//   - every directory a name is looked up in on the way (the parents of dir,
//     and those of the targets of symbolic links on the way, up to the root)
//     is owned by this user or root, and writable by group or others only
//     if it has the sticky bit (as /tmp has), which keeps them from
//     renaming or removing what is not theirs;
//   - every symbolic link on the way is owned by this user or root;
//   - dir is a directory owned by this user or root, and writable by no
//     one else.
//
// Checking the names, not a descriptor, is enough: once no one else can
// change a directory on the way, what the names lead to stays put.
func trustDir(dir string) error {
	if !checkPerms {
		fi, err := os.Stat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("keystore: creating FileStore directory: %w", err)
			}
			fi, err = os.Stat(dir)
		}
		if err != nil {
			return fmt.Errorf("keystore: FileStore directory: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("keystore: FileStore directory %s is not a directory", dir)
		}
		return nil
	}
	real, err := walkDirs(dir, "FileStore directory", true)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(real)
	if err != nil {
		return fmt.Errorf("keystore: FileStore directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("keystore: FileStore directory %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("keystore: FileStore directory %s is writable by group or others (mode %v): chmod go-w it or choose a private directory", dir, fi.Mode().Perm())
	}
	if uid, foreign := foreignOwner(fi); foreign {
		return fmt.Errorf("keystore: FileStore directory %s is owned by uid %d, not by this user (uid %d) or root, "+
			"who could replace its keys: choose a directory of your own", dir, uid, os.Geteuid())
	}
	return nil
}

// walkDirs resolves dir one name at a time, as the kernel does, and checks
// every directory it looks a name up in and every symbolic link it follows
// by the rules of [trustDir]; it returns the path of dir without links.
// With mkdir, it makes the missing directories with mode 0700 (only after
// the directory they go in has passed). what names dir in errors.
func walkDirs(dir, what string, mkdir bool) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("keystore: %s %s: %w", what, dir, err)
	}
	cur := string(filepath.Separator)
	fi, err := os.Lstat(cur)
	if err != nil {
		return "", fmt.Errorf("keystore: %s %s: %w", what, dir, err)
	}
	rest := strings.Split(abs[len(cur):], string(filepath.Separator))
	if remains(rest) {
		if err := trustParent(dir, what, cur, fi); err != nil {
			return "", err
		}
	}
	links := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur) // cur has no links, so its parent is checked
			continue
		}
		next := filepath.Join(cur, name)
		fi, err := os.Lstat(next)
		if mkdir && errors.Is(err, fs.ErrNotExist) {
			err = os.Mkdir(next, 0o700)
			if err == nil || errors.Is(err, fs.ErrExist) { // made by another process
				fi, err = os.Lstat(next)
			}
		}
		if err != nil {
			return "", fmt.Errorf("keystore: %s %s: %w", what, dir, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if uid, foreign := foreignOwner(fi); foreign {
				return "", foreignWay(dir, what, next, uid)
			}
			if links++; links > maxLinks {
				return "", fmt.Errorf("keystore: %s %s: more than %d symbolic links on the way to it", what, dir, maxLinks)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return "", fmt.Errorf("keystore: %s %s: %w", what, dir, err)
			}
			if filepath.IsAbs(target) {
				cur = string(filepath.Separator)
			}
			rest = append(strings.Split(target, string(filepath.Separator)), rest...)
			continue
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("keystore: %s %s: %s on the way to it is not a directory (mode %v)", what, dir, printable(next), fi.Mode())
		}
		cur = next
		if !remains(rest) {
			continue // the caller checks the last directory by its own rule
		}
		if err := trustParent(dir, what, cur, fi); err != nil {
			return "", err
		}
	}
	return cur, nil
}

// trustWayTo checks, by the rules of [trustDir], every directory a name is
// looked up in on the way to p, and every symbolic link followed, but not
// p itself. what names p in errors.
func trustWayTo(p, what string) error {
	parent, err := walkDirs(filepath.Dir(p), what, false)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(parent)
	if err != nil {
		return fmt.Errorf("keystore: %s %s: %w", what, p, err)
	}
	return trustParent(p, what, parent, fi)
}

// remains reports whether rest holds a name still to look up.
func remains(rest []string) bool {
	for _, name := range rest {
		if name != "" && name != "." {
			return true
		}
	}
	return false
}

// trustParent checks p, a directory on the way to dir that a name is
// looked up in: it must be owned by this user or root, and writable by
// group or others only if sticky.
func trustParent(dir, what, p string, fi fs.FileInfo) error {
	if uid, foreign := foreignOwner(fi); foreign {
		return foreignWay(dir, what, p, uid)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("keystore: %s %s: %s on the way to it is writable by group or others (mode %v) without the sticky bit, "+
			"so they could put their own keys in its place: chmod go-w (or +t) that directory, or choose another", what, dir, printable(p), fi.Mode())
	}
	return nil
}

// foreignWay is the error about p, a directory or link on the way to dir
// that uid owns. (p may hold names from symbolic links: printable.)
func foreignWay(dir, what, p string, uid uint64) error {
	return fmt.Errorf("keystore: %s %s: %s on the way to it is owned by uid %d, not by this user (uid %d) or root, "+
		"who could put their own keys in its place: choose a directory of your own", what, dir, printable(p), uid, os.Geteuid())
}

// kind names the kind of a file that is not a regular one.
func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "irregular file"
}

// notRegular returns the error about an entry file p that is a symbolic
// link, a directory, a named pipe or anything else this package never
// makes.
func notRegular(p string, m fs.FileMode) error {
	return fmt.Errorf("keystore: entry file %s is a %s (mode %v), not a regular file: "+
		"this package makes only regular files; remove it if you do not know why it is there", p, kind(m), m)
}

// readEntry reads the entry file p, which name names: opened without
// following a symbolic link and without waiting for a named pipe's writer
// (see openEntryFlags), it must pass [checkEntryFile] as opened, not only
// as a name looked up before.
func readEntry(name, p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|openEntryFlags, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		if fi, lerr := os.Lstat(p); lerr == nil && !fi.Mode().IsRegular() {
			return nil, notRegular(p, fi.Mode()) // replaced since the caller looked
		}
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
		return notRegular(p, fi.Mode())
	}
	if checkPerms && fi.Mode().Perm()&0o077 != 0 {
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
