package pkcs11key

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// DefaultTimeout bounds the wait for a session of a token when
// [Config.Timeout] is zero.
const DefaultTimeout = 10 * time.Second

var (
	// ErrNoToken means that the module cannot be loaded or has no token
	// with the configured label.
	ErrNoToken = errors.New("pkcs11key: no PKCS #11 token available")
	// ErrKeyNotFound means that the token holds no key pair with the label
	// or ID.
	ErrKeyNotFound = errors.New("pkcs11key: key not found on the token")
	// ErrExist means that GenerateKey found a key with the label already.
	ErrExist = errors.New("pkcs11key: a key with this label exists on the token")
)

// Config names a token. The required fields are Module and TokenLabel.
//
// The PIN is a secret: Config prints, logs and encodes without it, whatever
// the way. Format writes "[redacted]" in its place under every fmt verb,
// LogValue does the same for log/slog's handlers, and MarshalJSON leaves
// it out, so a Config decoded from its JSON has no PIN (and Open does not
// try a wrong one). Two cases escape these methods, as they escape every
// Format method: fmt prints a struct of yours that holds a Config in an
// unexported field field by field, without calling them (give your struct
// a Format of its own), and %p of a Config value rather than a pointer,
// which go vet reports, prints fmt's error text with the fields raw.
type Config struct {
	Module     string        // path of the PKCS #11 module (.so, .dll, .dylib)
	TokenLabel string        // label of the token (CKA_LABEL of its slot's token)
	PIN        string        // user PIN; empty for a token without login
	Timeout    time.Duration // bounds the wait for a session; if zero, DefaultTimeout
}

// Format prints c without its PIN, whatever the verb.
func (c Config) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "pkcs11key.Config{Module: %q, TokenLabel: %q, PIN: %s, Timeout: %v}", c.Module, c.TokenLabel, redact(c.PIN), c.Timeout)
}

// LogValue logs c as a group of its fields, the PIN redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("Module", c.Module),
		slog.String("TokenLabel", c.TokenLabel),
		slog.String("PIN", redact(c.PIN)),
		slog.Duration("Timeout", c.Timeout),
	)
}

// MarshalJSON encodes c without its PIN.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Module     string
		TokenLabel string
		Timeout    time.Duration
	}{c.Module, c.TokenLabel, c.Timeout})
}

var (
	_ fmt.Formatter  = Config{}
	_ slog.LogValuer = Config{}
	_ json.Marshaler = Config{}
)

func redact(pin string) string {
	if pin == "" {
		return `""`
	}
	return "[redacted]"
}

// Token is an open session pool on a PKCS #11 token, logged in as the
// user. It is safe for concurrent use: each call takes a session from the
// pool for the length of one PKCS #11 operation, and waits at most the
// configured timeout for one (crypto11's pool).
type Token struct {
	ctx  *crypto11.Context
	desc string
}

// Open loads cfg.Module, finds the token labelled cfg.TokenLabel and logs
// in with cfg.PIN. A module that cannot be loaded, or without that token,
// is an error matching [ErrNoToken].
func Open(cfg *Config) (*Token, error) {
	if cfg == nil || cfg.Module == "" || cfg.TokenLabel == "" {
		return nil, errors.New("pkcs11key: Open: Config.Module and Config.TokenLabel are required")
	}
	desc := fmt.Sprintf("token %q of %s", cfg.TokenLabel, cfg.Module)
	if _, err := os.Stat(cfg.Module); err != nil {
		return nil, fmt.Errorf("%w: module: %w", ErrNoToken, err)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, err := crypto11.Configure(&crypto11.Config{
		Path:              cfg.Module,
		TokenLabel:        cfg.TokenLabel,
		Pin:               cfg.PIN,
		LoginNotSupported: cfg.PIN == "",
		PoolWaitTimeout:   timeout,
	})
	if err != nil {
		if errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)) || errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_LEN_RANGE)) {
			return nil, fmt.Errorf("pkcs11key: %s: the PIN was refused: %w", desc, err)
		}
		// crypto11 does not export this error; TestPKCS11Absent notices
		// if its text changes.
		if err.Error() == "could not find PKCS#11 token" {
			return nil, fmt.Errorf("%w: %s: no such token", ErrNoToken, desc)
		}
		return nil, fmt.Errorf("pkcs11key: %s: %w", desc, err)
	}
	return &Token{ctx: ctx, desc: desc}, nil
}

// Close logs out and closes the token's sessions.
func (t *Token) Close() error { return t.ctx.Close() }

// Key is a key pair held by a token: a [crypto.Signer] for dpop.NewSigner
// whose private key is used through the token (CKM_ECDSA for EC keys).
// It is safe for concurrent use.
type Key struct {
	s     crypto11.Signer
	label string // CKA_LABEL, as the token has it
	id    []byte // CKA_ID
}

var _ crypto.Signer = (*Key)(nil)

// Public returns the key's public key (*ecdsa.PublicKey or *rsa.PublicKey).
func (k *Key) Public() crypto.PublicKey { return k.s.Public() }

// Sign signs digest on the token and returns what crypto.Signer promises
// (ASN.1 DER for ECDSA); rand is ignored: the token draws its own.
func (k *Key) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := k.s.Sign(r, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("pkcs11key: signing with the key of %s: %w", k.name(), err)
	}
	return sig, nil
}

// Format names the key by its label and ID on the token, however it was
// found, whatever the verb: pkcs11key.Key(label "dpop-key", ID
// 9f86d081884c7d65). A Key reaches the token's session, logged in with the
// PIN: as for the secret-holding types of package dpop, there is Format and
// no String, and no verb prints its fields.
func (k *Key) Format(f fmt.State, verb rune) { io.WriteString(f, "pkcs11key.Key("+k.name()+")") }

// name is the key's label and ID, cut to 64 characters and 32 bytes: they
// come from the token.
func (k *Key) name() string {
	if len(k.id) == 0 {
		return fmt.Sprintf("label %.64q", k.label)
	}
	return fmt.Sprintf("label %.64q, ID %.32x", k.label, k.id)
}

// FindKey returns the key pair labelled label (CKA_LABEL), or an error
// matching [ErrKeyNotFound]. More than one is an error: which one signs
// must not depend on the token's order.
func (t *Token) FindKey(label string) (*Key, error) {
	return t.find(nil, []byte(label), fmt.Sprintf("label %q", label))
}

// FindKeyByID returns the key pair whose CKA_ID is id, or an error matching
// [ErrKeyNotFound].
func (t *Token) FindKeyByID(id []byte) (*Key, error) {
	return t.find(id, nil, fmt.Sprintf("ID %x", id))
}

// key returns the key of s, found by id or label: it reads the other from
// the token, so that a key has the same name however it was found. A
// token that does not say leaves it empty.
func (t *Token) key(s crypto11.Signer, id, label []byte) *Key {
	if attrs, err := t.ctx.GetAttributes(s, []crypto11.AttributeType{crypto11.CkaId, crypto11.CkaLabel}); err == nil {
		if a := attrs[crypto11.CkaId]; a != nil && id == nil {
			id = a.Value
		}
		if a := attrs[crypto11.CkaLabel]; a != nil && label == nil {
			label = a.Value
		}
	}
	return &Key{s: s, label: string(label), id: id}
}

func (t *Token) find(id, label []byte, what string) (*Key, error) {
	keys, err := t.ctx.FindKeyPairs(id, label)
	if err != nil {
		return nil, fmt.Errorf("pkcs11key: %s: finding the key with %s: %w", t.desc, what, err)
	}
	switch len(keys) {
	case 0:
		return nil, fmt.Errorf("%w: %s has none with %s", ErrKeyNotFound, t.desc, what)
	case 1:
		return t.key(keys[0], id, label), nil
	}
	return nil, fmt.Errorf("pkcs11key: %s has %d keys with %s; want one", t.desc, len(keys), what)
}

// GenerateKey creates an ECDSA P-256 key pair labelled label on the token,
// with a random CKA_ID, sensitive, not extractable and private (usable only
// after login): the private key never leaves the token. It returns an error
// matching [ErrExist] if the token shows a key with that label already.
//
// PKCS #11 has no create-if-absent, and a token need not show one
// process's new objects to another's open sessions at once (softhsm2 does
// not), so two processes generating the same label at the same moment may
// both succeed. Provision the key once, before the processes that use it
// start; [Token.FindKey] then refuses a label that names two keys rather
// than pick one.
func (t *Token) GenerateKey(label string) (*Key, error) {
	if label == "" {
		return nil, errors.New("pkcs11key: GenerateKey: empty label")
	}
	if _, err := t.FindKey(label); !errors.Is(err, ErrKeyNotFound) {
		if err == nil {
			err = fmt.Errorf("%w: %q on %s", ErrExist, label, t.desc)
		}
		return nil, err
	}
	id := make([]byte, 16)
	rand.Read(id)
	pub, err := crypto11.NewAttributeSetWithIDAndLabel(id, []byte(label))
	if err != nil {
		return nil, fmt.Errorf("pkcs11key: %w", err)
	}
	priv := pub.Copy()
	priv.Set(crypto11.CkaPrivate, true) // usable only after login
	s, err := t.ctx.GenerateECDSAKeyPairWithAttributes(pub, priv, elliptic.P256())
	if err != nil {
		return nil, fmt.Errorf("pkcs11key: %s: generating a P-256 key: %w", t.desc, err)
	}
	return &Key{s: s, label: label, id: id}, nil
}

// DeleteKey deletes the key pair labelled label from the token, or returns
// an error matching [ErrKeyNotFound]. Tokens bound to it become useless.
func (t *Token) DeleteKey(label string) error {
	k, err := t.FindKey(label)
	if err != nil {
		return err
	}
	if err := k.s.Delete(); err != nil {
		return fmt.Errorf("pkcs11key: %s: deleting %q: %w", t.desc, label, err)
	}
	return nil
}
