package tpmkey

import (
	"errors"
	"fmt"
)

var (
	// ErrNoTPM means that there is no TPM to open, or no permission to
	// open it.
	ErrNoTPM = errors.New("tpmkey: no TPM available")

	// ErrBusy means that the TPM did not answer within [TPM.Timeout]:
	// other commands held it, or the device or simulator is not
	// responding. It wraps the cause.
	ErrBusy = errors.New("tpmkey: TPM busy or not responding")

	// ErrClosed is returned by a [Key] after Close.
	ErrClosed = errors.New("tpmkey: key is closed")
)

// ForeignKeyError reports a stored key that this TPM refuses to load: the
// key file parses, but its private part was not made by this TPM under its
// current storage hierarchy. Either the entry comes from another machine or
// another TPM, the TPM was cleared since (which changes its storage seed),
// or the entry was altered. The TPM cannot tell these apart.
//
// The entry is left untouched and no new key is made: a refresh token bound
// to the stored key must not be silently orphaned. Delete the entry
// (store.Delete(name)) to start over with a new key and a new login.
type ForeignKeyError struct {
	Name string // the entry's name; "" for ParseKey
	Err  error  // the TPM's error
}

func (e *ForeignKeyError) Error() string {
	what := "key"
	if e.Name != "" {
		what = fmt.Sprintf("stored key %q", e.Name)
	}
	return fmt.Sprintf("tpmkey: this TPM refuses %s: it was made by another TPM, or this TPM was cleared since, or it was altered (left untouched; delete it to start over): %v", what, e.Err)
}

func (e *ForeignKeyError) Unwrap() error { return e.Err }
