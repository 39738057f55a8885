package resource

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	jose "github.com/go-jose/go-jose/v4"
)

// benchProof is one proof made by this module's client, with what its
// floor needs: the signing input, the signature as the verifier's crypto
// takes it, the public key and the thumbprint input.
type benchProof struct {
	s       *setup
	proof   string
	tgt     target
	msg     []byte // signing input
	sig     []byte // Ed25519 signature, or ECDSA as ASN.1 DER
	pub     crypto.PublicKey
	tpInput []byte // the RFC 7638 JSON the thumbprint hashes
	token   []byte
	now     time.Time // when the proof was made
}

// sink keeps the floor's hashes from being optimised away.
var sink byte

func newBenchProof(b *testing.B, alg string) *benchProof {
	s := newSetup(b, alg, nil)
	signer, err := dpop.NewSigner(s.key.priv, nil)
	if err != nil {
		b.Fatal(err)
	}
	// A token of a realistic size (an RFC 9068 JWT of ~700 bytes).
	s.token = s.tokens.issue(signer.Thumbprint()) + strings.Repeat("x", 600)
	s.tokens.tokens[s.token] = &AccessToken{JKT: signer.Thumbprint()}
	now := time.Now()
	p, err := signer.Proof("GET", testURL, &dpop.ProofOptions{AccessToken: s.token})
	if err != nil {
		b.Fatal(err)
	}
	bp := &benchProof{s: s, proof: p, tgt: target{bases: s.v.bases, path: "/items"}, token: []byte(s.token), now: now}
	dot := strings.LastIndexByte(p, '.')
	bp.msg = []byte(p[:dot])
	sig, _ := base64.RawURLEncoding.DecodeString(p[dot+1:])
	k, e := s.v.parseHeader(p[:strings.IndexByte(p, '.')])
	if e != nil {
		b.Fatal(e)
	}
	switch pub := s.key.priv.Public().(type) {
	case *ecdsa.PublicKey:
		bp.pub, bp.sig = pub, appendDER(nil, sig[:32], sig[32:])
		bp.tpInput = []byte(`{"crv":"P-256","kty":"EC","x":"` + s.key.jwk["x"].(string) + `","y":"` + s.key.jwk["y"].(string) + `"}`)
	case ed25519.PublicKey:
		bp.pub, bp.sig = pub, sig
		bp.tpInput = []byte(`{"crv":"Ed25519","kty":"OKP","x":"` + s.key.jwk["x"].(string) + `"}`)
	}
	if tp := sha256.Sum256(bp.tpInput); base64.RawURLEncoding.EncodeToString(tp[:]) != k.jkt {
		b.Fatal("thumbprint input is not the key's")
	}
	s.v.keys.put(p[:strings.IndexByte(p, '.')], k) // a client seen before
	if !bp.floor() {
		b.Fatal("floor: signature does not verify")
	}
	if _, e := bp.verify(); e != nil {
		b.Fatal(e)
	}
	return bp
}

// floor is what no verifier of this proof can skip: the signature
// verification (with the hash of the signing input) and the hashes of the
// access token (ath) and of the key (the thumbprint).
func (bp *benchProof) floor() bool {
	var ok bool
	switch pub := bp.pub.(type) {
	case *ecdsa.PublicKey:
		h := sha256.Sum256(bp.msg)
		ok = ecdsa.VerifyASN1(pub, h[:], bp.sig)
	case ed25519.PublicKey:
		ok = ed25519.Verify(pub, bp.msg, bp.sig)
	}
	ath := sha256.Sum256(bp.token)
	tp := sha256.Sum256(bp.tpInput)
	sink ^= ath[0] ^ tp[0]
	return ok
}

// verify is the Verifier's check of the proof: everything but the
// TokenVerifier and the ReplayStore.
func (bp *benchProof) verify() (*checkedProof, *Error) {
	return bp.s.v.checkProof(context.Background(), bp.proof, "GET", &bp.tgt, bp.s.token, bp.now, false)
}

// BenchmarkVerifyProof measures one proof verification against its floor
// in the same run (RFC 9449 §4.3, the header cached as for a client seen
// before). The ratio sub-benchmark alternates the two in one loop and
// reports the median time of a verification over the median time of its
// floor: on a shared machine, robust to load that changes between
// sub-benchmarks and to the preemptions that inflate means.
func BenchmarkVerifyProof(b *testing.B) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		bp := newBenchProof(b, alg)
		b.Run(alg+"/floor", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bp.floor()
			}
		})
		b.Run(alg+"/verifier", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bp.verify()
			}
		})
		b.Run(alg+"/ratio", func(b *testing.B) {
			var floor, verifier []time.Duration
			i := 0
			for b.Loop() {
				// Alternate which goes first, so that neither always
				// runs on caches the other warmed.
				if i++; i%2 == 0 {
					t0 := time.Now()
					bp.floor()
					t1 := time.Now()
					bp.verify()
					verifier = append(verifier, time.Since(t1))
					floor = append(floor, t1.Sub(t0))
				} else {
					t0 := time.Now()
					bp.verify()
					t1 := time.Now()
					bp.floor()
					floor = append(floor, time.Since(t1))
					verifier = append(verifier, t1.Sub(t0))
				}
			}
			b.ReportMetric(float64(median(verifier))/float64(median(floor)), "x-floor")
		})
	}
}

// BenchmarkGoJose is go-jose verifying the same proof, with the
// thumbprint, for scale (what dpoptest's verifier costs).
func BenchmarkGoJose(b *testing.B) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		bp := newBenchProof(b, alg)
		algs := []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				jws, err := jose.ParseSignedCompact(bp.proof, algs)
				if err != nil {
					b.Fatal(err)
				}
				k := jws.Signatures[0].Protected.JSONWebKey
				if _, err := jws.Verify(k); err != nil {
					b.Fatal(err)
				}
				k.Thumbprint(crypto.SHA256)
				sha256.Sum256(bp.token)
			}
		})
	}
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkHandler measures the whole middleware over the bare handler it
// wraps, each request with a new proof, the replay store in memory, and
// the token verified by an in-memory table ("table") or by a JWTVerifier
// that has it cached ("jwt", a dpoptest issuer). The ratio sub-benchmarks
// report the median time of a request through the middleware over the
// median time of the proof floor of BenchmarkVerifyProof, alternated in
// one loop.
func BenchmarkHandler(b *testing.B) {
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	b.Run("bare", func(b *testing.B) {
		r := httptest.NewRequest("GET", testURL, nil)
		w := &discard{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			bare.ServeHTTP(w, r)
		}
	})
	as := newJWTIssuer(b)
	defer as.Close()
	for _, alg := range []string{"ES256", "EdDSA"} {
		for _, tv := range []string{"table", "jwt"} {
			b.Run(alg+"/"+tv, func(b *testing.B) {
				m := newBenchMiddleware(b, alg, tv, as, b.N)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					m.serve(i)
				}
				b.StopTimer()
				m.checkLast(b)
			})
			b.Run(alg+"/"+tv+"/ratio", func(b *testing.B) {
				m := newBenchMiddleware(b, alg, tv, as, b.N)
				bp := newBenchProof(b, alg)
				floor, handler := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for i := range b.N {
					if i%2 == 0 {
						t0 := time.Now()
						m.serve(i)
						t1 := time.Now()
						bp.floor()
						floor = append(floor, time.Since(t1))
						handler = append(handler, t1.Sub(t0))
					} else {
						t0 := time.Now()
						bp.floor()
						t1 := time.Now()
						m.serve(i)
						handler = append(handler, time.Since(t1))
						floor = append(floor, t1.Sub(t0))
					}
				}
				b.StopTimer()
				m.checkLast(b)
				b.ReportMetric(float64(median(handler))/float64(median(floor)), "x-floor")
			})
		}
	}
}

// benchMiddleware is the middleware with n requests' proofs made ahead.
type benchMiddleware struct {
	v      *Verifier
	h      http.Handler
	r      *http.Request
	w      *discard
	proofs [][]string
}

func newBenchMiddleware(b *testing.B, alg, tv string, as *jwtIssuer, n int) *benchMiddleware {
	k := newTestKey(b, alg)
	signer, err := dpop.NewSigner(k.priv, nil)
	if err != nil {
		b.Fatal(err)
	}
	var tokens TokenVerifier
	var token string
	switch tv {
	case "table":
		tt := &tokenTable{}
		tokens, token = tt, tt.issue(signer.Thumbprint())
	case "jwt":
		if tokens, err = NewJWTVerifier(context.Background(), as.URL, as.URL, nil); err != nil {
			b.Fatal(err)
		}
		token = as.IssueToken(signer.Thumbprint(), "alice", "read")
	}
	v, err := NewVerifier(Config{Tokens: tokens, PublicURLs: []string{testBase}, MaxAge: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	m := &benchMiddleware{
		v:      v,
		h:      v.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })),
		r:      httptest.NewRequest("GET", testURL+"?q=1", nil),
		w:      &discard{h: http.Header{}},
		proofs: make([][]string, n+1),
	}
	m.r.Header.Set("Authorization", "DPoP "+token)
	for i := range m.proofs {
		p, err := signer.Proof("GET", testURL, &dpop.ProofOptions{AccessToken: token})
		if err != nil {
			b.Fatal(err)
		}
		m.proofs[i] = []string{p}
	}
	m.serve(n) // the first request of the client, and of its token
	return m
}

func (m *benchMiddleware) serve(i int) {
	m.r.Header["Dpop"] = m.proofs[i]
	m.h.ServeHTTP(m.w, m.r)
}

// checkLast checks that the requests passed: the last proof is recorded.
func (m *benchMiddleware) checkLast(b *testing.B) {
	if len(m.proofs) < 2 {
		return
	}
	m.r.Header["Dpop"] = m.proofs[len(m.proofs)-2]
	if _, err := m.v.Check(m.r); reasonOf(err) != ReasonReplay {
		b.Fatalf("last proof: %v; want it recorded", err)
	}
}

// median returns the median of d, which it sorts.
func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}
