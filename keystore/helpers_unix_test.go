//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package keystore

import (
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
)

// mkfifo makes a named pipe at p.
func mkfifo(t *testing.T, p string) {
	t.Helper()
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
}

// makeDevice makes a character device node at p with the numbers of
// Linux's /dev/null, or skips the test unless it runs as root on Linux.
func makeDevice(t *testing.T, p string) {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("keystore: needs root on Linux to make a device node; run as root (e.g. in a container) to test one")
	}
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o600, 1<<8|3); err != nil {
		t.Skip("cannot make a device node here:", err)
	}
}

// makeSocket makes a unix socket at p, or skips the test where it cannot.
func makeSocket(t *testing.T, p string) {
	t.Helper()
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Skip("cannot make a unix socket here:", err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
}
