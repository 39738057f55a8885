package resource

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
)

// refVerify is the reference: go-jose verifies the JWS and computes the
// thumbprint, encoding/json reads the claims, and net/url normalises htu
// the simple way the generated proofs need (case, default port, query). It
// returns the thumbprint of an accepted proof.
func refVerify(proof, method, token string, now time.Time) (string, bool) {
	algs := []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.PS256, jose.RS256}
	jws, err := jose.ParseSignedCompact(proof, algs)
	if err != nil || len(jws.Signatures) != 1 {
		return "", false
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders["typ"].(string); typ != "dpop+jwt" {
		return "", false
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return "", false
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return "", false
	}
	// go-jose's JSON reader refuses duplicate names and trailing data.
	var c struct {
		JTI *string             `json:"jti"`
		HTM *string             `json:"htm"`
		HTU *string             `json:"htu"`
		ATH *string             `json:"ath"`
		IAT josejson.RawMessage `json:"iat"`
	}
	if josejson.Unmarshal(payload, &c) != nil || c.JTI == nil || *c.JTI == "" || c.HTM == nil || *c.HTM != method || c.HTU == nil || c.IAT == nil || c.ATH == nil {
		return "", false
	}
	u, err := url.Parse(*c.HTU)
	if err != nil || strings.ToLower(u.Scheme) != "https" || strings.ToLower(strings.TrimSuffix(u.Host, ":443")) != "api.example.com" || u.EscapedPath() != "/items" {
		return "", false
	}
	iat, err := strconv.ParseFloat(string(c.IAT), 64)
	if err != nil || iat < float64(now.Add(-defaultMaxAge).Unix()) || iat > float64(now.Add(defaultMaxFuture).Unix()) {
		return "", false
	}
	if *c.ATH != athOf(token) {
		return "", false
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", false
	}
	return base64.RawURLEncoding.EncodeToString(tp), true
}

// variant is a proof made from a valid one.
type variant struct {
	name     string
	proof    string
	stricter bool // refused here by design where go-jose may accept
}

// variants returns proofs made from k's valid header and claims: each
// header parameter and claim changed, removed or retyped, the signature
// and the encoding broken, and random bytes flipped.
func variants(t *testing.T, k *testKey, token string, other *testKey, rnd *mrand.Rand) []variant {
	sign := func(name string, stricter bool, edit func(h, c map[string]any)) variant {
		h, c := k.header(), claims(token)
		edit(h, c)
		return variant{name, k.proof(t, h, c), stricter}
	}
	vs := []variant{sign("valid", false, func(h, c map[string]any) {})}
	valid := vs[0].proof
	for _, m := range []struct {
		name     string
		stricter bool
		edit     func(h, c map[string]any)
	}{
		{"extra header", false, func(h, c map[string]any) { h["kid"] = "1"; h["x"] = []any{1, nil} }},
		{"extra claims", false, func(h, c map[string]any) { c["x"] = map[string]any{"y": 1.5} }},
		{"htu with query", false, func(h, c map[string]any) { c["htu"] = testURL + "?a=b#c" }},
		{"htu upper case host", false, func(h, c map[string]any) { c["htu"] = "https://API.example.com:443/items" }},
		{"iat a bit ahead", false, func(h, c map[string]any) { c["iat"] = testNow.Unix() + 4 }},
		{"iat a bit old", false, func(h, c map[string]any) { c["iat"] = testNow.Unix() - 59 }},
		{"iat float", false, func(h, c map[string]any) { c["iat"] = float64(testNow.Unix()) + 0.25 }},
		{"typ missing", false, func(h, c map[string]any) { delete(h, "typ") }},
		{"typ other", false, func(h, c map[string]any) { h["typ"] = "at+jwt" }},
		{"typ number", false, func(h, c map[string]any) { h["typ"] = 1 }},
		{"alg missing", false, func(h, c map[string]any) { delete(h, "alg") }},
		{"alg none", false, func(h, c map[string]any) { h["alg"] = "none" }},
		{"alg HS256", false, func(h, c map[string]any) { h["alg"] = "HS256" }},
		{"alg other", false, func(h, c map[string]any) { h["alg"] = otherAlg(k.alg) }},
		{"jwk missing", false, func(h, c map[string]any) { delete(h, "jwk") }},
		{"jwk other key", false, func(h, c map[string]any) { h["jwk"] = other.jwk }},
		{"jwk private member", false, func(h, c map[string]any) { h["jwk"] = with(h["jwk"], "d", "AQAB") }},
		{"jwk kty other", false, func(h, c map[string]any) { h["jwk"] = with(h["jwk"], "kty", "oct") }},
		{"jwk use enc", true, func(h, c map[string]any) { h["jwk"] = with(h["jwk"], "use", "enc") }},
		{"jku", true, func(h, c map[string]any) { h["jku"] = "https://a.example/" }},
		{"x5u", true, func(h, c map[string]any) { h["x5u"] = "https://a.example/" }},
		{"crit", false, func(h, c map[string]any) { h["crit"] = []string{"x"}; h["x"] = 1 }},
		{"jti missing", false, func(h, c map[string]any) { delete(c, "jti") }},
		{"jti empty", false, func(h, c map[string]any) { c["jti"] = "" }},
		{"jti number", false, func(h, c map[string]any) { c["jti"] = 1 }},
		{"htm missing", false, func(h, c map[string]any) { delete(c, "htm") }},
		{"htm other", false, func(h, c map[string]any) { c["htm"] = "POST" }},
		{"htu missing", false, func(h, c map[string]any) { delete(c, "htu") }},
		{"htu other", false, func(h, c map[string]any) { c["htu"] = "https://api.example.com/other" }},
		{"htu other scheme", false, func(h, c map[string]any) { c["htu"] = "http://api.example.com/items" }},
		{"iat missing", false, func(h, c map[string]any) { delete(c, "iat") }},
		{"iat old", false, func(h, c map[string]any) { c["iat"] = testNow.Unix() - 3600 }},
		{"iat ahead", false, func(h, c map[string]any) { c["iat"] = testNow.Unix() + 60 }},
		{"iat string", false, func(h, c map[string]any) { c["iat"] = fmt.Sprint(testNow.Unix()) }},
		{"ath missing", false, func(h, c map[string]any) { delete(c, "ath") }},
		{"ath other", false, func(h, c map[string]any) { c["ath"] = athOf(token + "x") }},
	} {
		vs = append(vs, sign(m.name, m.stricter, m.edit))
	}
	hdr, _ := json.Marshal(k.header())
	cl, _ := json.Marshal(claims(token))
	dot1, dot2 := strings.IndexByte(valid, '.'), strings.LastIndexByte(valid, '.')
	vs = append(vs,
		variant{"duplicate header member", k.signRaw(t, append(hdr[:len(hdr)-1], `,"typ":"dpop+jwt"}`...), cl), false},
		variant{"duplicate claim", k.signRaw(t, hdr, append(cl[:len(cl)-1], `,"htm":"GET"}`...)), false},
		variant{"escaped duplicate claim", k.signRaw(t, hdr, append(cl[:len(cl)-1], `,"\u0068tm":"POST"}`...)), false},
		variant{"claims an array", k.signRaw(t, hdr, []byte(`[]`)), false},
		variant{"claims trailing data", k.signRaw(t, hdr, append(cl, `{}`...)), false},
		variant{"signature flipped", flipLast(valid), false},
		variant{"signature cut", valid[:len(valid)-4], false},
		variant{"signature empty", valid[:dot2+1], false},
		variant{"signature of another", valid[:dot2] + vs[1].proof[strings.LastIndexByte(vs[1].proof, '.'):], false},
		variant{"padded", valid + "=", false},
		variant{"standard base64", strings.NewReplacer("-", "+", "_", "/").Replace(valid), false},
		variant{"two parts", valid[:dot2], false},
		variant{"four parts", valid + ".", false},
		variant{"header swapped", vs[1].proof[:strings.IndexByte(vs[1].proof, '.')] + valid[dot1:], false},
		variant{"payload swapped", valid[:dot1] + vs[2].proof[strings.IndexByte(vs[2].proof, '.'):strings.LastIndexByte(vs[2].proof, '.')] + valid[dot2:], false},
	)
	for i := range 20 {
		b := []byte(valid)
		j := rnd.IntN(len(b))
		b[j] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."[rnd.IntN(65)]
		vs = append(vs, variant{fmt.Sprintf("byte %d flipped (#%d)", j, i), string(b), false})
	}
	return vs
}

// otherAlg returns an accepted algorithm that k's key cannot sign.
func otherAlg(alg string) string {
	if alg == "ES256" {
		return "EdDSA"
	}
	return "ES256"
}

// TestProofDifferential checks the verifier against go-jose on thousands of
// proofs, valid and mutated: both accept the same proofs, with the same
// thumbprint, except where this verifier refuses by design.
func TestProofDifferential(t *testing.T) {
	bases := 6 // 2592 proofs
	if testing.Short() || raceEnabled {
		bases = 1 // the race detector makes signatures ten times slower
	}
	rnd := mrand.New(mrand.NewPCG(1, 2))
	total, accepted := 0, 0
	for _, alg := range []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256"} {
		s := newSetup(t, alg, nil)
		other := newTestKey(t, "ES256")
		if alg == "ES256" {
			other = newTestKey(t, "EdDSA")
		}
		tgt := target{bases: s.v.bases, path: "/items"}
		for range bases {
			for _, vr := range variants(t, s.key, s.token, other, rnd) {
				total++
				p, e := s.v.checkProof(context.Background(), vr.proof, "GET", &tgt, s.token, testNow, false)
				refJKT, refOK := refVerify(vr.proof, "GET", s.token, testNow)
				switch {
				case vr.stricter:
					if e == nil {
						t.Errorf("%s %s: accepted; want refused by design", alg, vr.name)
					}
				case e == nil && refOK:
					accepted++
					if p.key.jkt != refJKT {
						t.Errorf("%s %s: thumbprint %s; go-jose %s", alg, vr.name, p.key.jkt, refJKT)
					}
				case e == nil:
					t.Errorf("%s %s: accepted; go-jose refuses", alg, vr.name)
				case refOK && !nonCanonical(vr.proof):
					t.Errorf("%s %s: refused (%v); go-jose accepts", alg, vr.name, e)
				}
			}
		}
	}
	if accepted < total/10 {
		t.Errorf("only %d of %d proofs accepted: the generator is broken", accepted, total)
	}
	t.Logf("%d proofs, %d accepted by both", total, accepted)
}

// nonCanonical reports whether a segment of proof is base64url that
// decodes with non-zero padding bits: go-jose accepts it, this verifier
// does not (RFC 4648 §3.5; one encoding, one reading).
func nonCanonical(proof string) bool {
	for seg := range strings.SplitSeq(proof, ".") {
		b, err := base64.RawURLEncoding.DecodeString(seg)
		if err == nil && base64.RawURLEncoding.EncodeToString(b) != seg {
			return true
		}
	}
	return false
}

// TestHostileProofs sends what no client should, and checks that each is
// refused with a 400 or 401, with bounded work, and that the next
// legitimate request passes.
func TestHostileProofs(t *testing.T) {
	s := newSetup(t, "ES256", nil)
	h, c := s.key.header(), claims(s.token)
	hdr, _ := json.Marshal(h)
	cl, _ := json.Marshal(c)
	huge16k := func() map[string]any {
		// A 16384-bit modulus: refused on its length, before any arithmetic.
		n := make([]byte, 2048)
		n[0] = 0xc1
		return map[string]any{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(n), "e": "AQAB"}
	}
	huge8k := func() map[string]any {
		// Within the header bound: refused on its length too.
		n := make([]byte, 1024)
		n[0] = 0xc1
		return map[string]any{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(n), "e": "AQAB"}
	}
	small := func() map[string]any {
		k, _ := rsa.GenerateKey(rand.Reader, 1024)
		return map[string]any{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()), "e": "AQAB"}
	}
	for _, tt := range []struct {
		name   string
		proof  string
		reason Reason
	}{
		{"RSA 16384 bits", s.key.proof(t, map[string]any{"typ": "dpop+jwt", "alg": "PS256", "jwk": huge16k()}, c), ReasonTooLarge},
		{"RSA 8192 bits", s.key.proof(t, map[string]any{"typ": "dpop+jwt", "alg": "PS256", "jwk": huge8k()}, c), ReasonProofKey},
		{"RSA 1024 bits", s.key.proof(t, map[string]any{"typ": "dpop+jwt", "alg": "PS256", "jwk": small()}, c), ReasonProofKey},
		{"RSA exponent 1", s.key.proof(t, map[string]any{"typ": "dpop+jwt", "alg": "PS256", "jwk": with(small(), "e", "AQ")}, c), ReasonProofKey},
		{"RSA modulus with a leading zero", s.key.proof(t, map[string]any{"typ": "dpop+jwt", "alg": "PS256",
			"jwk": with(small(), "n", base64.RawURLEncoding.EncodeToString(append([]byte{0}, make([]byte, 256)...)))}, c), ReasonProofKey},
		{"deep JSON", s.key.signRaw(t, hdr, append(cl[:len(cl)-1], `,"x":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+"}"...)), ReasonProofSyntax},
		{"many members", s.key.signRaw(t, hdr, append(cl[:len(cl)-1], manyMembers(300)+"}"...)), ReasonProofSyntax},
		{"duplicate typ", s.key.signRaw(t, append(hdr[:len(hdr)-1], `,"typ":"JWT"}`...), cl), ReasonProofSyntax},
		{"escaped duplicate alg", s.key.signRaw(t, append(hdr[:len(hdr)-1], `,"\u0061lg":"none"}`...), cl), ReasonProofSyntax},
		{"duplicate in jwk", s.key.proof(t, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(`{"kty":"EC","kty":"EC"}`)}, c), ReasonProofSyntax},
		{"header of 2 MiB", strings.Repeat("e", 2<<20) + ".e.e", ReasonTooLarge},
		{"header just over its bound", strings.Repeat("e", maxHeaderLen+1) + ".e.e", ReasonTooLarge},
		{"only dots", "..", ReasonProofSyntax},
		{"empty", "", ReasonProofSyntax},
		{"NUL bytes", "\x00.\x00.\x00", ReasonProofSyntax},
		{"invalid UTF-8", "\xff\xfe.\xff.\xff", ReasonProofSyntax},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := s.request("")
			r.Header["Dpop"] = []string{tt.proof}
			_, err := s.v.Check(r)
			var e *Error
			if reasonOf(err) != tt.reason || !asError(err, &e) || e.Status() >= 500 {
				t.Errorf("Check: %v; want %s, 4xx", err, tt.reason)
			}
			if _, err := s.v.Check(s.request(s.validProof(t))); err != nil {
				t.Errorf("next request: %v", err)
			}
		})
	}
}

func asError(err error, e **Error) bool {
	var x *Error
	ok := err != nil && errors.As(err, &x)
	*e = x
	return ok
}

func manyMembers(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `,"m%d":0`, i)
	}
	return b.String()
}

// FuzzCheckProof checks that the proof parser never panics, and accepts
// nothing but proofs signed by the key (the fuzzer cannot sign).
func FuzzCheckProof(f *testing.F) {
	s := newSetup(f, "ES256", nil)
	f.Add(s.validProof(f))
	f.Add(s.key.proof(f, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": map[string]any{"kty": "RSA"}}, claims(s.token)))
	f.Add("e30.e30.")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	tgt := target{bases: s.v.bases, path: "/items"}
	f.Fuzz(func(t *testing.T, proof string) {
		p, e := s.v.checkProof(context.Background(), proof, "GET", &tgt, s.token, testNow, false)
		if e == nil {
			if _, ok := refVerify(proof, "GET", s.token, testNow); !ok {
				t.Fatalf("accepted %q, which go-jose refuses", proof)
			}
			if p.key.jkt != s.key.jkt {
				t.Fatalf("accepted a proof of another key: %q", proof)
			}
		}
	})
}

// FuzzVerify runs Verify end to end on fuzzed headers: never a panic,
// never a 5xx, never an acceptance without the client's key.
func FuzzVerify(f *testing.F) {
	s := newSetup(f, "EdDSA", nil)
	s.store.now = func() time.Time { return testNow }
	f.Add("DPoP "+s.token, s.validProof(f), "GET", "/items")
	f.Add("Bearer x", "a.b.c", "POST", "https://api.example.com/items?x")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, auth, proof, method, u string) {
		_, err := s.v.Verify(context.Background(), &Request{Method: method, URL: u, Authorization: []string{auth}, DPoP: []string{proof}})
		if err == nil {
			if _, ok := refVerify(proof, method, strings.TrimPrefix(auth, "DPoP "), testNow); !ok {
				t.Fatalf("accepted %q %q %q %q, which go-jose refuses", auth, proof, method, u)
			}
			return
		}
		var e *Error
		if !asError(err, &e) || e.Status() >= 500 {
			t.Fatalf("Verify: %v", err)
		}
	})
}

// TestCheckProofAllocs checks that the proof checks allocate little: what
// a verified request costs beyond its TokenVerifier and ReplayStore.
func TestCheckProofAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	s := newSetup(t, "EdDSA", nil)
	p := s.validProof(t)
	tgt := target{bases: s.v.bases, path: "/items"}
	if _, e := s.v.checkProof(context.Background(), p, "GET", &tgt, s.token, testNow, false); e != nil {
		t.Fatal(e)
	}
	s.v.keys.put(p[:indexDot(p)], mustKey(t, s, p))
	n := testing.AllocsPerRun(100, func() {
		s.v.checkProof(context.Background(), p, "GET", &tgt, s.token, testNow, false)
	})
	// The checked proof and the replay key (jti hash) are all.
	if n > 2 {
		t.Errorf("checkProof of a cached header: %v allocations; want at most 2", n)
	}
}

func indexDot(p string) int {
	for i := range p {
		if p[i] == '.' {
			return i
		}
	}
	return -1
}

func mustKey(t *testing.T, s *setup, p string) *proofKey {
	k, e := s.v.parseHeader(p[:indexDot(p)])
	if e != nil {
		t.Fatal(e)
	}
	return k
}
