//go:build !((dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd)

package keystore

import "fmt"

// explainPlatform wraps a keychain failure with the entry's name, quoting
// and cutting its text, which comes from outside (security(1)'s output,
// the credential manager).
func explainPlatform(name string, err error) error {
	return fmt.Errorf("keystore: keychain error on entry %q: %w", name, foreignError{err})
}
