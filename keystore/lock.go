package keystore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// lockPoll is how often acquireLock retries a busy lock.
const lockPoll = 10 * time.Millisecond

// lockPath returns the cross-process lock file that serializes Creates in
// one keychain service, in dir, or in defaultLockDir if dir is empty. It
// creates the directory if needed, and checks it with checkLockDir.
func lockPath(service, dir string) (string, error) {
	if dir == "" {
		var err error
		if dir, err = defaultLockDir(); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("keystore: creating lock directory: %w", err)
	}
	if err := checkLockDir(dir); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(service))
	return filepath.Join(dir, "keychain-"+hex.EncodeToString(sum[:8])+".lock"), nil
}

// acquireLock takes an exclusive lock on the file at path, waiting until
// deadline at most, and returns the function that releases it.
func acquireLock(path string, deadline time.Time) (unlock func(), err error) {
	// Like an entry, the lock file is opened without following a link or
	// waiting for a pipe, and must be a regular file: a link's target, or
	// a pipe, would exclude nothing.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|openEntryFlags, 0o600)
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("keystore: lock file %s is a %s, not a regular file: remove it", path, kind(fi.Mode()))
		}
		return nil, fmt.Errorf("keystore: opening lock file: %w", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("keystore: lock file %s: %w", path, err)
		}
		return nil, fmt.Errorf("keystore: lock file %s is a %s, not a regular file: remove it", path, kind(fi.Mode()))
	}
	for {
		err := tryLock(f)
		if err == nil {
			return func() {
				unlockFile(f)
				f.Close()
			}, nil
		}
		if !errors.Is(err, errLockBusy) {
			f.Close()
			return nil, fmt.Errorf("keystore: locking %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("keystore: lock file %s is held by another process past the timeout; if no other process uses this keychain service, the keychain may be stuck: %w", path, ErrKeychainUnavailable)
		}
		time.Sleep(lockPoll)
	}
}
