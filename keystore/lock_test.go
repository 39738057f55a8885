package keystore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAcquireLockIrregular: a lock file that is a symbolic link (whose
// target the open would create anywhere) or a named pipe is refused, with
// an error naming it, and the link's target is not made.
func TestAcquireLockIrregular(t *testing.T) {
	for _, tc := range []struct {
		kind string
		make func(t *testing.T, p string)
	}{
		{"symbolic link", func(t *testing.T, p string) {
			if err := os.Symlink(filepath.Join(filepath.Dir(p), "target"), p); err != nil {
				t.Skip("no symbolic links here:", err)
			}
		}},
		{"named pipe", mkfifo},
		{"directory", func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "keychain.lock")
			tc.make(t, p)
			err := noHang(t, "acquireLock", p, func() error {
				unlock, err := acquireLock(p, time.Now().Add(time.Minute))
				if err == nil {
					unlock()
				}
				return err
			})
			if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.kind) {
				t.Errorf("acquireLock of a %s = %v; want an error naming %s as a %s", tc.kind, err, p, tc.kind)
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(p), "target")); err == nil {
				t.Error("acquireLock made the link's target")
			}
		})
	}
}
