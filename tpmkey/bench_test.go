package tpmkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/dpopkit/dpop"
)

// BenchmarkProof measures one DPoP proof per signer kind: "memory" is an
// in-process ECDSA P-256 key, the floor of this run; "tpm" is a key in the
// TPM at DPOP_TPM_SOCKET (swtpm over a Unix socket: one connection and one
// TPM2_Sign per proof). "tpm/parallel" shows that proofs queue at the TPM.
func BenchmarkProof(b *testing.B) {
	mem, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("memory", func(b *testing.B) { benchProof(b, mem) })
	b.Run("tpm", func(b *testing.B) { benchProof(b, mustGenerate(b, openTPM(b, "DPOP_TPM_SOCKET"))) })
	b.Run("tpm/parallel", func(b *testing.B) {
		s := mustSigner(b, mustGenerate(b, openTPM(b, "DPOP_TPM_SOCKET")))
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
