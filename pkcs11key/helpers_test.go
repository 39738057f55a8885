package pkcs11key

import (
	"os"
	"strings"
	"testing"

	"github.com/dpopkit/dpop/internal/hwkeytest"
)

// runWith is the command that runs the PKCS #11 tests; they skip without it.
const runWith = "run them with scripts/with-softhsm.sh bash -c 'cd pkcs11key && go test ./...' (it sets up softhsm2)"

// testConfig returns the softhsm2 token's configuration from the
// environment. Without one the test skips, or fails under
// DPOP_FULL_TEST=1.
func testConfig(t testing.TB) *Config {
	t.Helper()
	hwkeytest.Need(t, "DPOP_PKCS11_MODULE", runWith)
	return envConfig()
}

func envConfig() *Config {
	return &Config{
		Module:     os.Getenv("DPOP_PKCS11_MODULE"),
		TokenLabel: os.Getenv("DPOP_PKCS11_TOKEN"),
		PIN:        os.Getenv("DPOP_PKCS11_PIN"),
	}
}

// openToken opens the test token, closed at the test's end.
func openToken(t testing.TB) *Token {
	t.Helper()
	tok, err := Open(testConfig(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { tok.Close() })
	return tok
}

// newKey generates a key labelled after the test, deleted at its end.
func newKey(t testing.TB, tok *Token) *Key {
	t.Helper()
	label := strings.ReplaceAll(t.Name(), "/", "-")
	k, err := tok.GenerateKey(label)
	if err != nil {
		t.Fatalf("GenerateKey(%q): %v", label, err)
	}
	t.Cleanup(func() { tok.DeleteKey(label) })
	return k
}

// TestHelperProcess is not a test: it is the body of the helper processes
// (hwkeytest.Start), which open the token of the environment.
func TestHelperProcess(t *testing.T) {
	hwkeytest.HelperProcess(hwkeytest.Modes{
		// Find the key labelled DPOP_PKCS11KEY_LABEL and use it against
		// the test's server.
		"reload": func() (string, error) {
			tok, err := Open(envConfig())
			if err != nil {
				return "", err
			}
			defer tok.Close()
			k, err := tok.FindKey(os.Getenv("DPOP_PKCS11KEY_LABEL"))
			if err != nil {
				return "", err
			}
			return hwkeytest.Use(k)
		},
	})
}
