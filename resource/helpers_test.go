package resource_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/dpopkit/dpop/resource"
)

// audience is the resource server's identifier in the tests' tokens.
const audience = "https://api.example.com"

// testJKT is a well-formed cnf.jkt (the RFC 7638 §3.1 example's
// thumbprint).
const testJKT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newClock() *testClock { return &testClock{t: time.Unix(1_800_000_000, 0)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testKey is a signing key of the test issuer.
type testKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

var (
	rsaOnce sync.Once
	rsaPriv *rsa.PrivateKey
)

// newTestKey returns a key for alg named kid. RSA keys are generated once
// per test binary: generating one is slow.
func newTestKey(t testing.TB, kid string, alg jose.SignatureAlgorithm) *testKey {
	t.Helper()
	k := &testKey{kid: kid, alg: alg}
	var err error
	switch alg {
	case jose.ES256:
		k.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		k.key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.EdDSA:
		_, k.key, err = ed25519.GenerateKey(rand.Reader)
	case jose.RS256, jose.PS256:
		rsaOnce.Do(func() { rsaPriv, err = rsa.GenerateKey(rand.Reader, 2048) })
		k.key = rsaPriv
	default:
		t.Fatalf("newTestKey: alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jwk returns the public JWK of k.
func (k *testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// sign returns a compact JWS of claims made with k, with the protected
// header parameters header (typ, kid, ...) on top of alg.
func (k *testKey) sign(t testing.TB, header map[string]any, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	for name, v := range header {
		opts.WithHeader(jose.HeaderKey(name), v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// rawJWS returns the compact serialization of header and claims with the
// signature sig, for tokens no library would make.
func rawJWS(t testing.TB, header, claims map[string]any, sig []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(sig)
}

// testIssuer is an authorization server on 127.0.0.1 that publishes
// RFC 8414 metadata and a key set the test controls, and counts the
// fetches of the key set.
type testIssuer struct {
	URL     string
	srv     *httptest.Server
	fetches atomic.Int64 // key set requests

	mu   sync.Mutex // guards keys and jwks
	keys []*testKey
	jwks http.HandlerFunc // when set, answers the key set requests
}

// newTestIssuer starts an issuer publishing keys; the test stops it.
func newTestIssuer(t testing.TB, keys ...*testKey) *testIssuer {
	t.Helper()
	is := &testIssuer{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"issuer": is.URL, "jwks_uri": is.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		is.mu.Lock()
		h := is.jwks
		var set jose.JSONWebKeySet
		for _, k := range is.keys {
			set.Keys = append(set.Keys, k.jwk())
		}
		is.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		writeJSON(w, set)
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	is.URL = is.srv.URL
	return is
}

// publish replaces the published key set.
func (is *testIssuer) publish(keys ...*testKey) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = keys
}

// serveJWKS makes h answer the key set requests (nil: the keys again).
func (is *testIssuer) serveJWKS(h http.HandlerFunc) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.jwks = h
}

// claims returns the claims of a valid access token of is at now.
func (is *testIssuer) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss":       is.URL,
		"sub":       "alice",
		"aud":       audience,
		"client_id": "backend",
		"scope":     "read write",
		"iat":       now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
		"jti":       "jti-1",
		"cnf":       map[string]any{"jkt": testJKT},
	}
}

// token returns an access token of is signed with k at now, after edit
// (if not nil) changed its header and claims.
func (is *testIssuer) token(t testing.TB, k *testKey, now time.Time, edit func(h, c map[string]any)) string {
	t.Helper()
	h := map[string]any{"typ": "at+jwt", "kid": k.kid}
	c := is.claims(now)
	if edit != nil {
		edit(h, c)
	}
	return k.sign(t, h, c)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// tokenErr returns err as a *resource.TokenError, failing the test if it
// is not one.
func tokenErr(t testing.TB, err error) *resource.TokenError {
	t.Helper()
	var te *resource.TokenError
	if !errors.As(err, &te) {
		t.Fatalf("error = %v (%T); want a *resource.TokenError", err, err)
	}
	return te
}

// checkNoSecret fails the test if the text of err holds one of secrets,
// or does not start with "dpop: ".
func checkNoSecret(t testing.TB, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "dpop: ") {
		t.Errorf("error %q does not start with \"dpop: \"", msg)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error %q holds a secret", msg)
		}
	}
}
