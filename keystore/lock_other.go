//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || windows)

package keystore

import (
	"os"
	"path/filepath"
)

// tryLock fails: this platform has no file lock this package knows, so
// [Keychain.Create] cannot guarantee that it never overwrites.
func tryLock(f *os.File) error { return ErrUnsupportedPlatform }

func unlockFile(f *os.File) error { return ErrUnsupportedPlatform }

// defaultLockDir returns dpop-keystore under os.TempDir.
func defaultLockDir() (string, error) {
	return filepath.Join(os.TempDir(), "dpop-keystore"), nil
}

// checkLockDir accepts dir: tryLock fails anyway.
func checkLockDir(dir string) error { return nil }
