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
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"
)

// TestMarshalParseKey: every key type LoadOrCreate makes survives
// MarshalKey and ParseKey, and is the same bytes a Store holds.
func TestMarshalParseKey(t *testing.T) {
	for _, tc := range algTests {
		t.Run(tc.alg, func(t *testing.T) {
			var s MemoryStore
			key, err := LoadOrCreate(&s, "key", &KeyOptions{Alg: tc.alg})
			if err != nil {
				t.Fatal(err)
			}
			der, err := MarshalKey(key)
			if err != nil {
				t.Fatalf("MarshalKey = %v", err)
			}
			if stored, _ := s.Get("key"); !bytes.Equal(der, stored) {
				t.Errorf("MarshalKey = %x; want the stored bytes %x", der, stored)
			}
			got, err := ParseKey(der)
			if err != nil {
				t.Fatalf("ParseKey = %v", err)
			}
			if !bytes.Equal(publicDER(t, got), publicDER(t, key)) {
				t.Error("ParseKey returned another key")
			}
		})
	}
}

// TestMarshalParseKeyRefuses: keys DPoP cannot sign with, and bytes that
// are no key, are errors prefixed "keystore: " that do not quote the input.
func TestMarshalParseKeyRefuses(t *testing.T) {
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mine, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	_, ed2, _ := ed25519.GenerateKey(rand.Reader)
	edOther := append(ed25519.PrivateKey(nil), ed[:ed25519.SeedSize]...)
	edOther = append(edOther, ed2[ed25519.SeedSize:]...)
	for name, key := range map[string]crypto.Signer{
		"P-224":         p224,
		"RSA 1024":      rsa1024,
		"nil":           nil,
		"nil ECDSA":     (*ecdsa.PrivateKey)(nil),
		"no curve":      &ecdsa.PrivateKey{},
		"nil RSA":       (*rsa.PrivateKey)(nil),
		"short Ed25519": ed25519.PrivateKey{1, 2, 3},
		// Zero and half-made keys: a curve and nothing else, a scalar
		// with another key's public half, a zero Ed25519 key.
		"zero P-256":         &ecdsa.PrivateKey{PublicKey: ecdsa.PublicKey{Curve: elliptic.P256()}},
		"P-256 without X, Y": &ecdsa.PrivateKey{PublicKey: ecdsa.PublicKey{Curve: elliptic.P256()}, D: mine.D},
		"P-256 D zero":       &ecdsa.PrivateKey{PublicKey: other.PublicKey, D: new(big.Int)},
		"P-256 mismatched":   &ecdsa.PrivateKey{PublicKey: other.PublicKey, D: mine.D},
		"zero Ed25519":       make(ed25519.PrivateKey, ed25519.PrivateKeySize),
		"Ed25519 mismatched": edOther,
		"zero RSA":           &rsa.PrivateKey{},
		"RSA without D": &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 2047), E: 65537},
			Primes: []*big.Int{nil, nil}},
	} {
		noPanic(t, "MarshalKey("+name+")", func() {
			if der, err := MarshalKey(key); err == nil || !strings.HasPrefix(err.Error(), "keystore: ") {
				t.Errorf("MarshalKey(%s) = %x, %v; want a keystore: error", name, der, err)
			}
		})
	}
	if _, err := MarshalKey(nil); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Errorf("MarshalKey(nil) = %v; want an error saying the key is nil", err)
	}
	p224DER, _ := x509.MarshalPKCS8PrivateKey(p224)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsa1024)
	for name, der := range map[string][]byte{
		"P-224":    p224DER,
		"RSA 1024": rsaDER,
		"empty":    nil,
		"text":     []byte("secret-looking-text"),
	} {
		key, err := ParseKey(der)
		if key != nil || err == nil || !strings.HasPrefix(err.Error(), "keystore: ") {
			t.Errorf("ParseKey(%s) = %v, %v; want a keystore: error", name, key, err)
			continue
		}
		if strings.Contains(err.Error(), "secret-looking") {
			t.Errorf("ParseKey(%s) error quotes the input: %v", name, err)
		}
	}
}

// TestParseKeyHostile: the error about stored bytes that are no key this
// package reads is short and escaped, whatever those bytes name: here a
// PKCS #8 algorithm identifier of thousands of arcs, which x509's error
// quotes in full.
func TestParseKeyHostile(t *testing.T) {
	oid := make(asn1.ObjectIdentifier, 8<<10)
	for i := range oid {
		oid[i] = 1 << 30
	}
	oid[0], oid[1] = 1, 2
	der, err := asn1.Marshal(struct {
		Version    int
		Algo       pkix.AlgorithmIdentifier
		PrivateKey []byte
	}{Algo: pkix.AlgorithmIdentifier{Algorithm: oid}, PrivateKey: []byte{0}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseKey(der)
	checkErrorText(t, "ParseKey(a long OID)", err)
	var s MemoryStore
	s.Put("key", der)
	_, err = LoadKey(&s, "key")
	checkErrorText(t, "LoadKey(a long OID)", err)
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Errorf("LoadKey = %v; want a *CorruptError", err)
	}
}
