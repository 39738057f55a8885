// Package hwkeytest is the test harness of the hardware-key modules,
// tpmkey and pkcs11key: the checks every key that lives in a device must
// pass (a DPoP flow against dpoptest, concurrent requests through one
// Transport, the key reloaded in a new process) and the benchmark of a
// proof, given a [crypto.Signer] each module makes its own way.
//
// It is internal to the repository: the nested modules may import it
// because their import paths are under github.com/dpopkit/dpop. It
// imports the testing package and is for tests only.
package hwkeytest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"golang.org/x/oauth2/clientcredentials"
)

// Need returns the value of the environment variable env, which names the
// real part a test needs (a TPM's socket, a PKCS #11 module). When env is
// unset the test skips and says how to run it (runWith), or fails when
// DPOP_FULL_TEST=1, where nothing may be skipped.
func Need(t testing.TB, env, runWith string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("DPOP_FULL_TEST") == "1" {
			t.Fatalf("DPOP_FULL_TEST=1 but %s is unset: %s", env, runWith)
		}
		t.Skipf("%s is unset: %s", env, runWith)
	}
	return v
}

// Client returns an HTTP client whose requests carry DPoP-bound tokens
// from the dpoptest server at base (its default client "backend", client
// credentials), with proofs signed by key, and the signer of those proofs.
func Client(key crypto.Signer, base string) (*http.Client, *dpop.Signer, error) {
	s, err := dpop.NewSigner(key, nil)
	if err != nil {
		return nil, nil, err
	}
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{ClientID: "backend", ClientSecret: "backend-secret", TokenURL: base + "/token"}, // dpoptest's token endpoint
		Signer: s,
	}
	return cc.Client(context.Background()), s, nil
}

// Call makes one request to the resource server at base and returns its
// status.
func Call(ctx context.Context, c *http.Client, base string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/hw", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Flow obtains a token and calls the API three times with proofs signed by
// key, against a dpoptest server that demands nonces. The server verifies
// every proof with go-jose; each must be of key.
func Flow(t *testing.T, key crypto.Signer) {
	t.Helper()
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	c, s, err := Client(key, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if status, err := Call(context.Background(), c, srv.URL); err != nil || status != 200 {
			t.Fatalf("GET /api/hw = %d, %v; want 200", status, err)
		}
	}
	proofs := 0
	for _, r := range srv.Requests() {
		if r.Proof != nil {
			proofs++
			if r.Proof.Thumbprint != s.Thumbprint() {
				t.Errorf("proof of key %s; want the device's key %s", r.Proof.Thumbprint, s.Thumbprint())
			}
		}
	}
	if proofs < 4 {
		t.Errorf("server saw %d verified proofs; want at least 4 (a token and 3 calls)", proofs)
	}
}

// Concurrent sends 64 requests at once through one client whose proofs key
// signs: none may deadlock or fail. The device signs one at a time, or a
// few (a session pool); the requests queue for it.
func Concurrent(t *testing.T, key crypto.Signer) {
	t.Helper()
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true, NonceEvery: 16, NonceWindow: 64})
	defer srv.Close()
	c, _, err := Client(key, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			status, err := Call(ctx, c, srv.URL)
			if err == nil && status != 200 {
				err = fmt.Errorf("status %d", status)
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("request: %v", err)
		}
	}
}

// BenchmarkProof measures one DPoP proof per signer: "memory", an
// in-process ECDSA P-256 key, the floor of the run; name, a key newKey
// makes in the device; and name+"/parallel", proofs from every
// goroutine, which queue at the device.
func BenchmarkProof(b *testing.B, name string, newKey func(testing.TB) crypto.Signer) {
	mem, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("memory", func(b *testing.B) { benchProof(b, mem) })
	b.Run(name, func(b *testing.B) { benchProof(b, newKey(b)) })
	b.Run(name+"/parallel", func(b *testing.B) {
		s := mustSigner(b, newKey(b))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Proof("GET", "https://rs.example/api/things", nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func benchProof(b *testing.B, key crypto.Signer) {
	s := mustSigner(b, key)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Proof("GET", "https://rs.example/api/things", nil); err != nil {
			b.Fatal(err)
		}
	}
}

func mustSigner(b *testing.B, key crypto.Signer) *dpop.Signer {
	b.Helper()
	s, err := dpop.NewSigner(key, nil)
	if err != nil {
		b.Fatal(err)
	}
	return s
}
