package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// testKeys caches one key per algorithm; RSA generation is slow.
var testKeys = sync.OnceValue(func() map[string]crypto.Signer {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	return map[string]crypto.Signer{algES256: p256, algES384: p384, algES512: p521, algEdDSA: ed, algPS256: rsaKey, algRS256: rsaKey}
})

func newTestSigner(t testing.TB, alg string) *Signer {
	t.Helper()
	s, err := NewSigner(testKeys()[alg], &SignerOptions{Alg: alg})
	if err != nil {
		t.Fatalf("NewSigner(%s): %v", alg, err)
	}
	return s
}

// proofClaims are the claims of RFC 9449 §4.2, decoded by encoding/json.
type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath"`
	Nonce string `json:"nonce"`
}

// verifyJOSE checks proof with go-jose alone: the embedded public JWK, typ,
// alg and the signature. It returns the claims and the JWK.
func verifyJOSE(t testing.TB, proof, alg string) (proofClaims, *jose.JSONWebKey) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil {
		t.Fatalf("go-jose cannot parse proof: %v\n%s", err, proof)
	}
	h := jws.Signatures[0].Protected
	if h.ExtraHeaders["typ"] != "dpop+jwt" {
		t.Fatalf("typ = %v; want dpop+jwt", h.ExtraHeaders["typ"])
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		t.Fatalf("jwk missing or not public: %+v", h.JSONWebKey)
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		t.Fatalf("go-jose rejects the signature (%s): %v", alg, err)
	}
	var c proofClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("claims are not JSON: %v: %s", err, payload)
	}
	return c, h.JSONWebKey
}

// rsNonce answers like a resource server that requires nonce "n<k>" and
// rotates it each rotate requests (never, when 0).
func rsChallenge(w http.ResponseWriter, nonce string) {
	w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="ES256 EdDSA"`)
	w.Header().Set("DPoP-Nonce", nonce)
	w.WriteHeader(http.StatusUnauthorized)
	io.WriteString(w, "nonce please")
}

func staticToken(s string) oauth2.TokenSource {
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: s, TokenType: "DPoP"})
}

// recovered runs f and returns what it panicked with.
func recovered(f func()) (r any) {
	defer func() { r = recover() }()
	f()
	return nil
}
