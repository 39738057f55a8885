// Package tpmkey keeps a DPoP key in a TPM 2.0, where it cannot be copied:
// a [crypto.Signer] for dpop.NewSigner (ES256) whose ECDSA P-256 private
// key is generated inside the TPM and never leaves it.
//
//	tpm, err := tpmkey.OpenSystem() // /dev/tpmrm0, or TBS on Windows
//	if errors.Is(err, tpmkey.ErrNoTPM) { … fall back, or tell the user }
//	key, err := tpmkey.LoadOrCreate(tpm, &keystore.Keychain{Service: "my-cli"}, "dpop-key")
//	signer, err := dpop.NewSigner(key, nil)
//
// # What is stored
//
// A TPM has a few object slots, not a key database: a key is kept outside
// as a blob that only its TPM can load. [LoadOrCreate] stores that blob in
// any keystore.Store ([keystore.Keychain], [keystore.FileStore], …) with
// keystore.LoadOrCreate's rules: it never replaces an entry (it writes with
// Store.Create), of processes starting together the one whose Create wins
// decides the key and the others load it, and an entry that does not parse
// is a [*keystore.CorruptError] naming it, never a reason for a new key.
// A blob this TPM refuses is a [*ForeignKeyError]: made by another TPM,
// or this TPM was cleared since, or altered.
//
// The blob is a TPM 2.0 key file (PEM "TSS2 PRIVATE KEY",
// [draft-bottomley-tpm2-keys]): the key's public area (TPM2B_PUBLIC) and its
// private area encrypted and integrity-protected by the parent key
// (TPM2B_PRIVATE). The parent is the owner (storage) hierarchy's primary
// key derived from the TCG "H-2" template: ECC NIST P-256, AES-128-CFB,
// restricted decryption, empty unique fields (TCG EK Credential Profile
// §B.4.5; TCG TPM v2.0 Provisioning Guidance §7.5.1). A TPM derives the
// same primary from the same template and storage seed every time, so it is
// re-created for each load instead of occupying a persistent handle, and
// the OpenSSL tpm2 provider and other readers of key files load our keys
// the same way. The key itself is created with fixedTPM, fixedParent and
// sensitiveDataOrigin: the TPM generated it and refuses to duplicate it;
// loading checks these attributes, which the TPM binds to the private part.
// Neither key has a password (the owner hierarchy's is assumed empty, as it
// is by default).
//
// # What a TPM key protects against, and what it does not
//
// It protects against copying the key. Malware that reads the user's files
// once, a stolen backup or disk image, a keychain that leaks, a key file
// committed by mistake: all of these get a blob that is useless on any
// other machine, so a DPoP-bound token stolen with it cannot be replayed
// from elsewhere (RFC 9449 §11.1, §11.4).
//
// It does not protect against a process that runs as the user, or as root,
// on the same machine while the attacker controls it: such a process can
// ask the TPM to sign proofs, exactly as this package does, for as long as
// it runs there. The key has no password and no PCR policy, because a CLI
// or a service must sign unattended; an attacker inside the machine is
// limited in time and place, not prevented. Nor does it protect the access
// and refresh tokens themselves, which keystore keeps as before.
//
// Nothing secret crosses the bus to the TPM: the private key is generated
// inside, and only digests and signatures travel. Commands are therefore
// sent without parameter encryption or salted sessions.
//
// # How far the TPM is trusted
//
// What the TPM answers is checked against what was asked for, and a
// mismatch is an error, never a key. The storage primary key and a new key
// have the public areas of their templates: only the unique field, the
// public key, is the TPM's to fill in, and it must be a point on P-256. A
// loaded key has the name of the public area that was sent (its nameAlg
// and the SHA-256 hash of it, TPM 2.0 Part 1 §16), and the object under
// the handle TPM2_Load returned holds that public area (TPM2_ReadPublic):
// signatures come from the key whose public key [Key.Public] reports, the
// one in the key file, or fail. A signature is ECDSA with SHA-256 whose r
// and s fit P-256. Responses are read up to 4096 bytes and a key file is
// parsed as untrusted input.
//
// These checks catch a TPM or resource manager that confuses objects, and
// an answer rewritten in part; they do not catch a forger. What remains
// open to an attacker on the bus between the processor and the TPM (an
// interposer on its LPC, SPI or I2C lines), or who serves a fake device or
// simulator socket at the path given to [Open]:
//
//   - Nothing proves that the device is a TPM. A fake one can make the key in
//     software, keep a copy, answer every check above consistently and sign
//     anywhere. Telling a genuine TPM apart needs its endorsement key
//     certificate, an attestation of the key (TPM2_Certify or credential
//     activation) and sessions salted to the endorsement key, so that its
//     answers are authenticated; this package does none of that.
//   - An interposer sees the digests and the signatures (DPoP proofs, which
//     the requests carry anyway), and while it sits there it can have the TPM
//     sign proofs of its own, as a process on the machine can: the key has no
//     password and no policy. It cannot take the key away: the private part
//     never crosses the bus, and the key file is encrypted by the TPM.
//   - Whoever answers in the TPM's place can deny service: the calls fail, or
//     time out with [ErrBusy] after [TPM.Timeout]; they do not hang.
//   - A simulator's socket is trusted like a device: keep it in a directory
//     only its user can write, and use the system's TPM ([OpenSystem]) for
//     keys that matter.
//
// # Devices, timeouts and concurrency
//
// [Open] takes a device (/dev/tpmrm0, the kernel's resource manager, which
// virtualises object slots per open file and flushes them when it is
// closed) or the Unix socket of a simulator such as swtpm. [OpenSystem] opens
// /dev/tpmrm0 on Linux and TPM Base Services on Windows (via go-tpm's
// windowstpm; built and vetted with GOOS=windows, not tested here). On
// Linux the user needs access to /dev/tpmrm0, usually membership of the
// tss group. A [TPM] runs one command at a time; each waits at most
// [TPM.Timeout] for its turn and its answer, then fails with [ErrBusy].
// A TPM without a resource manager (a simulator, /dev/tpm0) has about three
// object slots shared by all processes: a command refused for lack of one
// is retried, releasing ours first, within the timeout.
//
// A [Key] stays loaded until [Key.Close]; its Sign is one TPM2_Sign command
// and holds no lock beyond it, so many goroutines may share one
// dpop.Transport: their proofs queue at the TPM. swtpm signs in about a
// millisecond; hardware TPMs are reported to take tens of milliseconds (not
// measured here). BENCHMARKS.md says what that means for a request rate.
//
// # Choice of library
//
// github.com/google/go-tpm's tpm2 package (pure Go, no cgo, maintained by
// Google, tagged releases) speaks TPM 2.0 directly and has the Windows TBS
// transport. go-tpm-tools builds on the legacy tpm2 API, aims at
// attestation and sealing on Google Cloud, and brings protobuf and
// confidential-computing dependencies a signer does not need.
// go-tpm-keyfiles (foxboron) implements the key file format on the same
// tpm2 API, but has no tagged release (pseudo-versions only) and its signer
// re-creates the primary key for each signature; the format is small, so
// this package encodes it with encoding/asn1 and keeps the key loaded.
//
// # macOS and Windows key stores
//
// The same shape fits the other platforms' non-exportable keys. On macOS
// a Secure Enclave key (SecKeyCreateRandomKey with
// kSecAttrTokenIDSecureEnclave, P-256 only) is a crypto.Signer whose
// SecKeyCreateSignature returns DER, as here; its persistent reference or
// its data representation (a blob only that Secure Enclave can use) is
// what would go into a keystore.Store, with the same LoadOrCreate rules.
// On Windows, CNG's "Microsoft Platform Crypto Provider" (NCryptCreatePersistedKey)
// keeps a key in the TPM under a name: the key name goes into the store,
// NCryptSignHash signs and returns r||s, which such a Signer converts to
// DER as this one does. Both need cgo or syscalls and would be modules of
// their own, like this one.
//
// # Testing
//
// The tests run against two software TPMs (Debian's swtpm):
// scripts/with-swtpm.sh bash -c 'cd tpmkey && go test ./...'. Without
// them, TestTPM… tests skip and say how to run them; with DPOP_FULL_TEST=1
// they fail instead.
//
// [draft-bottomley-tpm2-keys]: https://www.hansenpartnership.com/draft-bottomley-tpm2-keys.html
package tpmkey
