package dpop

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"
)

var allAlgs = []string{algES256, algES384, algES512, algEdDSA, algPS256, algRS256}

// opaqueKey hides the concrete key type, as an HSM, KMS or TPM handle does:
// only Public and Sign are reachable.
type opaqueKey struct{ k crypto.Signer }

func (o opaqueKey) Public() crypto.PublicKey { return o.k.Public() }
func (o opaqueKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.k.Sign(r, digest, opts)
}

func TestNewSignerAlgs(t *testing.T) {
	keys := testKeys()
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			var opts *SignerOptions
			if alg == algRS256 {
				opts = &SignerOptions{Alg: algRS256}
			}
			s, err := NewSigner(opaqueKey{keys[alg]}, opts)
			if err != nil {
				t.Fatal(err)
			}
			if s.Alg() != alg {
				t.Errorf("Alg() = %q; want %q", s.Alg(), alg)
			}
		})
	}
}

type publicOnly struct{ pub crypto.PublicKey }

func (p publicOnly) Public() crypto.PublicKey { return p.pub }
func (p publicOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, io.ErrUnexpectedEOF
}

func TestNewSignerRejects(t *testing.T) {
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	keys := testKeys()
	tests := []struct {
		name string
		key  crypto.Signer
		opts *SignerOptions
		want string
	}{
		{"nil key", nil, nil, "key is nil"},
		{"RSA 1024", rsa1024, nil, "1024 bits"},
		{"P-224", p224, nil, "P-224"},
		{"X25519 public key", publicOnly{x.PublicKey()}, nil, "unsupported public key type"},
		{"nil ECDSA public key", publicOnly{(*ecdsa.PublicKey)(nil)}, nil, "nil"},
		{"short Ed25519 key", publicOnly{ed25519.PublicKey{1, 2, 3}}, nil, "3 bytes"},
		{"RS256 on EC key", keys[algES256], &SignerOptions{Alg: algRS256}, `alg "RS256"`},
		{"ES384 on P-256", keys[algES256], &SignerOptions{Alg: algES384}, `alg "ES384"`},
		{"HS256 on RSA", keys[algPS256], &SignerOptions{Alg: "HS256"}, `alg "HS256"`},
		{"KeyID", keys[algES256], &SignerOptions{KeyID: "k1"}, "KeyID is for client assertions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner(tt.key, tt.opts)
			if err == nil {
				t.Fatalf("NewSigner = %v, nil; want an error", s)
			}
			if !strings.HasPrefix(err.Error(), "dpop: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q; want a dpop: error mentioning %q", err, tt.want)
			}
		})
	}
}

// TestProofDifferential has go-jose verify thousands of proofs of every
// algorithm, with URLs, tokens and nonces that exercise the JSON escaping.
func TestProofDifferential(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 50
	}
	urls := []string{
		"https://api.example.com/v1/items",
		"https://API.Example.COM:443/a%22b?x=1#f",
		"http://127.0.0.1:8080/p%5Cq/%E2%80%A8",
		"https://user:pw@example.com",
	}
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			s := newTestSigner(t, alg)
			seen := make(map[string]bool)
			count := n
			if alg == algPS256 || alg == algRS256 {
				count = n / 5 // RSA signing is slow; the encoding is the same
			}
			for i := range count {
				u := urls[i%len(urls)]
				opts := &ProofOptions{Nonce: "n-" + base64.RawURLEncoding.EncodeToString([]byte{byte(i)}) + "!#$[]{}~"}
				if i%2 == 0 {
					opts.AccessToken = "tok\"en\\" + string(rune('a'+i%26))
				}
				proof, err := s.Proof("PATCH", u, opts)
				if err != nil {
					t.Fatal(err)
				}
				c, jwk := verifyJOSE(t, proof, alg)
				if seen[c.JTI] {
					t.Fatalf("jti %q repeated", c.JTI)
				}
				seen[c.JTI] = true
				if raw, err := base64.RawURLEncoding.DecodeString(c.JTI); err != nil || len(raw) < 16 {
					t.Fatalf("jti %q is not >= 128 bits of base64url", c.JTI)
				}
				if c.HTM != "PATCH" || c.Nonce != opts.Nonce {
					t.Fatalf("htm, nonce = %q, %q; want PATCH, %q", c.HTM, c.Nonce, opts.Nonce)
				}
				pu, _ := url.Parse(u)
				if want := strings.ToLower(pu.Scheme) + "://" + strings.TrimSuffix(strings.ToLower(pu.Host), ":443") + map[bool]string{true: "/", false: pu.EscapedPath()}[pu.EscapedPath() == ""]; c.HTU != want {
					t.Fatalf("htu = %q; want %q", c.HTU, want)
				}
				var wantATH string
				if opts.AccessToken != "" {
					sum := sha256.Sum256([]byte(opts.AccessToken))
					wantATH = base64.RawURLEncoding.EncodeToString(sum[:])
				}
				if c.ATH != wantATH {
					t.Fatalf("ath = %q; want %q", c.ATH, wantATH)
				}
				if tp, _ := jwk.Thumbprint(crypto.SHA256); base64.RawURLEncoding.EncodeToString(tp) != s.Thumbprint() {
					t.Fatalf("Thumbprint() = %q; go-jose says %q", s.Thumbprint(), base64.RawURLEncoding.EncodeToString(tp))
				}
			}
		})
	}
}

func TestProofIAT(t *testing.T) {
	defer func(f func() time.Time) { timeNow = f }(timeNow)
	timeNow = func() time.Time { return time.Unix(1700000000, 5e8) }
	s := newTestSigner(t, algEdDSA)
	proof, err := s.Proof("GET", "https://example.com/", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := verifyJOSE(t, proof, algEdDSA)
	if c.IAT != 1700000000 {
		t.Errorf("iat = %d; want 1700000000", c.IAT)
	}
	if strings.Contains(proof, "ath") || c.ATH != "" || c.Nonce != "" {
		t.Errorf("proof without token or nonce has ath %q, nonce %q", c.ATH, c.Nonce)
	}
}

func TestProofRejectsBadInput(t *testing.T) {
	s := newTestSigner(t, algEdDSA)
	for _, tt := range []struct {
		method, url string
		opts        *ProofOptions
	}{
		{"GET", "/relative", nil},
		{"GET", "ftp://example.com/", nil},
		{"GET", "https:opaque", nil},
		{"GET", "https://exa mple.com/", nil},
		{"GET", `https://a"b/`, nil},
		{"GET", "https://%ff/", nil},
		{"", "https://example.com/", nil},
		{"GET", "https://example.com/", &ProofOptions{Nonce: `has"quote`}},
		{"GET", "https://example.com/", &ProofOptions{Nonce: "has space"}},
	} {
		if p, err := s.Proof(tt.method, tt.url, tt.opts); err == nil || !strings.HasPrefix(err.Error(), "dpop: ") {
			t.Errorf("Proof(%q, %q, %+v) = %q, %v; want a dpop: error", tt.method, tt.url, tt.opts, p, err)
		}
	}
}

func TestHTU(t *testing.T) {
	tests := []struct{ host, url, want string }{
		{"", "https://example.com", "https://example.com/"},
		{"", "HTTPS://Example.COM:443/Path/To?q=1#frag", "https://example.com/Path/To"},
		{"", "http://example.com:80/x", "http://example.com/x"},
		{"", "http://example.com:443/x", "http://example.com:443/x"},
		{"", "https://example.com:8443/x", "https://example.com:8443/x"},
		{"", "https://example.com:/x", "https://example.com/x"},
		{"", "https://alice:secret@example.com/x", "https://example.com/x"},
		{"", "https://example.com/a%2Fb/c%20d", "https://example.com/a%2Fb/c%20d"},
		{"", "https://example.com/caf%C3%A9", "https://example.com/caf%C3%A9"},
		{"", "https://[::1]:443/v6", "https://[::1]/v6"},
		{"", "https://[::1]:8443/v6", "https://[::1]:8443/v6"},
		{"API.example.com", "https://10.0.0.1:8443/x", "https://api.example.com/x"},
		{"", "https://[fe80::1%25eth0]:8443/x", "https://[fe80::1]:8443/x"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(appendHTU(nil, originOf(u, tt.host), u)); got != tt.want {
			t.Errorf("htu(%q, host %q) = %q; want %q", tt.url, tt.host, got, tt.want)
		}
	}
}

// TestThumbprintRFC7638 checks the example of RFC 7638 §3.1.
func TestThumbprintRFC7638(t *testing.T) {
	n, _ := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	s, err := NewSigner(publicOnly{pub}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("Thumbprint() = %q; want %q", got, want)
	}
}

// TestThumbprintLeadingZero uses P-256 keys whose x or y starts with a zero
// byte: the JWK must keep the coordinate at 32 bytes (RFC 7518 §6.2.1.2),
// or the thumbprint differs from every other implementation's.
func TestThumbprintLeadingZero(t *testing.T) {
	var found int
	for found < 2 {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		x, y := k.X.FillBytes(make([]byte, 32)), k.Y.FillBytes(make([]byte, 32))
		if x[0] != 0 && y[0] != 0 {
			continue
		}
		found++
		s, err := NewSigner(k, nil)
		if err != nil {
			t.Fatal(err)
		}
		b64 := base64.RawURLEncoding.EncodeToString
		members := `{"crv":"P-256","kty":"EC","x":"` + b64(x) + `","y":"` + b64(y) + `"}`
		sum := sha256.Sum256([]byte(members))
		if got, want := s.Thumbprint(), b64(sum[:]); got != want {
			t.Errorf("Thumbprint() = %q; want %q (RFC 7638 over %s)", got, want, members)
		}
		proof, err := s.Proof("GET", "https://example.com/", nil)
		if err != nil {
			t.Fatal(err)
		}
		var h struct {
			JWK map[string]string `json:"jwk"`
		}
		hdr, _ := base64.RawURLEncoding.DecodeString(strings.SplitN(proof, ".", 2)[0])
		if err := json.Unmarshal(hdr, &h); err != nil {
			t.Fatal(err)
		}
		if h.JWK["x"] != b64(x) || h.JWK["y"] != b64(y) {
			t.Errorf("jwk x, y = %q, %q; want padded %q, %q", h.JWK["x"], h.JWK["y"], b64(x), b64(y))
		}
		if len(h.JWK) != 4 {
			t.Errorf("jwk = %v; want only kty, crv, x, y", h.JWK)
		}
		verifyJOSE(t, proof, algES256)
	}
}

type failingKey struct{ crypto.Signer }

func (failingKey) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, io.ErrClosedPipe
}

func TestProofSignError(t *testing.T) {
	s, err := NewSigner(failingKey{testKeys()[algES256]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Proof("GET", "https://example.com/", nil); err == nil || !strings.Contains(err.Error(), "dpop: sign proof") {
		t.Errorf("Proof with a failing key: err = %v; want dpop: sign proof", err)
	}
}
