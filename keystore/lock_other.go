//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || windows)

package keystore

import "os"

// tryLock fails: this platform has no file lock this package knows, so
// [Keychain.Create] cannot guarantee that it never overwrites.
func tryLock(f *os.File) error { return ErrUnsupportedPlatform }

func unlockFile(f *os.File) error { return ErrUnsupportedPlatform }
