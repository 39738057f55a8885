package dpop

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpopkit/dpop/internal/jws"
)

// proofMessageSize is the length of a typical ES256 signing input: the
// header with its JWK, and claims with ath and a nonce. BenchmarkRawSign
// signs that many bytes, so Proof/RawSign is the cost of everything but
// the signature.
func signingInputSize(b *testing.B, s *Signer) int {
	proof, err := s.Proof("GET", "https://api.example.com/v1/items", &ProofOptions{AccessToken: "tok", Nonce: "0123456789abcdef0123456789abcdef"})
	if err != nil {
		b.Fatal(err)
	}
	n := len(proof)
	for n > 0 && proof[n-1] != '.' {
		n--
	}
	return n - 1
}

var benchAlgs = []string{algES256, algEdDSA, algPS256}

// BenchmarkProof and BenchmarkRawSign form a pair: run them together and
// compare ns/op and allocs/op per alg.
func BenchmarkProof(b *testing.B) {
	u, _ := url.Parse("https://api.example.com/v1/items")
	o := originOf(u, "")
	ath := accessTokenHash("tok")
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			s := newTestSigner(b, alg)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.proof("GET", o, u, ath, "0123456789abcdef0123456789abcdef", 1700000000); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRawSign(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			s := newTestSigner(b, alg)
			msg := make([]byte, signingInputSize(b, s))
			rand.Read(msg)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := crypto.SignMessage(s.key, rand.Reader, msg, s.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// nopSigner signs with a constant, so allocation counts show the proof's
// own costs and not the key's.
type nopSigner struct{ crypto.Signer }

func (nopSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return sig64[:], nil
}

var sig64 [64]byte

// TestProofAllocs holds the hot path to its budget: the result string and
// the signature's own, nothing more.
func TestProofAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are only exact without -short and -race")
	}
	s, err := NewSigner(nopSigner{testKeys()[algEdDSA]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("https://api.example.com/v1/items")
	o := originOf(u, "")
	ath := accessTokenHash("tok")
	n := testing.AllocsPerRun(200, func() {
		s.proof("GET", o, u, ath, "nonce", 1700000000)
	})
	if n > 1 {
		t.Errorf("proof allocates %v times beyond the signature; want 1 (the result)", n)
	}
}

// referenceTransport is the smallest correct thing a user could write by
// hand: clone, sign a proof with the token hash, set two headers. It is
// the yardstick for Transport's overhead.
type referenceTransport struct {
	s     *Signer
	token string
}

func (rt *referenceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r2 := req.Clone(req.Context())
	u := *req.URL
	u.RawQuery, u.Fragment = "", ""
	proof, err := rt.s.Proof(req.Method, u.String(), &ProofOptions{AccessToken: rt.token})
	if err != nil {
		return nil, err
	}
	r2.Header.Set("DPoP", proof)
	r2.Header.Set("Authorization", "DPoP "+rt.token)
	return http.DefaultTransport.RoundTrip(r2)
}

// BenchmarkRoundTrip compares, over loopback, a plain client, the
// reference transport and Transport, sequentially and in parallel.
func BenchmarkRoundTrip(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("DPoP-Nonce", "server-nonce-0123456789")
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	s := newTestSigner(b, algEdDSA)
	clients := []struct {
		name string
		rt   http.RoundTripper
	}{
		{"plain", http.DefaultTransport},
		{"reference", &referenceTransport{s: s, token: "access-token-0123456789"}},
		{"dpop", &Transport{Signer: s, Source: staticToken("access-token-0123456789")}},
	}
	get := func(b *testing.B, c *http.Client) {
		resp, err := c.Get(srv.URL + "/v1/items?page=2")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for _, cl := range clients {
		c := &http.Client{Transport: cl.rt}
		b.Run(cl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				get(b, c)
			}
		})
		b.Run(cl.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					get(b, c)
				}
			})
		})
	}
}

// staticRoundTripper answers every request with a copy of one response,
// without I/O, so allocation counts show the client side alone.
type staticRoundTripper struct{ resp http.Response }

func (s *staticRoundTripper) RoundTrip(*http.Request) (*http.Response, error) {
	r := s.resp
	return &r, nil
}

// TestRoundTripAllocs holds Transport to its budget over the bare Base:
// the proof (1 with a constant signature) and 4 for the request copy and
// its header map.
func TestRoundTripAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are only exact without -short and -race")
	}
	s, err := NewSigner(nopSigner{testKeys()[algEdDSA]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := &staticRoundTripper{http.Response{StatusCode: 200, Header: http.Header{"Dpop-Nonce": {"n"}}, Body: http.NoBody}}
	tr := &Transport{Base: base, Signer: s, Source: staticToken("tok")}
	req, _ := http.NewRequest("GET", "https://example.com/x", nil)
	req.Header.Set("Accept", "application/json")
	plain := testing.AllocsPerRun(100, func() { base.RoundTrip(req) })
	got := testing.AllocsPerRun(100, func() { tr.RoundTrip(req) })
	if got-plain > 5 {
		t.Errorf("Transport allocates %v times over its Base; want at most 5 (proof + 4)", got-plain)
	}
}

// BenchmarkColdStart measures what a cold start costs on the wire: each
// round, C goroutines send their first request to a resource server that
// requires a nonce, through a Transport with an empty nonce cache. One op
// is one answered request; wire/op is the requests sent per answer (at
// most (C+1)/C: one challenge per round).
func BenchmarkColdStart(b *testing.B) {
	const nonce = "cold-start-nonce"
	var wire atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wire.Add(1)
		if !proofHasNonce(r.Header.Get("DPoP"), nonce) {
			rsChallenge(w, nonce)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	s := newTestSigner(b, algEdDSA)
	for _, c := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("C=%d", c), func(b *testing.B) {
			base := &http.Transport{MaxIdleConnsPerHost: c}
			defer base.CloseIdleConnections()
			wire.Store(0)
			answered := 0
			b.ReportAllocs()
			for i := 0; i < b.N; i += c {
				tr := &Transport{Base: base, Signer: s, Source: staticToken("access-token-0123456789")}
				var wg sync.WaitGroup
				for range c {
					wg.Add(1)
					go func() {
						defer wg.Done()
						req, _ := http.NewRequest("GET", srv.URL+"/v1/items", nil)
						resp, err := tr.RoundTrip(req)
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							b.Errorf("status %d", resp.StatusCode)
						}
					}()
				}
				wg.Wait()
				answered += c
			}
			// A round answers C requests, so the last one may overshoot b.N:
			// time and wire per answered request.
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(answered), "ns/op")
			b.ReportMetric(float64(wire.Load())/float64(answered), "wire/op")
		})
	}
}

// proofHasNonce reports whether proof's claims carry nonce; the proof is
// not verified (the benchmark measures the client).
func proofHasNonce(proof, nonce string) bool {
	_, rest, _ := strings.Cut(proof, ".")
	claims, _, _ := strings.Cut(rest, ".")
	b, err := base64.RawURLEncoding.DecodeString(claims)
	return err == nil && bytes.Contains(b, []byte(`"nonce":"`+nonce+`"`))
}

// memoryBase answers like a resource server that accepts the request and
// announces its nonce, without I/O.
func memoryBase() *staticRoundTripper {
	return &staticRoundTripper{http.Response{StatusCode: 200, Header: http.Header{"Dpop-Nonce": {"0123456789abcdef0123456789abcdef"}}, Body: http.NoBody}}
}

func benchRequest() *http.Request {
	req, _ := http.NewRequest("GET", "https://api.example.com/v1/items?page=2", nil)
	req.Header.Set("Accept", "application/json")
	return req
}

// clientPath returns one whole client side of a request: Transport.RoundTrip
// with a token and a nonce, over an in-memory Base.
func clientPath(b *testing.B, s *Signer) func() {
	tr := &Transport{Base: memoryBase(), Signer: s, Source: staticToken("tok")}
	req := benchRequest()
	return func() {
		if _, err := tr.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}

// signatureFloor returns the least any DPoP client does for a request:
// hash and sign a signing input of a proof's size, convert ECDSA's DER to
// r||s, and call the same Base.
func signatureFloor(b *testing.B, s *Signer) func() {
	base := memoryBase()
	req := benchRequest()
	msg := make([]byte, signingInputSize(b, s))
	rand.Read(msg)
	var raw [132]byte
	return func() {
		sig, err := crypto.SignMessage(s.key, rand.Reader, msg, s.opts)
		if err != nil {
			b.Fatal(err)
		}
		if s.ecSize > 0 {
			if _, err := jws.AppendECDSA(raw[:0], sig, s.ecSize); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := base.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}

var floorAlgs = []string{algES256, algEdDSA}

// BenchmarkRoundTripMemory and BenchmarkFloor form a pair: the whole client
// side of one request against the signature floor. Compare ns/op and
// allocs/op per alg in one run.
func BenchmarkRoundTripMemory(b *testing.B) {
	for _, alg := range floorAlgs {
		b.Run(alg, func(b *testing.B) {
			f := clientPath(b, newTestSigner(b, alg))
			b.ReportAllocs()
			for b.Loop() {
				f()
			}
		})
	}
}

func BenchmarkFloor(b *testing.B) {
	for _, alg := range floorAlgs {
		b.Run(alg, func(b *testing.B) {
			f := signatureFloor(b, newTestSigner(b, alg))
			b.ReportAllocs()
			for b.Loop() {
				f()
			}
		})
	}
}

// BenchmarkRoundTripOverFloor runs the pair interleaved, in blocks of 100
// operations in alternating order, and reports path/floor, the ratio of
// the process CPU time each took (getrusage): on a shared machine whose
// load changes by the second, wall-clock times of two benchmarks run
// seconds apart, or even interleaved, are mostly noise.
func BenchmarkRoundTripOverFloor(b *testing.B) {
	for _, alg := range floorAlgs {
		b.Run(alg, func(b *testing.B) {
			s := newTestSigner(b, alg)
			path, floor := clientPath(b, s), signatureFloor(b, s)
			var tPath, tFloor time.Duration
			timed := func(f func(), n int) time.Duration {
				start := cpuTime(b)
				for range n {
					f()
				}
				return cpuTime(b) - start
			}
			const block = 100
			for i := 0; i < b.N; i += 2 * block {
				n := min(block, (b.N-i+1)/2)
				if i/(2*block)%2 == 0 {
					tFloor += timed(floor, n)
					tPath += timed(path, n)
				} else {
					tPath += timed(path, n)
					tFloor += timed(floor, n)
				}
			}
			b.ReportMetric(float64(tPath)/float64(tFloor), "path/floor")
		})
	}
}
