package keystore

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
)

// KeyOptions configures the key that [LoadOrCreate] generates. A nil
// *KeyOptions means the defaults.
type KeyOptions struct {
	// Alg is the JWS algorithm the key is for: "ES256" (the default when
	// empty; ECDSA P-256), "ES384" (P-384), "ES512" (P-521), "EdDSA"
	// (Ed25519; "Ed25519" is accepted too), or "PS256" or "RS256" (RSA
	// 2048).
	Alg string
}

// generateKey makes a new key for opts.
func generateKey(opts *KeyOptions) (crypto.Signer, error) {
	alg := ""
	if opts != nil {
		alg = opts.Alg
	}
	switch alg {
	case "", "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA", "Ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "PS256", "RS256":
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return nil, fmt.Errorf("keystore: unsupported key algorithm %s: want ES256, ES384, ES512, EdDSA, PS256 or RS256", quote(alg))
}

// MarshalKey encodes key in the format every [Store] of this package holds
// keys in: PKCS #8 DER ([x509.MarshalPKCS8PrivateKey]), unencrypted. A
// Store of your own (Vault, a database) can hold the same bytes and read
// them back with [ParseKey], so that keys move between stores. key must be
// one [ParseKey] accepts; an HSM or KMS key, whose private part cannot be
// exported, is an error.
func MarshalKey(key crypto.Signer) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("keystore: encoding key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("keystore: encoding key: %w", err)
	}
	return der, nil
}

// ParseKey decodes a key that [MarshalKey] encoded: PKCS #8 DER holding an
// ECDSA key on P-256, P-384 or P-521, an Ed25519 key, or an RSA key of at
// least 2048 bits, the key types DPoP signs with (RFC 9449 §4.2, RFC 7518
// §3). Anything else is an error that does not quote the input.
func ParseKey(der []byte) (crypto.Signer, error) {
	key, err := parseKey(der)
	if err != nil {
		return nil, fmt.Errorf("keystore: parsing key: %w", err)
	}
	return key, nil
}

// parseKey is ParseKey with errors that [CorruptError] wraps.
func parseKey(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, foreignError{err} // it may name what der holds, at any length
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
	if err := checkKey(s); err != nil {
		return nil, err
	}
	return s, nil
}

// checkKey accepts the key types and sizes DPoP can sign with.
func checkKey(key crypto.Signer) error {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k == nil || k.Curve == nil {
			return errors.New("ECDSA key without a curve")
		}
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
		}
		if k.D == nil || k.X == nil || k.Y == nil {
			return errors.New("ECDSA key without D, X or Y (a zero key?)")
		}
		// Stored is D alone: a public half that is not D's would come
		// back as another key, with another thumbprint.
		d, err := k.Bytes()
		if err != nil {
			return fmt.Errorf("invalid ECDSA key: %w", err)
		}
		if again, err := ecdsa.ParseRawPrivateKey(k.Curve, d); err != nil || !again.PublicKey.Equal(&k.PublicKey) {
			return errors.New("ECDSA key whose public half is not its private scalar's")
		}
		return nil
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return fmt.Errorf("Ed25519 private key of %d bytes: want %d", len(k), ed25519.PrivateKeySize)
		}
		// Stored is the seed alone: see the ECDSA case.
		if !bytes.Equal(ed25519.NewKeyFromSeed(k.Seed())[ed25519.SeedSize:], k[ed25519.SeedSize:]) {
			return errors.New("Ed25519 key whose public half is not its seed's (a zero key?)")
		}
		return nil
	case *rsa.PrivateKey:
		if k == nil || k.N == nil {
			return errors.New("RSA key without a modulus")
		}
		if bits := k.N.BitLen(); bits < 2048 {
			return fmt.Errorf("RSA key of %d bits: want at least 2048", bits)
		}
		return nil
	case nil:
		return errors.New("the key is nil")
	}
	return fmt.Errorf("unsupported key type %T", key)
}

// LoadKey returns the key stored under name: an error matching ErrNotFound
// if there is none, a [*CorruptError] naming the entry if it does not parse.
func LoadKey(s Store, name string) (crypto.Signer, error) {
	if s == nil {
		return nil, fmt.Errorf("keystore: LoadKey %s: the Store is nil", quote(name))
	}
	der, err := s.Get(name)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(der)
	if err != nil {
		return nil, &CorruptError{Name: name, Err: err}
	}
	return key, nil
}

// LoadOrCreate returns the key stored under name in s, or generates one as
// opts says, stores it with [Store.Create] and returns it. An existing key
// is returned whatever its type: opts only applies to a new key.
//
// It never replaces a stored key. If another process creates the entry
// first, LoadOrCreate returns that process's key, so processes that start at
// the same moment end up with the same key. A stored entry that does not
// parse is a [*CorruptError] naming it, never a reason for a new key.
func LoadOrCreate(s Store, name string, opts *KeyOptions) (crypto.Signer, error) {
	key, err := LoadKey(s, name)
	if !errors.Is(err, ErrNotFound) {
		return key, err
	}
	key, err = generateKey(opts)
	if err != nil {
		return nil, err
	}
	der, err := MarshalKey(key)
	if err != nil {
		return nil, err
	}
	err = s.Create(name, der)
	if errors.Is(err, ErrExist) {
		// Another process won the race: use its key.
		return LoadKey(s, name)
	}
	if err != nil {
		return nil, err
	}
	return key, nil
}
