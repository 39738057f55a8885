package resource

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// TestThumbprintGoJose checks RFC 7638 thumbprints against go-jose for
// each key type, with EC coordinates that have leading zero bytes (they
// are kept at the curve's size, RFC 7518 §6.2.1.2).
func TestThumbprintGoJose(t *testing.T) {
	var keys []*testKey
	for _, alg := range []string{"ES384", "ES512", "EdDSA", "PS256"} {
		keys = append(keys, newTestKey(t, alg))
	}
	for found := 0; found < 2; {
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		b, _ := priv.PublicKey.Bytes()
		if b[1] == 0 && found == 0 || b[33] == 0 && found == 1 { // x, then y, with a leading zero
			keys = append(keys, keyOf(t, "ES256", priv))
			found++
		}
	}
	for _, k := range keys {
		raw, _ := json.Marshal(k.jwk)
		pk, e := parseJWK(raw, k.alg, supportedAlgs[k.alg])
		if e != nil {
			t.Fatalf("%s: %v", k.alg, e)
		}
		if pk.jkt != k.jkt {
			t.Errorf("%s: thumbprint %s; go-jose %s", k.alg, pk.jkt, k.jkt)
		}
	}
	// RFC 7638 §3.1's example key.
	rfc := `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	pk, e := parseJWK([]byte(rfc), "RS256", supportedAlgs["RS256"])
	if e != nil {
		t.Fatal(e)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; pk.jkt != want {
		t.Errorf("RFC 7638 §3.1 thumbprint = %s; want %s", pk.jkt, want)
	}
}

// TestRSAKeyBounds checks that RSA moduli outside 2048..4096 bits are
// refused by their length, before any arithmetic: a 16384-bit key must
// not buy a client the server's CPU.
func TestRSAKeyBounds(t *testing.T) {
	for _, tt := range []struct {
		bytes int
		want  string
	}{{2048, "too large"}, {1024, "too large"}, {513, "too large"}, {255, "2048 to 4096"}, {100, "2048 to 4096"}} {
		n := make([]byte, tt.bytes)
		n[0] = 0xc1
		_, err := rsaKey([]byte(base64.RawURLEncoding.EncodeToString(n)), []byte("AQAB"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%d-bit modulus: %v; want %q", 8*tt.bytes, err, tt.want)
		}
	}
	for _, bits := range []int{2048, 4096} {
		n := make([]byte, bits/8)
		n[0], n[len(n)-1] = 0x80, 1
		if _, err := rsaKey([]byte(base64.RawURLEncoding.EncodeToString(n)), []byte("AQAB")); err != nil {
			t.Errorf("%d-bit modulus: %v", bits, err)
		}
	}
}
