//go:build !((dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd)

package keystore

import "fmt"

// explainPlatform wraps a keychain failure with the entry's name.
func explainPlatform(name string, err error) error {
	return fmt.Errorf("keystore: keychain error on entry %q: %w", name, err)
}
