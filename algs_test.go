package dpop_test

import (
	"strings"
	"testing"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/keystore"
)

func TestChooseAlg(t *testing.T) {
	for _, tc := range []struct {
		name     string
		accepted [][]string
		want     string // "" means an error
	}{
		{"nothing said", nil, "ES256"},
		{"ES256 among others", [][]string{{"RS256", "PS256", "ES256", "EdDSA"}}, "ES256"},
		{"EdDSA before RSA", [][]string{{"RS256", "PS256", "EdDSA"}}, "EdDSA"},
		{"ES384 before RSA", [][]string{{"PS256", "ES384"}}, "ES384"},
		{"RS256 only", [][]string{{"RS256"}}, "RS256"},
		{"challenge narrows metadata", [][]string{{"ES256", "EdDSA", "PS256"}, {"EdDSA", "PS256"}}, "EdDSA"},
		{"empty challenge list", [][]string{{"PS256"}, nil}, "PS256"},
		{"unknown algs only", [][]string{{"ES256K", "Ed448", "HS256"}}, ""},
		{"disjoint lists", [][]string{{"ES256"}, {"EdDSA"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dpop.ChooseAlg(tc.accepted...)
			if tc.want == "" {
				if err == nil || !strings.HasPrefix(err.Error(), "dpop: ") {
					t.Errorf("ChooseAlg(%q) = %q, %v; want a dpop: error", tc.accepted, got, err)
				}
				return
			}
			if got != tc.want || err != nil {
				t.Errorf("ChooseAlg(%q) = %q, %v; want %q", tc.accepted, got, err, tc.want)
			}
		})
	}
}

// TestChooseAlgMakesKeys checks that every algorithm ChooseAlg can return
// gets a key from keystore.LoadOrCreate and a signer of that algorithm.
func TestChooseAlgMakesKeys(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "ES384", "ES512", "PS256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			got, err := dpop.ChooseAlg([]string{alg})
			if got != alg || err != nil {
				t.Fatalf("ChooseAlg([%s]) = %q, %v", alg, got, err)
			}
			key, err := keystore.LoadOrCreate(&keystore.MemoryStore{}, "k", &keystore.KeyOptions{Alg: got})
			if err != nil {
				t.Fatal(err)
			}
			s, err := dpop.NewSigner(key, &dpop.SignerOptions{Alg: got})
			if err != nil || s.Alg() != alg {
				t.Fatalf("NewSigner(key for %s) = %v; want alg %s", alg, err, alg)
			}
		})
	}
}

// TestChooseAlgServerStrings: the algs a server sent appear in the error
// escaped and cut short.
func TestChooseAlgServerStrings(t *testing.T) {
	_, err := dpop.ChooseAlg([]string{hostileText, "HS256"}, []string{"RS256\x1b[0m"})
	if err == nil {
		t.Fatal("ChooseAlg: no error")
	}
	checkCleanText(t, "error text", err.Error(), 2<<10)
}
