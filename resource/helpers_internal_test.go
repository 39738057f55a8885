package resource

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testNow is the clock of the tests.
var testNow = time.Unix(1_800_000_000, 0)

const (
	testBase = "https://api.example.com"
	testURL  = testBase + "/items"
)

// tokenTable is a TokenVerifier for tests: opaque tokens, each granting a
// fixed AccessToken. It is not a mock of the JWT or introspection
// verifiers: it is the simplest real TokenVerifier.
type tokenTable struct {
	mu     sync.Mutex // guards tokens
	tokens map[string]*AccessToken
	err    error // when set, every token is refused with it
	calls  int
}

func (tt *tokenTable) VerifyToken(ctx context.Context, token string) (*AccessToken, error) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	tt.calls++
	if tt.err != nil {
		return nil, tt.err
	}
	at, ok := tt.tokens[token]
	if !ok {
		return nil, errors.New("dpop: unknown access token")
	}
	return at, nil
}

// issue mints a token bound to jkt ("" for an unbound one).
func (tt *tokenTable) issue(jkt string) string {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if tt.tokens == nil {
		tt.tokens = map[string]*AccessToken{}
	}
	tok := "tok." + randB64(24)
	tt.tokens[tok] = &AccessToken{Subject: "alice", ClientID: "client", Scopes: []string{"read"}, JKT: jkt}
	return tok
}

func randB64(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// testKey is a client's key; its proofs are made here from raw JSON, so
// that tests can make any proof, valid or not.
type testKey struct {
	alg  string
	priv crypto.Signer
	jwk  map[string]any // the public JWK, as go-jose marshals it
	jkt  string         // its thumbprint, as go-jose computes it
}

var (
	rsaOnce sync.Once
	rsaPriv *rsa.PrivateKey // generated once: RSA is slow
)

func newTestKey(t testing.TB, alg string) *testKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "PS256", "RS256", "PS384", "RS512":
		rsaOnce.Do(func() { rsaPriv, err = rsa.GenerateKey(rand.Reader, 2048) })
		priv = rsaPriv
	default:
		t.Fatalf("unknown alg %q", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return keyOf(t, alg, priv)
}

func keyOf(t testing.TB, alg string, priv crypto.Signer) *testKey {
	t.Helper()
	jk := jose.JSONWebKey{Key: priv.Public()}
	raw, err := jk.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	tp, err := jk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{alg: alg, priv: priv, jwk: m, jkt: base64.RawURLEncoding.EncodeToString(tp)}
}

// header returns the usual protected header of k's proofs.
func (k *testKey) header() map[string]any {
	return map[string]any{"typ": "dpop+jwt", "alg": k.alg, "jwk": k.jwk}
}

// claims returns the claims of a valid proof of a GET of testURL at
// testNow presenting token.
func claims(token string) map[string]any {
	return map[string]any{"jti": randB64(16), "htm": "GET", "htu": testURL, "iat": testNow.Unix(), "ath": athOf(token)}
}

func athOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// proof returns a proof of k with the given header and claims.
func (k *testKey) proof(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return k.signRaw(t, h, c)
}

// signRaw signs the raw header and claims JSON as a compact JWS.
func (k *testKey) signRaw(t testing.TB, header, claims []byte) string {
	t.Helper()
	in := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	return in + "." + base64.RawURLEncoding.EncodeToString(k.sign(t, []byte(in)))
}

// sign returns the JWS signature of msg (RFC 7518 §3): ECDSA as r||s.
func (k *testKey) sign(t testing.TB, msg []byte) []byte {
	t.Helper()
	var h crypto.Hash
	switch k.alg {
	case "ES256", "PS256", "RS256":
		h = crypto.SHA256
	case "ES384", "PS384":
		h = crypto.SHA384
	case "ES512", "RS512":
		h = crypto.SHA512
	}
	var opts crypto.SignerOpts = h
	digest := msg
	if h != 0 {
		d := h.New()
		d.Write(msg)
		digest = d.Sum(nil)
	}
	if k.alg[:2] == "PS" {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
	}
	sig, err := k.priv.Sign(rand.Reader, digest, opts)
	if err != nil {
		t.Fatal(err)
	}
	if ec, ok := k.priv.(*ecdsa.PrivateKey); ok {
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(sig, &rs); err != nil {
			t.Fatal(err)
		}
		size := (ec.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		rs.R.FillBytes(out[:size])
		rs.S.FillBytes(out[size:])
		sig = out
	}
	return sig
}

// setup is a Verifier over a tokenTable with a key and a token bound to it.
type setup struct {
	v      *Verifier
	tokens *tokenTable
	key    *testKey
	token  string
	store  *MemoryStore
}

func newSetup(t testing.TB, alg string, edit func(*Config)) *setup {
	t.Helper()
	s := &setup{tokens: &tokenTable{}, key: newTestKey(t, alg)}
	s.token = s.tokens.issue(s.key.jkt)
	s.store = &MemoryStore{now: func() time.Time { return testNow }}
	c := Config{
		Tokens:     s.tokens,
		PublicURLs: []string{testBase},
		Replay:     s.store,
		Now:        func() time.Time { return testNow },
	}
	if edit != nil {
		edit(&c)
	}
	v, err := NewVerifier(c)
	if err != nil {
		t.Fatal(err)
	}
	s.v = v
	return s
}

// request returns a GET of testURL?q=1 with the token and proof.
func (s *setup) request(proof string) *http.Request {
	r := httptest.NewRequest("GET", testURL+"?q=1", nil)
	r.Header.Set("Authorization", "DPoP "+s.token)
	if proof != "" {
		r.Header.Set("DPoP", proof)
	}
	return r
}

// validProof returns a fresh valid proof for s.request.
func (s *setup) validProof(t testing.TB) string {
	return s.key.proof(t, s.key.header(), claims(s.token))
}

// reasonOf returns the Reason of err, "" for nil, "?" for another error.
func reasonOf(err error) Reason {
	if err == nil {
		return ""
	}
	var e *Error
	if !errors.As(err, &e) {
		return "?"
	}
	return e.Reason
}

// jwtIssuer is an authorization server that issues RFC 9068 JWT access
// tokens, with its RFC 8414 metadata and JWKS: what the tests of this
// package once took from dpoptest, which now imports this package
// (through internal/proofcheck), so that these tests cannot import it.
type jwtIssuer struct {
	URL string
	srv *httptest.Server
	key *ecdsa.PrivateKey
}

func newJWTIssuer(t testing.TB) *jwtIssuer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &jwtIssuer{key: k}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"issuer": is.URL, "jwks_uri": is.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	is.srv = httptest.NewServer(mux)
	is.URL = is.srv.URL
	return is
}

func (is *jwtIssuer) Close() { is.srv.Close() }

// IssueToken returns an access token for the audience is.URL, bound to jkt.
func (is *jwtIssuer) IssueToken(jkt, sub, scope string) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: is.key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	if err != nil {
		panic(err)
	}
	now := time.Now()
	c, _ := json.Marshal(map[string]any{
		"iss": is.URL, "aud": is.URL, "sub": sub, "client_id": "backend", "scope": scope,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": randB64(16),
		"cnf": map[string]any{"jkt": jkt},
	})
	jws, err := s.Sign(c)
	if err != nil {
		panic(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return tok
}
