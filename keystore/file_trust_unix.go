//go:build unix

package keystore

import (
	"io/fs"
	"os"
	"syscall"
)

// openEntryFlags opens an entry file without following a symbolic link in
// its place (O_NOFOLLOW), without waiting for the writer of a named pipe in
// its place (O_NONBLOCK, which changes nothing for a regular file), and
// without making a terminal in its place this process's controlling
// terminal (O_NOCTTY).
const openEntryFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_NOCTTY

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
