//go:build (dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd

package keystore

import (
	"errors"
	"testing"

	"github.com/godbus/dbus/v5"
)

// TestExplainPlatformHostile: a D-Bus error's text is the sender's to
// choose; every branch of explainPlatform quotes and cuts it.
func TestExplainPlatformHostile(t *testing.T) {
	for _, name := range []string{
		"org.freedesktop.DBus.Error.ServiceUnknown",
		"org.freedesktop.Secret.Error.IsLocked",
		"org.example.Other",
	} {
		de := dbus.Error{Name: name, Body: []any{hostile}}
		err := explainPlatform("e", de)
		checkErrorText(t, name, err)
		var got dbus.Error
		if !errors.As(err, &got) || got.Name != name {
			t.Errorf("explainPlatform(%s) = %v; want it to wrap the dbus.Error", name, err)
		}
	}
	for _, msg := range []string{"failed to unlock correct collection " + hostile, "dbus: " + hostile, hostile} {
		checkErrorText(t, "explainPlatform", explainPlatform("e", errors.New(msg)))
	}
}
