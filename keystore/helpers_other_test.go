//go:build !unix

package keystore

import (
	"runtime"
	"testing"
)

// mkfifo skips the test: named pipes are not file system entries here.
func mkfifo(t *testing.T, p string) {
	t.Helper()
	t.Skip("no named pipes in the file system on " + runtime.GOOS)
}

// makeDevice skips the test: device nodes are not file system entries here.
func makeDevice(t *testing.T, p string) {
	t.Helper()
	t.Skip("no device nodes in the file system on " + runtime.GOOS)
}
