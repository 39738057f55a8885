package resource_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/dpopkit/dpop/dpoptest"
	"github.com/dpopkit/dpop/resource"
)

// TestJWTVerifierDpoptest verifies the tokens of the repository's test
// server, found through its RFC 8414 metadata.
func TestJWTVerifierDpoptest(t *testing.T) {
	srv := dpoptest.NewServer(nil)
	defer srv.Close()
	v, err := resource.NewJWTVerifier(t.Context(), srv.URL, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := srv.IssueToken(testJKT, "alice", "read write")
	at, err := v.VerifyToken(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if at.Issuer != srv.URL || at.Subject != "alice" || at.JKT != testJKT {
		t.Errorf("iss, sub, jkt = %q, %q, %q; want %q, alice, %q", at.Issuer, at.Subject, at.JKT, srv.URL, testJKT)
	}
	if want := []string{"read", "write"}; !reflect.DeepEqual(at.Scopes, want) {
		t.Errorf("Scopes = %q; want %q", at.Scopes, want)
	}
	if want := []string{srv.URL}; !reflect.DeepEqual(at.Audience, want) {
		t.Errorf("Audience = %q; want %q", at.Audience, want)
	}
	if d := time.Until(at.Expiry); d < 50*time.Minute || d > 61*time.Minute {
		t.Errorf("Expiry = %v; want about an hour from now", at.Expiry)
	}
	if _, ok := at.Claims["jti"].(string); !ok {
		t.Errorf("Claims[jti] = %v; want the token's jti", at.Claims["jti"])
	}

	// Another resource server's verifier refuses it.
	other, err := resource.NewJWTVerifier(t.Context(), srv.URL, audience, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.VerifyToken(t.Context(), tok)
	if te := tokenErr(t, err); te.Claim != "aud" {
		t.Errorf("Claim = %q; want aud", te.Claim)
	}
	checkNoSecret(t, err, tok)
}

// TestJWTVerifierAlgs verifies tokens of every kind of key.
func TestJWTVerifierAlgs(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA, jose.RS256, jose.PS256} {
		t.Run(string(alg), func(t *testing.T) {
			k := newTestKey(t, "k1", alg)
			is := newTestIssuer(t, k)
			clock := newClock()
			v, err := resource.NewJWTVerifier(t.Context(), is.URL, audience, &resource.JWTOptions{Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			at, err := v.VerifyToken(t.Context(), is.token(t, k, clock.Now(), nil))
			if err != nil {
				t.Fatal(err)
			}
			if at.ClientID != "backend" || at.JKT != testJKT {
				t.Errorf("client_id, jkt = %q, %q; want backend, %q", at.ClientID, at.JKT, testJKT)
			}
		})
	}
}

// TestJWTVerifierRefusals presents tokens that fail one check each.
func TestJWTVerifierRefusals(t *testing.T) {
	k := newTestKey(t, "k1", jose.ES256)
	is := newTestIssuer(t, k)
	clock := newClock()
	v, err := resource.NewJWTVerifier(t.Context(), is.URL, audience, &resource.JWTOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	stranger := newTestKey(t, "k1", jose.ES256) // same kid, not in the set
	rsaKey := newTestKey(t, "k1", jose.RS256)

	// HS256 with the issuer's public key as the HMAC secret, in the forms
	// a confused verifier might use.
	pubDER, err := x509.MarshalPKIXPublicKey(k.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pubJWK, err := json.Marshal(k.jwk())
	if err != nil {
		t.Fatal(err)
	}
	hs256 := func(secret []byte) string {
		h := map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": "k1"}
		c := is.claims(now)
		unsigned := rawJWS(t, h, c, nil)
		unsigned = unsigned[:len(unsigned)-1]
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(unsigned))
		return rawJWS(t, h, c, mac.Sum(nil))
	}
	valid := is.token(t, k, now, nil)
	parts := strings.Split(valid, ".")

	tests := []struct {
		name  string
		token string
		claim string
	}{
		{"expired", is.token(t, k, now.Add(-2*time.Hour), nil), "exp"},
		{"expired beyond leeway", is.token(t, k, now, func(h, c map[string]any) { c["exp"] = now.Add(-31 * time.Second).Unix() }), "exp"},
		{"no exp", is.token(t, k, now, func(h, c map[string]any) { delete(c, "exp") }), "exp"},
		{"nbf ahead", is.token(t, k, now, func(h, c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() }), "nbf"},
		{"iat ahead", is.token(t, k, now, func(h, c map[string]any) { c["iat"] = now.Add(time.Minute).Unix() }), "iat"},
		{"other issuer", is.token(t, k, now, func(h, c map[string]any) { c["iss"] = is.URL + "/other" }), "iss"},
		{"no issuer", is.token(t, k, now, func(h, c map[string]any) { delete(c, "iss") }), "iss"},
		{"other audience", is.token(t, k, now, func(h, c map[string]any) { c["aud"] = "https://other.example.com" }), "aud"},
		{"audience list without ours", is.token(t, k, now, func(h, c map[string]any) { c["aud"] = []string{"a", "b"} }), "aud"},
		{"no typ", is.token(t, k, now, func(h, c map[string]any) { delete(h, "typ") }), "typ"},
		{"typ JWT", is.token(t, k, now, func(h, c map[string]any) { h["typ"] = "JWT" }), "typ"},
		{"typ dpop+jwt", is.token(t, k, now, func(h, c map[string]any) { h["typ"] = "dpop+jwt" }), "typ"},
		{"alg none", rawJWS(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": "k1"}, is.claims(now), nil), "alg"},
		{"HS256, PEM public key as secret", hs256(pubPEM), "alg"},
		{"HS256, DER public key as secret", hs256(pubDER), "alg"},
		{"HS256, JWK as secret", hs256(pubJWK), "alg"},
		{"signed by a key not in the set", is.token(t, stranger, now, nil), "signature"},
		{"RS256 under an EC key's kid", is.token(t, rsaKey, now, nil), "kid"},
		{"unknown kid", is.token(t, k, now, func(h, c map[string]any) { h["kid"] = "k2" }), "kid"},
		{"claims changed after signing", parts[0] + "." + strings.Split(is.token(t, k, now, func(h, c map[string]any) { c["sub"] = "mallory" }), ".")[1] + "." + parts[2], "signature"},
		{"signature cut", parts[0] + "." + parts[1] + "." + parts[2][:10], "signature"},
		{"crit", is.token(t, k, now, func(h, c map[string]any) { h["crit"] = []string{"exp"}; h["exp"] = 1 }), "crit"},
		{"b64 false", rawJWS(t, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "k1", "b64": false, "crit": []string{"b64"}}, is.claims(now), make([]byte, 64)), "b64"},
		{"malformed cnf.jkt", is.token(t, k, now, func(h, c map[string]any) { c["cnf"] = map[string]any{"jkt": "short"} }), "cnf"},
		{"cnf not an object", is.token(t, k, now, func(h, c map[string]any) { c["cnf"] = "x" }), "cnf"},
		{"scope not a string", is.token(t, k, now, func(h, c map[string]any) { c["scope"] = []string{"read"} }), "scope"},
		{"exp not a number", is.token(t, k, now, func(h, c map[string]any) { c["exp"] = "tomorrow" }), "exp"},
		{"exp overflows", is.token(t, k, now, func(h, c map[string]any) { c["exp"] = 1e300 }), "exp"},
		{"EXP for exp", is.token(t, k, now, func(h, c map[string]any) { c["EXP"] = c["exp"]; delete(c, "exp") }), "exp"},
		{"sub not a string", is.token(t, k, now, func(h, c map[string]any) { c["sub"] = 42 }), "sub"},
		{"aud of numbers", is.token(t, k, now, func(h, c map[string]any) { c["aud"] = []int{1} }), "aud"},
		{"negative exp", is.token(t, k, now, func(h, c map[string]any) { c["exp"] = -1 }), "exp"},
		{"JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, ""},
		{"two parts", parts[0] + "." + parts[1], ""},
		{"empty", "", ""},
		{"too long", valid + strings.Repeat("A", 16<<10), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, err := v.VerifyToken(t.Context(), tt.token)
			if err == nil {
				t.Fatalf("VerifyToken = %+v; want an error", at)
			}
			if te := tokenErr(t, err); te.Claim != tt.claim {
				t.Errorf("Claim = %q; want %q (%v)", te.Claim, tt.claim, err)
			}
			checkNoSecret(t, err, tt.token, parts[1], parts[2])
		})
	}
	// None of these made the verifier fetch the key set again: the unknown
	// kids came within MinRefreshInterval of the first fetch.
	if n := is.fetches.Load(); n != 1 {
		t.Errorf("key set fetched %d times; want 1", n)
	}

	// Within the leeway, and with the media type form of typ, it passes.
	for name, tok := range map[string]string{
		"expired within the leeway": is.token(t, k, now, func(h, c map[string]any) { c["exp"] = now.Add(-20 * time.Second).Unix() }),
		"typ application/at+jwt":    is.token(t, k, now, func(h, c map[string]any) { h["typ"] = "application/at+JWT" }),
		"no kid":                    is.token(t, k, now, func(h, c map[string]any) { delete(h, "kid") }),
		"audience list":             is.token(t, k, now, func(h, c map[string]any) { c["aud"] = []string{"x", audience} }),
		"unbound":                   is.token(t, k, now, func(h, c map[string]any) { delete(c, "cnf") }),
		"Cnf, an unknown member":    is.token(t, k, now, func(h, c map[string]any) { c["Cnf"] = map[string]any{"jkt": "x"}; delete(c, "cnf") }),
	} {
		if _, err := v.VerifyToken(t.Context(), tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestJWTVerifierAlgList: only the algorithms configured are accepted, and
// none, HS* and unknown names are refused as configuration.
func TestJWTVerifierAlgList(t *testing.T) {
	es := newTestKey(t, "es", jose.ES256)
	ed := newTestKey(t, "ed", jose.EdDSA)
	is := newTestIssuer(t, es, ed)
	for _, algs := range [][]string{{"none"}, {"HS256"}, {"ES256", "HS512"}, {"es256"}, {""}, {}} {
		_, err := resource.NewJWTVerifier(t.Context(), is.URL, audience, &resource.JWTOptions{Algs: algs})
		if err == nil {
			t.Errorf("Algs %q: NewJWTVerifier succeeded; want an error", algs)
		}
		checkNoSecret(t, err)
	}
	// No key of the set for the algorithms accepted: a configuration error.
	if _, err := resource.NewJWTVerifier(t.Context(), is.URL, audience, &resource.JWTOptions{Algs: []string{"RS256"}}); err == nil {
		t.Error("Algs RS256 with EC and Ed25519 keys only: NewJWTVerifier succeeded; want an error")
	}

	clock := newClock()
	v, err := resource.NewJWTVerifier(t.Context(), is.URL, audience, &resource.JWTOptions{Algs: []string{"EdDSA"}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyToken(t.Context(), is.token(t, ed, clock.Now(), nil)); err != nil {
		t.Errorf("EdDSA token: %v", err)
	}
	_, err = v.VerifyToken(t.Context(), is.token(t, es, clock.Now(), nil))
	if te := tokenErr(t, err); te.Claim != "alg" {
		t.Errorf("ES256 token with Algs EdDSA: Claim = %q; want alg", te.Claim)
	}
}

// TestJWTVerifierKeyRotation: a token signed with a new key makes the
// verifier fetch the set again, at most once per MinRefreshInterval, and a
// key withdrawn from the set is refused once the set is fetched again.
func TestJWTVerifierKeyRotation(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.ES256)
	k2 := newTestKey(t, "k2", jose.ES256)
	is := newTestIssuer(t, k1)
	clock := newClock()
	v, err := resource.NewJWTVerifier(t.Context(), is.URL, audience, &resource.JWTOptions{
		Now: clock.Now, MinRefreshInterval: time.Minute, MaxKeySetAge: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	old := is.token(t, k1, clock.Now(), nil)
	if _, err := v.VerifyToken(t.Context(), old); err != nil {
		t.Fatal(err)
	}

	is.publish(k2)
	// Within a minute of the first fetch, the new kid costs no fetch.
	clock.Add(30 * time.Second)
	_, err = v.VerifyToken(t.Context(), is.token(t, k2, clock.Now(), nil))
	if te := tokenErr(t, err); te.Claim != "kid" {
		t.Errorf("new kid within the interval: Claim = %q; want kid", te.Claim)
	}
	if n := is.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d; want 1", n)
	}

	clock.Add(31 * time.Second)
	if _, err := v.VerifyToken(t.Context(), is.token(t, k2, clock.Now(), nil)); err != nil {
		t.Fatalf("new kid after the interval: %v", err)
	}
	if n := is.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d; want 2", n)
	}
	// k1 left the set: its token, verified (and cached) before, is refused
	// now, without another fetch.
	_, err = v.VerifyToken(t.Context(), old)
	if te := tokenErr(t, err); te.Claim != "kid" {
		t.Errorf("withdrawn key: Claim = %q; want kid", te.Claim)
	}
	if n := is.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d; want 2", n)
	}

	// A set older than MaxKeySetAge is fetched again by the next token,
	// and if that fails the old set stays in use.
	clock.Add(2 * time.Hour)
	is.serveJWKS(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	if _, err := v.VerifyToken(t.Context(), is.token(t, k2, clock.Now(), nil)); err != nil {
		t.Errorf("stale set, issuer down: %v", err)
	}
	if n := is.fetches.Load(); n != 3 {
		t.Errorf("fetches = %d; want 3", n)
	}
}

// TestJWTVerifierUnknownKidFlood: tokens with ever new kids, from many
// goroutines at once, make at most one fetch per MinRefreshInterval.
func TestJWTVerifierUnknownKidFlood(t *testing.T) {
	k := newTestKey(t, "k1", jose.ES256)
	is := newTestIssuer(t, k)
	clock := newClock()
	v, err := resource.NewJWTVerifier(t.Context(), is.URL, audience, &resource.JWTOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 32, 40
	toks := make([][]string, goroutines)
	for g := range toks {
		for i := range each {
			toks[g] = append(toks[g], is.token(t, k, clock.Now(), func(h, c map[string]any) { h["kid"] = fmt.Sprintf("kid-%d-%d", g, i) }))
		}
	}
	flood := func() {
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for _, tok := range toks[g] {
					_, err := v.VerifyToken(t.Context(), tok)
					if err == nil {
						t.Error("a token with an unknown kid was accepted")
						return
					}
					tokenErr(t, err)
				}
			})
		}
		wg.Wait()
	}
	flood()
	if n := is.fetches.Load(); n != 1 {
		t.Errorf("within the interval: fetches = %d; want 1 (the first)", n)
	}
	clock.Add(31 * time.Second)
	flood()
	if n := is.fetches.Load(); n != 2 {
		t.Errorf("after the interval: fetches = %d; want 2", n)
	}
}

// TestJWTVerifierSharedFetch: concurrent tokens with a new kid wait for one
// fetch, and all pass.
func TestJWTVerifierSharedFetch(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.ES256)
	k2 := newTestKey(t, "k2", jose.ES256)
	is := newTestIssuer(t, k1)
	clock := newClock()
	v, err := resource.NewJWTVerifier(t.Context(), is.URL, audience, &resource.JWTOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Minute)
	release := make(chan struct{})
	is.serveJWKS(func(w http.ResponseWriter, r *http.Request) {
		<-release
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k1.jwk(), k2.jwk()}})
	})
	const n = 16
	tok := is.token(t, k2, clock.Now(), nil)
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := v.VerifyToken(t.Context(), tok)
			errs <- err
		}()
	}
	// One of them fetches; let the fetch finish once some wait on it. The
	// others may arrive before or after: either way, no second fetch.
	for is.fetches.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := is.fetches.Load(); got != 2 {
		t.Errorf("fetches = %d; want 2", got)
	}
}

// TestJWTVerifierCallerGivesUp: a caller whose context ends stops waiting,
// and the fetch it started goes on for the others.
func TestJWTVerifierCallerGivesUp(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.ES256)
	k2 := newTestKey(t, "k2", jose.ES256)
	is := newTestIssuer(t, k1)
	clock := newClock()
	v, err := resource.NewJWTVerifier(t.Context(), is.URL, audience, &resource.JWTOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Minute)
	release := make(chan struct{})
	is.serveJWKS(func(w http.ResponseWriter, r *http.Request) {
		<-release
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k2.jwk()}})
	})
	ctx, cancel := context.WithCancel(t.Context())
	tok := is.token(t, k2, clock.Now(), nil)
	done := make(chan error)
	go func() {
		_, err := v.VerifyToken(ctx, tok)
		done <- err
	}()
	for is.fetches.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: error = %v; want context.Canceled", err)
	}
	checkNoSecret(t, err)
	close(release)
	// The fetch completes for the next caller, without another fetch.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := v.VerifyToken(t.Context(), tok)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("token with the new key still refused: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if got := is.fetches.Load(); got != 2 {
		t.Errorf("fetches = %d; want 2", got)
	}
}

// TestJWTVerifierHostileKeySet: a key set that is huge, endless, slow or
// not a key set is an *IssuerError, at startup and at a refetch.
func TestJWTVerifierHostileKeySet(t *testing.T) {
	k := newTestKey(t, "k1", jose.ES256)
	huge := func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"keys":[`))
		pad := []byte(strings.Repeat(" ", 64<<10))
		for range 32 { // 2 MiB
			if _, err := w.Write(pad); err != nil {
				return
			}
		}
	}
	endless := func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"keys":[`))
		pad := []byte(strings.Repeat(" ", 64<<10))
		for {
			if _, err := w.Write(pad); err != nil {
				return
			}
		}
	}
	slow := func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"keys":[`))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
	for _, tt := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"huge", huge},
		{"endless", endless},
		{"slow", slow},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }},
		{"no keys member", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"kyes":[]}`)) }},
		{"status 500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }},
		{"redirect elsewhere", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://localhost:1/jwks", http.StatusFound)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := newTestIssuer(t, k)
			opts := &resource.JWTOptions{Timeout: 300 * time.Millisecond}
			is.serveJWKS(tt.h)
			_, err := resource.NewJWTVerifier(t.Context(), is.URL, audience, opts)
			var ie *resource.IssuerError
			if !errors.As(err, &ie) {
				t.Fatalf("NewJWTVerifier: error = %v; want an *IssuerError", err)
			}
			checkNoSecret(t, err)

			// The same at a refetch: the token is not refused as invalid.
			is.serveJWKS(nil)
			clock := newClock()
			opts.Now = clock.Now
			v, err := resource.NewJWTVerifier(t.Context(), is.URL, audience, opts)
			if err != nil {
				t.Fatal(err)
			}
			is.serveJWKS(tt.h)
			clock.Add(time.Minute)
			_, err = v.VerifyToken(t.Context(), is.token(t, k, clock.Now(), func(h, c map[string]any) { h["kid"] = "k2" }))
			if !errors.As(err, &ie) {
				t.Fatalf("VerifyToken: error = %v; want an *IssuerError", err)
			}
			checkNoSecret(t, err)
		})
	}
}

// TestJWTVerifierContext: the constructor's requests end with its context.
func TestJWTVerifierContext(t *testing.T) {
	is := newTestIssuer(t, newTestKey(t, "k1", jose.ES256))
	is.serveJWKS(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := resource.NewJWTVerifier(ctx, is.URL, audience, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v; want context.DeadlineExceeded", err)
	}
}

// TestJWTVerifierDiscovery checks how the key set is found: the RFC 8414
// §3.1 well-known URL (with the issuer's path), OpenID Connect Discovery
// when that is not found, the issuer check of §3.3, and the https rule.
func TestJWTVerifierDiscovery(t *testing.T) {
	k := newTestKey(t, "k1", jose.ES256)
	jwks := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.jwk()}})
	}
	start := func(t *testing.T, routes map[string]func(base string) any) string {
		mux := http.NewServeMux()
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		mux.HandleFunc("GET /jwks", jwks)
		for path, doc := range routes {
			mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, doc(srv.URL)) })
		}
		return srv.URL
	}
	t.Run("issuer with a path", func(t *testing.T) {
		base := start(t, map[string]func(string) any{
			"/.well-known/oauth-authorization-server/tenant/a": func(base string) any {
				return map[string]string{"issuer": base + "/tenant/a", "jwks_uri": base + "/jwks"}
			},
		})
		if _, err := resource.NewJWTVerifier(t.Context(), base+"/tenant/a", audience, nil); err != nil {
			t.Error(err)
		}
	})
	t.Run("openid-configuration", func(t *testing.T) {
		base := start(t, map[string]func(string) any{
			"/tenant/.well-known/openid-configuration": func(base string) any {
				return map[string]string{"issuer": base + "/tenant", "jwks_uri": base + "/jwks"}
			},
		})
		if _, err := resource.NewJWTVerifier(t.Context(), base+"/tenant", audience, nil); err != nil {
			t.Error(err)
		}
	})
	for name, doc := range map[string]func(string) any{
		"another issuer": func(base string) any { return map[string]string{"issuer": base + "/", "jwks_uri": base + "/jwks"} },
		"no jwks_uri":    func(base string) any { return map[string]string{"issuer": base} },
		"http jwks_uri off loopback": func(base string) any {
			return map[string]string{"issuer": base, "jwks_uri": "http://keys.example.com/jwks"}
		},
		"not an object": func(base string) any { return []string{"issuer"} },
	} {
		t.Run(name, func(t *testing.T) {
			base := start(t, map[string]func(string) any{"/.well-known/oauth-authorization-server": doc})
			_, err := resource.NewJWTVerifier(t.Context(), base, audience, nil)
			var ie *resource.IssuerError
			if !errors.As(err, &ie) {
				t.Errorf("error = %v; want an *IssuerError", err)
			}
			checkNoSecret(t, err)
		})
	}
	// Refused before any request: there is no server at these names.
	for _, issuer := range []string{"http://as.example.com", "ftp://127.0.0.1", "https://as.example.com?x=1", "https://as.example.com#f", "/relative", ""} {
		if _, err := resource.NewJWTVerifier(t.Context(), issuer, audience, nil); err == nil {
			t.Errorf("issuer %q: NewJWTVerifier succeeded; want an error", issuer)
		}
	}
	if _, err := resource.NewJWTVerifier(t.Context(), "https://as.example.com", audience, &resource.JWTOptions{JWKSURL: "http://as.example.com/jwks"}); err == nil {
		t.Error("http JWKSURL off loopback: NewJWTVerifier succeeded; want an error")
	}
	if _, err := resource.NewJWTVerifier(t.Context(), "https://as.example.com", "", nil); err == nil {
		t.Error("empty audience: NewJWTVerifier succeeded; want an error")
	}
	// With JWKSURL, no metadata is read.
	base := start(t, nil)
	if _, err := resource.NewJWTVerifier(t.Context(), "https://as.example.com", audience, &resource.JWTOptions{JWKSURL: base + "/jwks"}); err != nil {
		t.Errorf("JWKSURL: %v", err)
	}
}

// TestJWTVerifierKeySetContents: keys the verifier cannot or must not use
// are skipped, not fatal.
func TestJWTVerifierKeySetContents(t *testing.T) {
	k := newTestKey(t, "k1", jose.ES256)
	is := newTestIssuer(t)
	pub, err := json.Marshal(k.jwk())
	if err != nil {
		t.Fatal(err)
	}
	priv, err := json.Marshal(jose.JSONWebKey{Key: k.key, KeyID: "k1", Algorithm: "ES256"})
	if err != nil {
		t.Fatal(err)
	}
	is.serveJWKS(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"keys":[
			{"kty":"oct","k":"c2VjcmV0","kid":"k1","alg":"HS256"},
			{"kty":"OKP","crv":"X25519","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo","kid":"x"},
			{"kty":"EC","crv":"P-256","x":"bad","y":"bad","kid":"k1"},
			{"kty":"unknown"},
			%s,
			%s]}`, priv, pub)
	})
	clock := newClock()
	v, err := resource.NewJWTVerifier(t.Context(), is.URL, audience, &resource.JWTOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyToken(t.Context(), is.token(t, k, clock.Now(), nil)); err != nil {
		t.Error(err)
	}
	keys, err := resource.ParseKeySet([]byte(`{"keys":[` + string(priv) + `,{"kty":"oct","k":"c2VjcmV0"},` + string(pub) + `]}`))
	if err != nil || len(keys) != 1 || !keys[0].IsPublic() {
		t.Errorf("ParseKeySet = %d keys, %v; want the public key only", len(keys), err)
	}
}

// TestJWTVerifierCache: a token presented again is answered from the
// cache, bounded in size; and an expired one is not.
func TestJWTVerifierCache(t *testing.T) {
	k := newTestKey(t, "k1", jose.ES256)
	is := newTestIssuer(t, k)
	clock := newClock()
	v, err := resource.NewJWTVerifier(t.Context(), is.URL, audience, &resource.JWTOptions{Now: clock.Now, CacheSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	tok := is.token(t, k, clock.Now(), func(h, c map[string]any) { c["exp"] = clock.Now().Add(time.Minute).Unix() })
	for range 3 {
		at, err := v.VerifyToken(t.Context(), tok)
		if err != nil {
			t.Fatal(err)
		}
		at.Subject = "changed by a handler" // a copy: the cache keeps its own
	}
	if at, _ := v.VerifyToken(t.Context(), tok); at.Subject != "alice" {
		t.Errorf("Subject = %q; want alice", at.Subject)
	}
	for i := range 20 {
		if _, err := v.VerifyToken(t.Context(), is.token(t, k, clock.Now(), func(h, c map[string]any) { c["jti"] = i })); err != nil {
			t.Fatal(err)
		}
	}
	if n := resource.JWTCacheLen(v); n > 8 {
		t.Errorf("cache holds %d tokens; want at most 8", n)
	}
	clock.Add(2 * time.Minute)
	_, err = v.VerifyToken(t.Context(), tok)
	if te := tokenErr(t, err); te.Claim != "exp" {
		t.Errorf("expired cached token: Claim = %q; want exp", te.Claim)
	}
}

// BenchmarkJWTVerifier measures one verification of an access token: a new
// token each time (the signature checked) and the same token again (from
// the cache: a SHA-256 and a map lookup).
func BenchmarkJWTVerifier(b *testing.B) {
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256} {
		k := newTestKey(b, "k1", alg)
		is := newTestIssuer(b, k)
		for _, cached := range []bool{false, true} {
			name := string(alg) + "/signature"
			size := -1
			if cached {
				name, size = string(alg)+"/cached", 0
			}
			b.Run(name, func(b *testing.B) {
				v, err := resource.NewJWTVerifier(b.Context(), is.URL, audience, &resource.JWTOptions{CacheSize: size})
				if err != nil {
					b.Fatal(err)
				}
				tok := is.token(b, k, time.Now(), nil)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.VerifyToken(b.Context(), tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
