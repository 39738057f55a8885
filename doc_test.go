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
	"go/format"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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

// TestReadmeQuickStart checks that every Go block of README.md that is a
// complete program (package main) is gofmt-formatted and passes go vet as
// it is. Each program gets a module of its own under t.TempDir, in a
// workspace that uses this module from its directory: the test writes
// nothing here, so it passes in a read-only module cache too, and it
// needs no network (GOPROXY=off: this module's dependencies are in the
// module cache, since its tests were built).
func TestReadmeQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs with the go command; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	progs := goPrograms(readme)
	if len(progs) == 0 {
		t.Fatal("README.md has no Go block that is a complete program")
	}
	gomod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("go.mod has no go line")
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	work := fmt.Sprintf("go %s\n\nuse %s\n", goVersion[1], strconv.Quote(root))
	var dirs []string
	for i, p := range progs {
		if formatted, err := format.Source(p.src); err != nil {
			t.Errorf("README.md's Go block at line %d: %v", p.line, err)
		} else if !bytes.Equal(formatted, p.src) {
			t.Errorf("README.md's Go block at line %d is not gofmt-formatted", p.line)
		}
		dir := fmt.Sprintf("readme%d", i+1)
		if err := os.Mkdir(filepath.Join(tmp, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{
			"go.mod":  fmt.Sprintf("module %s\n\ngo %s\n", dir, goVersion[1]),
			"main.go": string(p.src),
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(tmp, dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		work += "use ./" + dir + "\n"
		dirs = append(dirs, "./"+dir)
	}
	if err := os.WriteFile(filepath.Join(tmp, "go.work"), []byte(work), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, append([]string{"vet"}, dirs...)...)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(tmp, "go.work"), "GOFLAGS=", "GOPROXY=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("go vet of README.md's programs (readmeN is the Nth): %v\n%s", err, out)
	}
}

// goProgram is a Go block of a Markdown file that is a complete program.
type goProgram struct {
	line int // of the block's first line of code
	src  []byte
}

// goPrograms returns the ```go blocks of md that start with
// "package main", in order.
func goPrograms(md []byte) []goProgram {
	var progs []goProgram
	var cur *goProgram
	for i, l := range bytes.SplitAfter(md, []byte("\n")) {
		switch {
		case cur == nil && string(bytes.TrimSpace(l)) == "```go":
			cur = &goProgram{line: i + 2}
		case cur != nil && string(bytes.TrimSpace(l)) == "```":
			if bytes.HasPrefix(cur.src, []byte("package main\n")) {
				progs = append(progs, *cur)
			}
			cur = nil
		case cur != nil:
			cur.src = append(cur.src, l...)
		}
	}
	return progs
}
