//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package keystore

import (
	"runtime"
	"testing"
)

// mkfifo skips the test: these tests make no named pipes here.
func mkfifo(t *testing.T, p string) {
	t.Helper()
	t.Skip("no named pipes made on " + runtime.GOOS)
}

// makeDevice skips the test: these tests make no device nodes here.
func makeDevice(t *testing.T, p string) {
	t.Helper()
	t.Skip("no device nodes made on " + runtime.GOOS)
}

// makeSocket skips the test: these tests make no unix sockets here.
func makeSocket(t *testing.T, p string) {
	t.Helper()
	t.Skip("no unix sockets made on " + runtime.GOOS)
}
