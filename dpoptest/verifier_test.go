package dpoptest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

const testURL = "https://rs.example.com/api/items"

func TestVerifyAcceptsEachAlg(t *testing.T) {
	for _, alg := range defaultAlgs {
		t.Run(alg, func(t *testing.T) {
			k := newClientKey(t, alg)
			var v Verifier
			p, err := v.Verify(k.proof("GET", testURL), "GET", testURL, "")
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Alg != alg {
				t.Errorf("Alg = %q; want %q", p.Alg, alg)
			}
			if p.Thumbprint != k.jkt {
				t.Errorf("Thumbprint = %q; want %q", p.Thumbprint, k.jkt)
			}
			if !p.JWK.IsPublic() {
				t.Errorf("JWK is not public")
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	k := newClientKey(t, "ES256")
	ec := k.priv.(*ecdsa.PrivateKey)
	now := time.Now()
	claims := func() map[string]any {
		return map[string]any{"jti": randString(16), "htm": "GET", "htu": testURL, "iat": now.Unix()}
	}
	tampered := func() string {
		p := k.proof("GET", testURL)
		other := newClientKey(t, "ES256").proof("GET", testURL)
		// signature of another key over another payload
		return p[:len(p)-86] + other[len(other)-86:]
	}
	tests := []struct {
		name        string
		proof       string
		method, url string
		token       string
		check       string
	}{
		{"empty", "", "GET", testURL, "", "header"},
		{"not jws", "abc", "GET", testURL, "", "jws"},
		{"wrong typ", k.proof("GET", testURL, proofOpts{typ: "jwt"}), "GET", testURL, "", "typ"},
		{"alg none", b64([]byte(`{"typ":"dpop+jwt","alg":"none","jwk":{}}`)) + "." + b64([]byte(`{}`)) + ".", "GET", testURL, "", "alg"},
		{"alg HS256", b64([]byte(`{"typ":"dpop+jwt","alg":"HS256","jwk":{"kty":"oct","k":"AAAA"}}`)) + "." + b64([]byte(`{}`)) + ".AAAA", "GET", testURL, "", "alg"},
		{"alg not allowed", newClientKey(t, "ES384").proof("GET", testURL), "GET", testURL, "", "alg"},
		{"no jwk", rawES256(t, ec, map[string]any{"typ": "dpop+jwt", "alg": "ES256"}, claims()), "GET", testURL, "", "jwk"},
		{"private jwk", rawES256(t, ec, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": ecJWK(ec, true)}, claims()), "GET", testURL, "", "jwk"},
		{"bad signature", tampered(), "GET", testURL, "", "signature"},
		{"signed by other key", rawES256(t, newClientKey(t, "ES256").priv.(*ecdsa.PrivateKey), map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": ecJWK(ec, false)}, claims()), "GET", testURL, "", "signature"},
		{"no jti", k.proof("GET", testURL, withClaims(func(c map[string]any) { delete(c, "jti") })), "GET", testURL, "", "jti"},
		{"wrong htm", k.proof("POST", testURL), "GET", testURL, "", "htm"},
		{"lower-case htm", k.proof("get", testURL), "GET", testURL, "", "htm"},
		{"other path", k.proof("GET", testURL+"/x"), "GET", testURL, "", "htu"},
		{"other host", k.proof("GET", "https://other.example.com/api/items"), "GET", testURL, "", "htu"},
		{"other scheme", k.proof("GET", "http://rs.example.com/api/items"), "GET", testURL, "", "htu"},
		{"iat too old", k.proof("GET", testURL, withClaims(func(c map[string]any) { c["iat"] = now.Add(-2 * time.Minute).Unix() })), "GET", testURL, "", "iat"},
		{"iat too new", k.proof("GET", testURL, withClaims(func(c map[string]any) { c["iat"] = now.Add(2 * time.Minute).Unix() })), "GET", testURL, "", "iat"},
		{"iat string", k.proof("GET", testURL, withClaims(func(c map[string]any) { c["iat"] = "1" })), "GET", testURL, "", "claims"},
		{"ath without token", k.proof("GET", testURL, withToken("tok")), "GET", testURL, "", "ath"},
		{"no ath with token", k.proof("GET", testURL), "GET", testURL, "tok", "ath"},
		{"wrong ath", k.proof("GET", testURL, withToken("other")), "GET", testURL, "tok", "ath"},
	}
	v := &Verifier{Algs: []string{"ES256", "HS256", "none"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(tt.proof, tt.method, tt.url, tt.token)
			var pe *ProofError
			if !errors.As(err, &pe) {
				t.Fatalf("Verify = %v, %v; want *ProofError", p, err)
			}
			if pe.Check != tt.check {
				t.Errorf("Check = %q; want %q (%v)", pe.Check, tt.check, err)
			}
		})
	}
	if got, want := v.AllowedAlgs(), []string{"ES256"}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("AllowedAlgs = %v; want %v", got, want)
	}
}

func TestVerifyHTUNormalisation(t *testing.T) {
	k := newClientKey(t, "ES256")
	tests := []struct {
		htu, url string
		ok       bool
	}{
		{"https://rs.example.com/api/items", "https://rs.example.com/api/items?q=1#f", true},
		{"https://rs.example.com/api/items?q=2", "https://rs.example.com/api/items", true},
		{"HTTPS://RS.Example.com:443/api/items", "https://rs.example.com/api/items", true},
		{"http://127.0.0.1:80", "http://127.0.0.1/", true},
		{"http://127.0.0.1:8080/a%2fb", "http://127.0.0.1:8080/a%2Fb", true},
		{"http://127.0.0.1:8080/a%2Fb", "http://127.0.0.1:8080/a/b", false},
		{"https://rs.example.com/api/Items", "https://rs.example.com/api/items", false},
		{"https://rs.example.com:8443/api/items", "https://rs.example.com/api/items", false},
		{"https://u@rs.example.com/api/items", "https://rs.example.com/api/items", false},
		{"/api/items", "https://rs.example.com/api/items", false},
	}
	var v Verifier
	for _, tt := range tests {
		_, err := v.Verify(k.proof("GET", tt.htu), "GET", tt.url, "")
		if got := err == nil; got != tt.ok {
			t.Errorf("htu %q vs %q: ok = %v; want %v (%v)", tt.htu, tt.url, got, tt.ok, err)
		}
	}
}

func TestVerifyReplay(t *testing.T) {
	k := newClientKey(t, "EdDSA")
	now := time.Now()
	v := &Verifier{Now: func() time.Time { return now }, MaxSkew: 10 * time.Second}
	p := k.proof("GET", testURL, withClaims(func(c map[string]any) { c["iat"] = now.Unix() }))
	if _, err := v.Verify(p, "GET", testURL, ""); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(p, "GET", testURL, "")
	var pe *ProofError
	if !errors.As(err, &pe) || pe.Check != "jti" {
		t.Fatalf("replay: err = %v; want jti ProofError", err)
	}
	// Once the proof's iat is out of the window the jti may be forgotten,
	// but the proof is then rejected for its iat.
	now = now.Add(25 * time.Second)
	if _, err := v.Verify(p, "GET", testURL, ""); !errors.As(err, &pe) || pe.Check != "iat" {
		t.Fatalf("late replay: err = %v; want iat ProofError", err)
	}
}

func TestVerifyConcurrentReplay(t *testing.T) {
	k := newClientKey(t, "ES256")
	var v Verifier
	p := k.proof("GET", testURL)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 16 {
		wg.Go(func() {
			if _, err := v.Verify(p, "GET", testURL, ""); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Errorf("%d of 16 concurrent copies accepted; want 1", ok)
	}
}

func TestJTICacheBounded(t *testing.T) {
	var c jtiCache
	now := time.Now()
	for i := range maxJTIs + 10 {
		c.add(string(rune(i))+randString(4), now, now.Add(time.Hour))
	}
	if len(c.m) > maxJTIs {
		t.Errorf("cache holds %d entries; want <= %d", len(c.m), maxJTIs)
	}
	if !c.add("x", now, now.Add(time.Hour)) || c.add("x", now, now.Add(time.Hour)) {
		t.Errorf("add x twice: want true then false")
	}
}

// TestVerifyResourceChecks: the signature and the claims are checked by
// package resource, which refuses what go-jose let through:
// a jku header parameter (never fetched), a claim set with a member twice
// (two readings of one proof), an RSA key below 2048 bits.
func TestVerifyResourceChecks(t *testing.T) {
	k := newClientKey(t, "ES256")
	ec := k.priv.(*ecdsa.PrivateKey)
	now := time.Now().Unix()
	sign := func(header, claims string) string {
		input := b64([]byte(header)) + "." + b64([]byte(claims))
		sum := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, ec, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return input + "." + b64(sig)
	}
	jwk, _ := json.Marshal(ecJWK(ec, false))
	header := `{"typ":"dpop+jwt","alg":"ES256","jwk":` + string(jwk)
	claims := func(extra string) string {
		return `{"jti":"` + randString(16) + `","htm":"GET",` + extra + `"htu":"` + testURL + `","iat":` + strconv.FormatInt(now, 10) + `}`
	}
	var v Verifier
	if _, err := v.Verify(sign(header+`}`, claims("")), "GET", testURL, ""); err != nil {
		t.Fatalf("valid proof: %v", err)
	}
	for _, tt := range []struct{ name, proof, check string }{
		{"jku", sign(header+`,"jku":"https://evil.example/jwks"}`, claims("")), "header"},
		{"duplicate htu", sign(header+`}`, claims(`"htu":"https://other.example.com/x",`)), "claims"},
	} {
		_, err := v.Verify(tt.proof, "GET", testURL, "")
		var pe *ProofError
		if !errors.As(err, &pe) || pe.Check != tt.check {
			t.Errorf("%s: err = %v; want a %q ProofError", tt.name, err, tt.check)
		}
	}
}
