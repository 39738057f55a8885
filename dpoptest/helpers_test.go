package dpoptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// clientKey is a client's DPoP key; its proofs are made with go-jose only.
type clientKey struct {
	t    testing.TB
	priv crypto.Signer
	alg  jose.SignatureAlgorithm
	jkt  string
}

var rsaKey *rsa.PrivateKey // generated once, RSA is slow

func newClientKey(t testing.TB, alg string) *clientKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "PS256", "RS256":
		if rsaKey == nil {
			rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
		}
		priv = rsaKey
	default:
		t.Fatalf("unknown alg %q", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: priv.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &clientKey{t: t, priv: priv, alg: jose.SignatureAlgorithm(alg), jkt: base64.RawURLEncoding.EncodeToString(tp)}
}

// proofOpts changes a proof away from the well-formed default.
type proofOpts struct {
	typ    string                 // "" = dpop+jwt
	claims func(c map[string]any) // edits the claims before signing
}

func withClaims(f func(c map[string]any)) proofOpts { return proofOpts{claims: f} }

func withNonce(n string) proofOpts {
	return withClaims(func(c map[string]any) {
		if n != "" {
			c["nonce"] = n
		}
	})
}

func withToken(tok string) proofOpts {
	return withClaims(func(c map[string]any) { c["ath"] = athOf(tok) })
}

// proof signs a DPoP proof for method and url with go-jose.
func (k *clientKey) proof(method, url string, opts ...proofOpts) string {
	k.t.Helper()
	typ := "dpop+jwt"
	c := map[string]any{
		"jti": randString(16),
		"htm": method,
		"htu": url,
		"iat": time.Now().Unix(),
	}
	for _, o := range opts {
		if o.typ != "" {
			typ = o.typ
		}
		if o.claims != nil {
			o.claims(c)
		}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, &jose.SignerOptions{
		EmbedJWK:     true,
		ExtraHeaders: map[jose.HeaderKey]any{"typ": typ},
	})
	if err != nil {
		k.t.Fatal(err)
	}
	payload, _ := json.Marshal(c)
	jws, err := s.Sign(payload)
	if err != nil {
		k.t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		k.t.Fatal(err)
	}
	return out
}

// rawES256 builds a compact JWS from an arbitrary header, signed ES256 by
// priv; for headers go-jose refuses to produce.
func rawES256(t testing.TB, priv *ecdsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, priv, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64(sig)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func ecJWK(priv *ecdsa.PrivateKey, private bool) map[string]any {
	pad := func(n *big.Int) string { return b64(n.FillBytes(make([]byte, 32))) }
	m := map[string]any{"kty": "EC", "crv": "P-256", "x": pad(priv.X), "y": pad(priv.Y)}
	if private {
		d, err := priv.Bytes()
		if err != nil {
			panic(err)
		}
		m["d"] = b64(d)
	}
	return m
}

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sign signs claims as a JWT with k (a client assertion, RFC 7523 §3).
func (k *clientKey) sign(claims map[string]any) string {
	k.t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		k.t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		k.t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		k.t.Fatal(err)
	}
	return out
}
