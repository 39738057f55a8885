package dpop_test

import (
	"strings"
	"testing"

	"github.com/dpopkit/dpop"
)

// TestNilSigner: the methods of a nil or zero *Signer that have no error
// result return zero values, and CheckSigner says the signer has no key.
func TestNilSigner(t *testing.T) {
	for name, s := range map[string]*dpop.Signer{"nil": nil, "zero": new(dpop.Signer)} {
		t.Run(name, func(t *testing.T) {
			var alg, jkt string
			var err error
			if p := noPanic(func() {
				alg, jkt = s.Alg(), s.Thumbprint()
				err = new(dpop.Metadata).CheckSigner(s)
			}); p != nil {
				t.Fatalf("panic: %v", p)
			}
			if alg != "" || jkt != "" || err == nil || !strings.Contains(err.Error(), "Signer") {
				t.Errorf("Alg, Thumbprint, CheckSigner = %q, %q, %v; want \"\", \"\" and an error naming Signer", alg, jkt, err)
			}
		})
	}
}
