package pkcs11key

import (
	"crypto"
	"testing"

	"github.com/dpopkit/dpop/internal/hwkeytest"
)

// BenchmarkProof measures one DPoP proof with a P-256 key on the softhsm2
// token of DPOP_PKCS11_MODULE (one C_SignInit and C_Sign per proof),
// beside an in-memory key; "pkcs11/parallel" uses crypto11's session pool.
func BenchmarkProof(b *testing.B) {
	hwkeytest.BenchmarkProof(b, "pkcs11", func(tb testing.TB) crypto.Signer {
		return newKey(tb, openToken(tb))
	})
}
