//go:build unix

package keystore

import (
	"io/fs"
	"os"
	"syscall"
)

// foreignOwner reports the owner of fi when it is neither this process's
// effective user nor root: someone who could replace what it holds.
func foreignOwner(fi fs.FileInfo) (uid uint64, foreign bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	uid = uint64(st.Uid)
	return uid, uid != uint64(os.Geteuid()) && uid != 0
}
