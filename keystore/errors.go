package keystore

import (
	"errors"
	"fmt"
	safe "github.com/dpopkit/dpop/internal/quote"
	"runtime"
	"strings"
	"unicode"
	"unicode/utf8"
)

var (
	// ErrNotFound means that no entry has the name.
	ErrNotFound = errors.New("keystore: entry not found")
	// ErrExist means that Create found an entry with the name already.
	ErrExist = errors.New("keystore: entry already exists")
	// ErrInvalidName means that an entry name breaks the naming rule of
	// [Store].
	ErrInvalidName = errors.New("keystore: invalid entry name")
	// ErrUnsupportedPlatform is returned by the parts of [Keychain] that
	// this operating system lacks.
	ErrUnsupportedPlatform = errors.New("keystore: unsupported platform: " + runtime.GOOS)
)

// ErrKeychainUnavailable means that the OS keychain could not be used: there
// is none (no Secret Service on the D-Bus session bus, no session bus), it
// is locked, or it did not answer within [Keychain.Timeout]. The error's text
// says which and what to do. This package never falls back to another store
// by itself; an application that wants to can test for this error.
var ErrKeychainUnavailable = errors.New("keystore: keychain unavailable")

// errRaced means that another process deleted an entry while Create was
// storing it.
var errRaced = errors.New("keystore: concurrent write")

// errLockBusy is returned by tryLock when another holder has the lock.
var errLockBusy = errors.New("keystore: lock busy")

// ErrLoginRequired means that the stored token cannot be used: none is
// stored, or it is bound to another key than the current one, or there is no
// current key (RFC 9449 §5: a refresh token bound to a lost key is lost). The
// application should run its login flow again and save the new token.
// A [*BindingError] matches it, and so does the error of [LoadToken] when no
// token is stored.
var ErrLoginRequired = errors.New("keystore: login required")

// CorruptError reports a stored entry that exists but does not parse as what
// it should hold. The entry is left untouched: nothing in this package
// replaces it, so that a key a refresh token is bound to is never silently
// swapped for a new one. Inspect or delete it explicitly.
type CorruptError struct {
	Name string // the entry's name
	Err  error  // why it does not parse
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("keystore: stored entry %s is corrupt (left untouched; inspect or delete it): %v", quote(e.Name), e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// BindingError reports a stored token that is bound to another key than the
// current one (Stored and Current are RFC 7638 thumbprints, "jkt"; Current
// is empty when there is no current key). It matches [ErrLoginRequired]; the
// stale token is not returned.
type BindingError struct {
	Name    string // the token entry's name
	Stored  string // thumbprint stored with the token
	Current string // thumbprint of the current key; empty if none
}

func (e *BindingError) Error() string {
	if e.Current == "" {
		return fmt.Sprintf("keystore: token %s is bound to key %s but there is no current key: log in again", quote(e.Name), quote(e.Stored))
	}
	return fmt.Sprintf("keystore: token %s is bound to key %s, not to the current key %s: log in again", quote(e.Name), quote(e.Stored), quote(e.Current))
}

// Is reports whether target is [ErrLoginRequired].
func (e *BindingError) Is(target error) bool { return target == ErrLoginRequired }

// TooLargeError reports data that a store refuses before writing it because
// it exceeds the backend's limit (a Windows credential holds 2560 bytes).
//
// A [FileStore] refuses with it too: data larger than it reads back, before
// writing, and an entry file larger than that, without reading it.
type TooLargeError struct {
	Name  string // the entry's name
	Size  int    // bytes the backend would have to hold
	Limit int    // the most it holds

	file bool // a FileStore's limit, not a keychain's
}

func (e *TooLargeError) Error() string {
	if e.file {
		return fmt.Sprintf("keystore: entry %s is too large for a FileStore: %d bytes, limit %d", quote(e.Name), e.Size, e.Limit)
	}
	return fmt.Sprintf("keystore: entry %s is too large for the keychain: %d bytes stored, limit %d; use a smaller key type or a FileStore", quote(e.Name), e.Size, e.Limit)
}

// maxQuoted bounds a string from an entry, a keychain or a caller shown in
// error text.
const maxQuoted = 256

// quote returns s for error text: cut to maxQuoted bytes (marked with
// "…"), and quoted with every byte outside printable ASCII escaped, so that
// no control or bidi character from a stored entry or a keychain daemon
// reaches a log, and a long one cannot flood it. (The dpop package's rule.)
func quote(s string) string { return safe.Cut(s, maxQuoted) }

// printable returns p as it is if it is short text without control or
// format (bidi) characters, and quote(p) if not: for paths, which are
// shown as they are unless a file system entry named them otherwise.
func printable(p string) string {
	if len(p) > 4*maxQuoted || !utf8.ValidString(p) || strings.ContainsFunc(p, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return quote(p)
	}
	return p
}

// foreignError wraps an error whose text comes from outside this package
// (a keychain daemon, the encoding of a stored key): its text is quoted and
// cut as quote does; errors.Is and errors.As see the error itself.
type foreignError struct{ err error }

func (e foreignError) Error() string { return quote(e.err.Error()) }
func (e foreignError) Unwrap() error { return e.err }
