//go:build !unix

package keystore

import "io/fs"

// openEntryFlags is empty: there is no O_NOFOLLOW here, and named pipes are
// not file system entries. Get looks at the entry before it opens it.
const openEntryFlags = 0

// foreignOwner reports nothing: outside unix, files have no owner uid this
// package checks (on Windows, ACLs decide).
func foreignOwner(fi fs.FileInfo) (uid uint64, foreign bool) { return 0, false }
