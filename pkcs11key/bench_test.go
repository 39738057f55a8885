package pkcs11key

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/dpopkit/dpop"
)

// BenchmarkProof measures one DPoP proof per signer kind: "memory" is an
// in-process ECDSA P-256 key, the floor of this run; "pkcs11" is a P-256
// key on the softhsm2 token of DPOP_PKCS11_MODULE (one C_SignInit and
// C_Sign per proof). "pkcs11/parallel" uses crypto11's session pool.
func BenchmarkProof(b *testing.B) {
	mem, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("memory", func(b *testing.B) { benchProof(b, mem) })
	b.Run("pkcs11", func(b *testing.B) { benchProof(b, newKey(b, openToken(b))) })
	b.Run("pkcs11/parallel", func(b *testing.B) {
		s := mustSigner(b, newKey(b, openToken(b)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Proof("GET", "https://rs.example/api/things", nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func benchProof(b *testing.B, key crypto.Signer) {
	s := mustSigner(b, key)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Proof("GET", "https://rs.example/api/things", nil); err != nil {
			b.Fatal(err)
		}
	}
}

func mustSigner(b *testing.B, key crypto.Signer) *dpop.Signer {
	b.Helper()
	s, err := dpop.NewSigner(key, nil)
	if err != nil {
		b.Fatal(err)
	}
	return s
}
