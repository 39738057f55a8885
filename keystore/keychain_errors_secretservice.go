//go:build (dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd

package keystore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/godbus/dbus/v5"
)

// explainPlatform turns a Secret Service (D-Bus) failure into an error that
// says what is wrong and what to do, quoting and cutting the text of the
// failure, which any process on the session bus can choose. The build constraint is go-keyring's
// for its Secret Service provider.
func explainPlatform(name string, err error) error {
	var de dbus.Error
	if errors.As(err, &de) {
		switch de.Name {
		case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
			return fmt.Errorf("%w: no Secret Service (org.freedesktop.secrets) on the D-Bus session bus: "+
				"start gnome-keyring, KWallet or KeePassXC, or use a FileStore: %w", ErrKeychainUnavailable, foreignError{err})
		case "org.freedesktop.Secret.Error.IsLocked":
			return fmt.Errorf("%w: the keychain is locked: unlock it (log in to the desktop session, or run gnome-keyring-daemon --unlock) "+
				"or use a FileStore: %w", ErrKeychainUnavailable, foreignError{err})
		}
		return fmt.Errorf("keystore: Secret Service error on entry %q: %w", name, foreignError{err})
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "failed to unlock correct collection"):
		// go-keyring's Unlock: the unlock prompt was dismissed or failed.
		return fmt.Errorf("%w: the keychain is locked and was not unlocked (no prompt could be shown, or it was dismissed): "+
			"unlock it (log in to the desktop session, or run gnome-keyring-daemon --unlock) or use a FileStore: %w", ErrKeychainUnavailable, foreignError{err})
	case strings.HasPrefix(msg, "dbus:"), strings.Contains(msg, "dial unix"), strings.Contains(msg, "dbus-launch"),
		strings.Contains(msg, "connection refused"), strings.Contains(msg, "no such file or directory"):
		// godbus failed to find or reach the session bus.
		return fmt.Errorf("%w: cannot reach the D-Bus session bus for the Secret Service (is DBUS_SESSION_BUS_ADDRESS set and alive?): "+
			"run inside a desktop session, or use a FileStore: %w", ErrKeychainUnavailable, foreignError{err})
	}
	return fmt.Errorf("keystore: keychain error on entry %q: %w", name, foreignError{err})
}
