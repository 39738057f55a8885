package keystore

import "fmt"

// Store holds named entries: keys and tokens. Implementations in this package
// are [MemoryStore], [FileStore] and [Keychain]; all are safe for concurrent
// use.
//
// Names are validated with the same rule by every implementation: 1 to 128
// bytes of ASCII letters, digits, '.', '_' and '-', not starting with '.'
// (so "..", path separators and hidden or temporary files are impossible).
type Store interface {
	// Get returns the entry's data, or an error matching ErrNotFound.
	// The caller owns the returned slice.
	Get(name string) ([]byte, error)
	// Create stores a new entry. It never overwrites: if the entry exists,
	// it returns an error matching ErrExist and leaves the entry as it was.
	// Of several concurrent Creates of one name, across processes too,
	// exactly one succeeds.
	Create(name string, data []byte) error
	// Put stores an entry, replacing any previous one. It is meant for
	// tokens; keys are stored with Create.
	Put(name string, data []byte) error
	// Delete removes an entry, or returns an error matching ErrNotFound.
	Delete(name string) error
}

// maxNameLen bounds entry names; with a short service name it keeps a
// Windows credential target well under its 512-byte limit.
const maxNameLen = 128

// validateName checks name against the naming rule of [Store].
func validateName(name string) error {
	if name == "" || len(name) > maxNameLen || name[0] == '.' {
		return fmt.Errorf("%w %s: want 1 to %d of [A-Za-z0-9._-], not starting with '.'", ErrInvalidName, quote(name), maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w %s: byte %q at %d is not one of [A-Za-z0-9._-]", ErrInvalidName, quote(name), c, i)
		}
	}
	return nil
}
