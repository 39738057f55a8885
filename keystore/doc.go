// Package keystore keeps a DPoP private key, and the tokens bound to it,
// across runs of a CLI or desktop application: in the OS keychain
// ([Keychain]), in a directory ([FileStore]) or in memory ([MemoryStore]).
//
// A DPoP-bound refresh token is usable only with the key it is bound to
// (RFC 9449 §5), so a lost or silently replaced key means a lost login.
// Hence the rules this package keeps: [LoadOrCreate] returns the stored key
// or creates one, and never replaces one, also when two processes start at
// the same moment; a stored entry that does not parse is a [*CorruptError]
// naming it, never a reason for a new key; deleting a key is explicit
// ([Store.Delete]); a keychain that is locked, absent or slow is an error after
// a timeout, never a hang and never a silent fallback to another store.
//
// This package does not compute thumbprints: pass the RFC 7638 thumbprint
// ("jkt") of the current key, as the dpop package's Signer reports it, to
// [SaveToken], [LoadToken] and [SavingTokenSource].
//
// # Key encoding and sizes
//
// Every store holds a key as PKCS #8 DER: [MarshalKey] encodes it and
// [ParseKey] decodes it, so a [Store] of your own (Vault, a database) can
// hold keys the same way, and keys move between stores as bytes. A
// [Keychain] stores them base64-encoded. Measured sizes, DER / base64:
//
//	ECDSA P-256 (ES256, the default)   138 /  184
//	ECDSA P-384 (ES384)                185 /  248
//	ECDSA P-521 (ES512)                241 /  324
//	Ed25519 (EdDSA)                     48 /   64
//	RSA 2048 (PS256, RS256)          ~1218 / 1624
//	RSA 3072                         ~1793 / 2392
//	RSA 4096                         ~2374 / 3168
//
// Every key type up to RSA 3072 fits every backend, Windows' 2560-byte
// credential blob included. RSA 4096 fits neither Windows nor macOS (whose
// security(1) command line, holding the data base64-encoded twice, is
// limited to 4096 bytes); [Keychain] refuses it with a [*TooLargeError]
// before writing. [LoadOrCreate] generates RSA 2048 keys only.
//
// # Tokens
//
// [SaveToken] stores an oauth2.Token as JSON together with the thumbprint
// of its key; [LoadToken] returns it only if that thumbprint is the current
// key's, and otherwise an error matching [ErrLoginRequired].
// [SavingTokenSource] saves every token that differs from the last one
// saved in any field, a rotated refresh token included; it is a
// [dpop.TokenSource], whose TokenContext and Invalidate methods let the
// dpop package's Transport bound the wait by a request's context and
// replace a token a server refused. A token whose JSON exceeds a backend's
// limit is refused with a [*TooLargeError]; it is not split.
//
// # Secrets and bounds
//
// No type of this package shows a key, a token or an entry's data, as a
// value or a pointer, under any verb of package fmt, any slog handler (the
// stores implement [slog.LogValuer]) or encoding/json: [MemoryStore],
// [Keychain] and the source [SavingTokenSource] returns print their
// configuration only. No error quotes an entry's data; one about a corrupt
// entry names it and says which field or byte offset is wrong, and text
// from an entry or a keychain daemon reaches an error quoted and cut.
//
// A [FileStore] trusts only what its user controls, as ssh does: it refuses
// a directory owned by another user or writable by group or others, or
// below a directory that another user owns or that group or others can
// write to without the sticky bit; and an entry that is not a regular file
// (a symbolic link, a named pipe, a device), is owned by another user or is
// open to group or others. Reads are
// bounded: a FileStore reads at most 64 KiB of an entry, a Keychain decodes
// at most 64 KiB of base64. Every Keychain call is bounded by its Timeout.
//
// # Testing
//
// The keychain tests run against a real Secret Service: run
// scripts/with-keychain.sh go test ./keystore/ (it starts D-Bus and
// gnome-keyring in a throwaway session). Tests of code that uses this
// package should inject a [MemoryStore] or a [FileStore] in a temporary
// directory, not go-keyring's global MockInit.
package keystore
