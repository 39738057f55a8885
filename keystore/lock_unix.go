//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package keystore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// tryLock takes an exclusive flock(2) on f without waiting. flock locks
// belong to the open file, so two opens in one process exclude each other
// too.
func tryLock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return errLockBusy
		default:
			return err
		}
	}
}

func unlockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// defaultLockDir returns /tmp/dpop-keystore-UID: one directory per user
// that does not depend on the environment (HOME, XDG_CACHE_HOME, TMPDIR),
// so that every process of the user takes the same lock. Only where there
// is no /tmp does it use os.TempDir.
func defaultLockDir() (string, error) {
	tmp := "/tmp"
	if fi, err := os.Stat(tmp); err != nil || !fi.IsDir() {
		tmp = os.TempDir()
	}
	return filepath.Join(tmp, "dpop-keystore-"+strconv.Itoa(os.Getuid())), nil
}

// checkLockDir checks that dir is a directory, not a symbolic link, owned
// by this user and not writable by group or others, and that no one else
// can replace it (the rules of a FileStore's Dir, see trustWayTo): in a
// directory that someone else controls, the lock files could be removed or
// replaced, and the lock would exclude nothing.
func checkLockDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("keystore: checking lock directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("keystore: lock directory %s is not a directory (mode %v); remove it", dir, fi.Mode())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("keystore: lock directory %s: cannot read its owner", dir)
	}
	if uid := os.Getuid(); uint64(st.Uid) != uint64(uid) {
		return fmt.Errorf("keystore: lock directory %s is owned by uid %d, not by this user (uid %d), "+
			"so it cannot make Keychain.Create exclusive; another user may have created it: remove it", dir, st.Uid, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("keystore: lock directory %s has mode %v, writable by group or others, "+
			"so it cannot make Keychain.Create exclusive: chmod 700 it", dir, perm)
	}
	return trustWayTo(dir, "lock directory")
}
