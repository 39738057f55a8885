package dpop

import (
	"fmt"
	"slices"
	"strings"
)

// keyAlgs are the proof algorithms ChooseAlg picks from, best first.
var keyAlgs = [...]string{algES256, algEdDSA, algES384, algES512, algPS256, algRS256}

// ChooseAlg returns the best proof algorithm that every list admits, for a
// new key. The order is ES256 (small, fast, accepted everywhere), EdDSA (as
// fast and smaller, less widely accepted), ES384, ES512, then PS256 and
// RS256 (RSA: signing is about 30 times slower). keystore.LoadOrCreate can
// make a key for each. Pass the server's [Metadata.DPoPSigningAlgValuesSupported] (RFC 9449
// §5.1) and, after a refusal, the algs of its [ChallengeError] (§7.1). An
// empty list admits every algorithm, so ChooseAlg() is ES256. Make the key
// with keystore.LoadOrCreate's KeyOptions{Alg: alg} and the signer with
// NewSigner's SignerOptions{Alg: alg} (which tells RS256 from PS256).
//
// A server whose metadata lists no algorithm does not announce DPoP at all;
// [Metadata.CheckSigner] reports that.
func ChooseAlg(accepted ...[]string) (string, error) {
	for _, a := range keyAlgs {
		if admitted(a, accepted) {
			return a, nil
		}
	}
	var lists []string
	for _, l := range accepted {
		if len(l) > 0 {
			lists = append(lists, quote(strings.Join(l, " ")))
		}
	}
	return "", fmt.Errorf("dpop: no proof algorithm fits: the server accepts %s; keys can be made for %s",
		strings.Join(lists, ", and "), strings.Join(keyAlgs[:], " "))
}

func admitted(alg string, accepted [][]string) bool {
	for _, l := range accepted {
		if len(l) > 0 && !slices.Contains(l, alg) {
			return false
		}
	}
	return true
}
