// Package pkcs11key signs DPoP proofs with a key held by a PKCS #11 token
// (an HSM, a YubiKey or smart card through its PKCS #11 module, a cloud
// HSM): a [crypto.Signer] for dpop.NewSigner whose private key stays on the
// token.
//
//	tok, err := pkcs11key.Open(&pkcs11key.Config{
//		Module: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "dpop", PIN: pin,
//	})
//	key, err := tok.FindKey("dpop-key") // or tok.GenerateKey("dpop-key") once
//	signer, err := dpop.NewSigner(key, nil)
//
// A key is found by its label (CKA_LABEL, [Token.FindKey]) or its ID
// (CKA_ID, [Token.FindKeyByID]); a label naming two keys is an error, not a
// choice; either way a [Key] prints as both. [Token.GenerateKey] creates an
// ECDSA P-256 key (ES256) on the token, sensitive, not extractable and
// private. PKCS #11 has no create-if-absent, so unlike tpmkey.LoadOrCreate
// it is a provisioning step to run once, not at every start (see its doc).
//
// # What a token key protects against, and what it does not
//
// It protects against copying the key: malware reading the user's files, a
// stolen backup, a leaked keychain or configuration get nothing that signs
// elsewhere, so a stolen DPoP-bound token cannot be replayed from another
// machine (RFC 9449 §11.1). A removable token (a YubiKey) adds that the key
// is gone when the token is unplugged.
//
// It does not protect against a process that runs on the machine with the
// token and its PIN while the attacker controls it: it can ask the token to
// sign, as this package does. The PIN is a secret of the configuration and
// belongs in a secret store, not in a file next to the program. A [Config]
// prints, logs and encodes without it (fmt, log/slog, encoding/json).
//
// # Concurrency and timeouts
//
// A [Token] keeps crypto11's pool of sessions, logged in once; a signature
// takes a session for one C_SignInit/C_Sign pair, so many goroutines may
// share one dpop.Transport. The wait for a free session is bounded by
// [Config.Timeout]; the module's calls themselves cannot be interrupted
// and are bounded by the module (a token that hangs inside C_Sign hangs the
// caller's goroutine, not the others beyond the pool's size).
//
// # Choice of library
//
// github.com/ThalesGroup/crypto11 (tagged releases, maintained by Thales,
// the continuation of ThalesIgnite/crypto11) turns a PKCS #11 key into a
// crypto.Signer: it finds the key pair and its public key, converts the
// token's r||s ECDSA signature into the ASN.1 DER crypto.Signer returns,
// and keeps a pool of logged-in sessions, because a PKCS #11 session must
// not be used by two threads at once. github.com/miekg/pkcs11, which it
// wraps, is the raw Cryptoki binding: using it directly would mean writing
// that session pool, the login handling and the signature conversion here,
// which is where PKCS #11 code goes wrong. Both need cgo (the module is a
// C shared library), hence this module of its own: the core module and
// keystore stay pure Go.
//
// # macOS and Windows key stores
//
// The platforms' own non-exportable keys fit the same shape: a Secure
// Enclave key on macOS (SecKeyCreateRandomKey with
// kSecAttrTokenIDSecureEnclave) and a CNG key in Windows' Microsoft Platform
// Crypto Provider (the TPM behind NCrypt) are each a crypto.Signer found by
// a name or an application tag, as a key is found by its label here; see
// tpmkey's documentation for how their key references would be kept in a
// keystore.Store. macOS also exposes smart cards through CryptoTokenKit
// rather than PKCS #11; OpenSC's PKCS #11 module covers most of them.
//
// # Testing
//
// The tests run against a software token (Debian's softhsm2):
// scripts/with-softhsm.sh bash -c 'cd pkcs11key && go test ./...'. Without
// it, TestPKCS11… tests skip and say how to run them; with DPOP_FULL_TEST=1
// they fail instead.
package pkcs11key
