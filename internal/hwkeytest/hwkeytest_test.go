package hwkeytest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/internal/hwkeytest"
)

// The harness, run with a key in memory in place of a device's.

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHelperProcess(t *testing.T) {
	hwkeytest.HelperProcess(hwkeytest.Modes{
		"reload": func() (string, error) {
			der, err := os.ReadFile(os.Getenv("HWKEYTEST_KEY_FILE"))
			if err != nil {
				return "", err
			}
			k, err := x509.ParsePKCS8PrivateKey(der)
			if err != nil {
				return "", err
			}
			return hwkeytest.Use(k.(crypto.Signer))
		},
		"race": func() (string, error) {
			if err := hwkeytest.WaitGate(); err != nil {
				return "", err
			}
			return "through", nil
		},
	})
}

func TestFlow(t *testing.T) { hwkeytest.Flow(t, newKey(t)) }

func TestConcurrent(t *testing.T) { hwkeytest.Concurrent(t, newKey(t)) }

func TestReloadInNewProcess(t *testing.T) {
	k := newKey(t)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, der, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	hwkeytest.ReloadInNewProcess(t, s, "HWKEYTEST_KEY_FILE="+file)
}

func TestRace(t *testing.T) {
	got := hwkeytest.Race(t, 3, "race")
	if want := []string{"through", "through", "through"}; !slices.Equal(got, want) {
		t.Errorf("Race = %q; want %q", got, want)
	}
}

func TestNeed(t *testing.T) {
	t.Setenv("HWKEYTEST_PART", "/dev/part")
	if got := hwkeytest.Need(t, "HWKEYTEST_PART", "run it somehow"); got != "/dev/part" {
		t.Errorf("Need = %q; want /dev/part", got)
	}
	t.Setenv("DPOP_FULL_TEST", "")
	t.Setenv("HWKEYTEST_PART", "")
	var skipped bool
	t.Run("unset", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		hwkeytest.Need(t, "HWKEYTEST_PART", "run it somehow")
	})
	if !skipped {
		t.Error("Need with the variable unset did not skip the test")
	}
}
