//go:build !unix

package keystore

import "io/fs"

// foreignOwner reports nothing: outside unix, files have no owner uid this
// package checks (on Windows, ACLs decide).
func foreignOwner(fi fs.FileInfo) (uid uint64, foreign bool) { return 0, false }
