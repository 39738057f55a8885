package keystore

import (
	"encoding/base64"
	"runtime"
	"strings"
)

// maxKeychainEntry is the most base64 a Keychain writes on any OS, and
// reads: an entry larger than that was not written by this package, and is
// not decoded.
const maxKeychainEntry = 64 << 10

// encode base64-encodes data and refuses it if the backend cannot hold it.
func (k *Keychain) encode(name string, data []byte) (string, error) {
	enc := base64.StdEncoding.EncodeToString(data)
	size, limit := keychainSize(runtime.GOOS, k.Service, name, len(enc))
	if size > limit {
		return "", &TooLargeError{Name: name, Size: size, Limit: limit}
	}
	return enc, nil
}

// keychainSize returns what go-keyring's backend on goos counts for an entry
// whose base64 data is n bytes long, and the most it accepts.
func keychainSize(goos, service, name string, n int) (size, limit int) {
	switch goos {
	case "windows":
		// keyring_windows.go: len(password) > 2560 → ErrSetDataTooBig.
		return n, 2560
	case "darwin", "ios":
		// keyring_darwin.go base64-encodes again behind a prefix and
		// refuses a security(1) command line longer than 4096 bytes:
		// add-generic-password -U -s SERVICE -a NAME -w go-keyring-base64:B64\n
		// Names and base64 need no shell quoting; SERVICE may (2 quotes,
		// plus 4 bytes per embedded quote).
		svc := len(service)
		if strings.ContainsFunc(service, func(r rune) bool { return !isShellSafe(r) }) {
			svc += 2 + 4*strings.Count(service, "'")
		}
		size = len("add-generic-password -U -s  -a  -w go-keyring-base64:\n") + svc + len(name) + base64.StdEncoding.EncodedLen(n)
		return size, 4096
	default:
		// The Secret Service has no hard limit; go-keyring notes that
		// values beyond 100 KiB are slow. Keys and tokens are far smaller.
		return n, maxKeychainEntry
	}
}

// isShellSafe reports whether shellescape.Quote leaves r unquoted.
func isShellSafe(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("_@%+=:,./-", r)
}
