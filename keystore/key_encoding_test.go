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
	for name, key := range map[string]crypto.Signer{
		"P-224":         p224,
		"RSA 1024":      rsa1024,
		"nil ECDSA":     (*ecdsa.PrivateKey)(nil),
		"no curve":      &ecdsa.PrivateKey{},
		"nil RSA":       (*rsa.PrivateKey)(nil),
		"short Ed25519": ed25519.PrivateKey{1, 2, 3},
	} {
		if der, err := MarshalKey(key); err == nil || !strings.HasPrefix(err.Error(), "keystore: ") {
			t.Errorf("MarshalKey(%s) = %x, %v; want a keystore: error", name, der, err)
		}
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
