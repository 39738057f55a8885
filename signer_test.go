package dpop_test

import (
	"strings"
	"testing"

	"github.com/dpopkit/dpop"
)

// TestNilSigner: the methods of a nil or zero *Signer that have no error
// result return zero values; Proof and CheckSigner return an error that
// says to make the Signer with NewSigner. None panics.
func TestNilSigner(t *testing.T) {
	for name, s := range map[string]*dpop.Signer{"nil": nil, "zero": new(dpop.Signer)} {
		t.Run(name, func(t *testing.T) {
			var alg, jkt string
			var proofErr, checkErr error
			if p := noPanic(func() {
				alg, jkt = s.Alg(), s.Thumbprint()
				_, proofErr = s.Proof("GET", "https://rs.example/", nil)
				checkErr = new(dpop.Metadata).CheckSigner(s)
			}); p != nil {
				t.Fatalf("panic: %v", p)
			}
			if alg != "" || jkt != "" {
				t.Errorf("Alg, Thumbprint = %q, %q; want \"\", \"\"", alg, jkt)
			}
			for name, err := range map[string]error{"Proof": proofErr, "CheckSigner": checkErr} {
				if err == nil || !strings.Contains(err.Error(), "NewSigner") {
					t.Errorf("%s = %v; want an error naming NewSigner", name, err)
				}
			}
		})
	}
}
