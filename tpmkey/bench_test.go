package tpmkey

import (
	"crypto"
	"testing"

	"github.com/dpopkit/dpop/internal/hwkeytest"
)

// BenchmarkProof measures one DPoP proof with a key in the TPM at
// DPOP_TPM_SOCKET (swtpm over a Unix socket: one connection and one
// TPM2_Sign per proof), beside an in-memory key; "tpm/parallel" shows that
// proofs queue at the TPM.
func BenchmarkProof(b *testing.B) {
	hwkeytest.BenchmarkProof(b, "tpm", func(tb testing.TB) crypto.Signer {
		return mustGenerate(tb, openTPM(tb, "DPOP_TPM_SOCKET"))
	})
}
