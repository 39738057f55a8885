package dpop_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// testKeys returns one private key of each kind a Signer takes.
func testKeys(t *testing.T) map[string]crypto.Signer {
	t.Helper()
	keys := map[string]crypto.Signer{}
	for name, c := range map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys["Ed25519"] = ed
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys["RSA"] = rk
	return keys
}

// secretRenderings returns the ways the private part of key could show in
// text: its scalars in decimal, hex, as big.Int words, and its bytes as %v
// and %#v print them and in base64.
func secretRenderings(t *testing.T, key crypto.Signer) []string {
	t.Helper()
	var scalars []*big.Int
	var raw [][]byte
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		b, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		scalars = append(scalars, new(big.Int).SetBytes(b))
	case ed25519.PrivateKey:
		raw = append(raw, k.Seed(), []byte(k))
	case *rsa.PrivateKey:
		scalars = append(scalars, k.D, k.Primes[0], k.Primes[1])
	default:
		t.Fatalf("key type %T", key)
	}
	var out []string
	for _, d := range scalars {
		out = append(out, d.String(), d.Text(16), strings.Trim(fmt.Sprint(d.Bits()), "[]"))
		raw = append(raw, d.Bytes())
	}
	for _, b := range raw {
		out = append(out,
			fmt.Sprintf("%x", b), fmt.Sprintf("%X", b),
			strings.Trim(fmt.Sprint(b), "[]"),
			strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", b), "[]byte{"), "}"),
			base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b))
	}
	return out
}

// TestFormatPrintsNoSecret: no exported type of the package prints a
// private key (each key type), an access or refresh token, a client secret
// or a proof, under any verb, as a value or a pointer.
func TestFormatPrintsNoSecret(t *testing.T) {
	for keyName, key := range testKeys(t) {
		t.Run(keyName, func(t *testing.T) {
			s, err := dpop.NewSigner(key, nil)
			if err != nil {
				t.Fatal(err)
			}
			proof, err := s.Proof("POST", "https://as.example/token", &dpop.ProofOptions{AccessToken: accessSecret})
			if err != nil {
				t.Fatal(err)
			}
			secrets := append(secretRenderings(t, key), accessSecret, refreshSecret, clientSecret, proof)
			tok := &oauth2.Token{AccessToken: accessSecret, RefreshToken: refreshSecret, TokenType: "DPoP"}
			cfg := dpop.Config{
				OAuth2: &oauth2.Config{ClientID: "c", ClientSecret: clientSecret, Endpoint: oauth2.Endpoint{TokenURL: "https://as.example/token"}},
				Signer: s,
			}
			cc := dpop.ClientCredentials{
				OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: clientSecret, TokenURL: "https://as.example/token"},
				Signer: s,
			}
			tr := &dpop.Transport{Signer: s, Source: oauth2.StaticTokenSource(tok)}
			nonces := dpop.NewNonceCache(0)
			nonces.Put("https://as.example/", "n1")
			po := dpop.ProofOptions{AccessToken: accessSecret, Nonce: "n1"}
			ctx := context.Background()
			values := []struct {
				name string
				v    any
			}{
				{"Signer", *s}, {"*Signer", s},
				{"*Transport", tr},
				{"Config", cfg}, {"*Config", &cfg},
				{"ClientCredentials", cc}, {"*ClientCredentials", &cc},
				{"*NonceCache", nonces},
				{"ProofOptions", po}, {"*ProofOptions", &po},
				{"Config.TokenSource", cfg.TokenSource(ctx, tok)},
				{"Config.Client", cfg.Client(ctx, tok)},
				{"ClientCredentials.Client", cc.Client(ctx)},
				{"Metadata", dpop.Metadata{Issuer: "https://as.example"}},
				{"ChallengeError", &dpop.ChallengeError{StatusCode: 401, ErrorCode: dpop.CodeUseNonce, Nonce: "n1"}},
				{"TokenTypeError", &dpop.TokenTypeError{TokenType: "Bearer"}},
				{"CheckSigner error", (&dpop.Metadata{}).CheckSigner(s)},
			}
			for _, v := range values {
				checkNoSecret(t, v.name, v.v, secrets)
			}
		})
	}
}

// TestReadmeQuickStart checks that the first Go block of README.md is a
// complete program that compiles as is: it is written into a directory of
// this module (under testdata, which ./... skips) and vetted.
func TestReadmeQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program with the go command; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	const open, end = "\n```go\n", "\n```\n"
	i := bytes.Index(readme, []byte(open))
	if i < 0 {
		t.Fatal("README.md has no ```go block")
	}
	src := readme[i+len(open):]
	j := bytes.Index(src, []byte(end))
	if j < 0 {
		t.Fatal("README.md's first ```go block is not closed")
	}
	src = src[:j+1]
	if !bytes.HasPrefix(src, []byte("package main\n")) {
		t.Fatalf("README.md's first Go block starts with %q; want package main", src[:min(len(src), 40)])
	}
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("testdata", "readme-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.RemoveAll(dir)
		os.Remove("testdata") // only if empty: it did not exist before
	})
	if err := os.WriteFile(filepath.Join(dir, "main.go"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "vet", "./"+filepath.ToSlash(dir)).CombinedOutput()
	if err != nil {
		t.Errorf("go vet of README.md's quick start: %v\n%s", err, out)
	}
	if formatted, err := exec.CommandContext(ctx, "gofmt", "-l", dir).Output(); err == nil && len(formatted) > 0 {
		t.Errorf("README.md's quick start is not gofmt-formatted")
	}
}
