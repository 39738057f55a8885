package keystore

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/zalando/go-keyring"
)

// publicDER returns the PKIX encoding of key's public half, for comparing
// keys.
func publicDER(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return der
}

var algTests = []struct {
	alg  string
	want func(crypto.Signer) bool
}{
	{"", isCurve(elliptic.P256())},
	{"ES256", isCurve(elliptic.P256())},
	{"ES384", isCurve(elliptic.P384())},
	{"ES512", isCurve(elliptic.P521())},
	{"EdDSA", func(k crypto.Signer) bool { _, ok := k.(ed25519.PrivateKey); return ok }},
	{"PS256", isRSA2048},
	{"RS256", isRSA2048},
}

func isCurve(c elliptic.Curve) func(crypto.Signer) bool {
	return func(k crypto.Signer) bool { e, ok := k.(*ecdsa.PrivateKey); return ok && e.Curve == c }
}

func isRSA2048(k crypto.Signer) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() == 2048 }

// TestLoadOrCreateRoundTrip creates a key of every type in every store,
// loads it back, and signs with it.
func TestLoadOrCreateRoundTrip(t *testing.T) {
	for _, st := range testStores() {
		t.Run(st.name, func(t *testing.T) {
			s := st.new(t)
			for i, tc := range algTests {
				name := fmt.Sprintf("key-%d", i)
				key, err := LoadOrCreate(s, name, &KeyOptions{Alg: tc.alg})
				if err != nil {
					t.Fatalf("LoadOrCreate(%q) = %v", tc.alg, err)
				}
				if !tc.want(key) {
					t.Errorf("LoadOrCreate(%q) made a %T", tc.alg, key)
				}
				again, err := LoadOrCreate(s, name, &KeyOptions{Alg: "EdDSA"})
				if err != nil {
					t.Fatalf("second LoadOrCreate(%q) = %v", tc.alg, err)
				}
				if !bytes.Equal(publicDER(t, again), publicDER(t, key)) {
					t.Errorf("%q: second LoadOrCreate returned another key", tc.alg)
				}
				loaded, err := LoadKey(s, name)
				if err != nil || !bytes.Equal(publicDER(t, loaded), publicDER(t, key)) {
					t.Errorf("%q: LoadKey = %v; want the same key", tc.alg, err)
				}
				digest := sha256.Sum256([]byte("proof"))
				var opts crypto.SignerOpts = crypto.SHA256
				if _, ok := loaded.(ed25519.PrivateKey); ok {
					opts = crypto.Hash(0)
					digest = [32]byte{}
				}
				if _, err := loaded.Sign(rand.Reader, digest[:], opts); err != nil {
					t.Errorf("%q: Sign = %v", tc.alg, err)
				}
			}
			if _, err := LoadKey(s, "absent"); !errors.Is(err, ErrNotFound) {
				t.Errorf("LoadKey(absent) = %v; want ErrNotFound", err)
			}
			if err := s.Delete("key-0"); err != nil {
				t.Errorf("Delete = %v", err)
			}
			if _, err := LoadKey(s, "key-0"); !errors.Is(err, ErrNotFound) {
				t.Errorf("LoadKey after Delete = %v; want ErrNotFound", err)
			}
		})
	}
}

func TestLoadOrCreateBadAlg(t *testing.T) {
	var s MemoryStore
	if _, err := LoadOrCreate(&s, "k", &KeyOptions{Alg: "HS256"}); err == nil {
		t.Error("LoadOrCreate(HS256) = nil error; want an unsupported algorithm")
	}
	if _, err := s.Get("k"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an entry was stored: %v", err)
	}
}

// TestLoadOrCreateCorrupt: an entry that does not parse is a *CorruptError
// naming it, and stays as it was.
func TestLoadOrCreateCorrupt(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p224, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsa1024, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	corrupt := map[string][]byte{
		"garbage": []byte("not a key"),
		"empty":   {},
		"P-224":   p224,
		"RSA1024": rsa1024,
	}
	for _, st := range testStores() {
		t.Run(st.name, func(t *testing.T) {
			s := st.new(t)
			for what, data := range corrupt {
				name := "corrupt-" + what
				if err := s.Create(name, data); err != nil {
					t.Fatal(err)
				}
				_, err := LoadOrCreate(s, name, nil)
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Name != name {
					t.Errorf("%s: LoadOrCreate = %v; want *CorruptError naming %q", what, err, name)
				}
				if got, err := s.Get(name); err != nil || !bytes.Equal(got, data) {
					t.Errorf("%s: entry changed to %q, %v", what, got, err)
				}
			}
		})
	}
}

// TestLoadOrCreateConcurrent: goroutines of one process all get one key.
func TestLoadOrCreateConcurrent(t *testing.T) {
	for _, st := range testStores() {
		t.Run(st.name, func(t *testing.T) {
			s := st.new(t)
			const n = 8
			keys := make([][]byte, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					k, err := LoadOrCreate(s, "shared", nil)
					if err != nil {
						t.Errorf("LoadOrCreate = %v", err)
						return
					}
					keys[i] = publicDER(t, k)
				}()
			}
			wg.Wait()
			for i := range keys {
				if !bytes.Equal(keys[i], keys[0]) {
					t.Errorf("goroutine %d got another key than goroutine 0", i)
				}
			}
		})
	}
}

// TestLoadOrCreateTwoProcesses: OS processes starting at the same moment
// end up with the same key.
func TestLoadOrCreateTwoProcesses(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		raceLoadOrCreate(t, "file:"+newTestFileStore(t).Dir, 2, 3)
		raceLoadOrCreate(t, "file:"+newTestFileStore(t).Dir, 4, 1)
	})
	t.Run("keychain", func(t *testing.T) {
		k := newTestKeychain(t)
		raceLoadOrCreate(t, "keychain:"+k.Service, 2, 3)
		k4 := &Keychain{Service: k.Service + "-4"}
		t.Cleanup(func() { keyring.DeleteAll(k4.Service) })
		raceLoadOrCreate(t, "keychain:"+k4.Service, 4, 1)
	})
}
