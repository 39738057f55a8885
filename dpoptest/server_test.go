package dpoptest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func newTestServer(t *testing.T, cfg *Config) *Server {
	t.Helper()
	s := NewServer(cfg)
	t.Cleanup(s.Close)
	return s
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// send makes one request and returns the response with its body read.
func send(t *testing.T, method, u string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// callAPI calls the resource server with token and a proof of k.
func callAPI(t *testing.T, k *clientKey, method, u, tok, nonce string) (*http.Response, []byte) {
	t.Helper()
	hdr := map[string]string{"Authorization": "DPoP " + tok, "DPoP": k.proof(method, u, withToken(tok), withNonce(nonce))}
	return send(t, method, u, nil, hdr)
}

func wantChallenge(t *testing.T, resp *http.Response, code string) {
	t.Helper()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status = %d; want 401", resp.StatusCode)
	}
	h := resp.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(h, "DPoP ") {
		t.Fatalf("WWW-Authenticate = %q; want a DPoP challenge", h)
	}
	if code == "" {
		if strings.Contains(h, "error=") || !strings.Contains(h, `algs="ES256 `) {
			t.Errorf("WWW-Authenticate = %q; want algs and no error", h)
		}
		return
	}
	if !strings.Contains(h, `error="`+code+`"`) {
		t.Errorf("WWW-Authenticate = %q; want error=%q", h, code)
	}
}

func TestResourceServer(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	s := newTestServer(t, &Config{Now: clock})
	k := newClientKey(t, "ES256")
	other := newClientKey(t, "ES256")
	tok := s.IssueToken(k.jkt, "alice", "read")
	u := s.URL + "/api/items"

	resp, body := callAPI(t, k, "GET", u, tok, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("good request: status = %d; body %s", resp.StatusCode, body)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got["subject"] != "alice" || got["jkt"] != k.jkt || got["path"] != "/api/items" || got["method"] != "GET" || got["scope"] != "read" {
		t.Errorf("echo = %v", got)
	}

	t.Run("no credentials", func(t *testing.T) {
		resp, _ := send(t, "GET", u, nil, nil)
		wantChallenge(t, resp, "")
	})
	t.Run("bearer", func(t *testing.T) {
		resp, _ := send(t, "GET", u, nil, map[string]string{"Authorization": "Bearer " + tok})
		wantChallenge(t, resp, "invalid_token")
	})
	t.Run("no proof", func(t *testing.T) {
		resp, _ := send(t, "GET", u, nil, map[string]string{"Authorization": "DPoP " + tok})
		wantChallenge(t, resp, "invalid_dpop_proof")
	})
	t.Run("proof without ath", func(t *testing.T) {
		resp, _ := send(t, "GET", u, nil, map[string]string{"Authorization": "DPoP " + tok, "DPoP": k.proof("GET", u)})
		wantChallenge(t, resp, "invalid_dpop_proof")
	})
	t.Run("proof for other URL", func(t *testing.T) {
		resp, _ := send(t, "GET", u, nil, map[string]string{"Authorization": "DPoP " + tok, "DPoP": k.proof("GET", s.URL+"/api/other", withToken(tok))})
		wantChallenge(t, resp, "invalid_dpop_proof")
	})
	t.Run("replayed proof", func(t *testing.T) {
		hdr := map[string]string{"Authorization": "DPoP " + tok, "DPoP": k.proof("GET", u, withToken(tok))}
		if resp, _ := send(t, "GET", u, nil, hdr); resp.StatusCode != 200 {
			t.Fatalf("first: status = %d", resp.StatusCode)
		}
		resp, _ := send(t, "GET", u, nil, hdr)
		wantChallenge(t, resp, "invalid_dpop_proof")
	})
	t.Run("other key", func(t *testing.T) {
		resp, _ := callAPI(t, other, "GET", u, tok, "")
		wantChallenge(t, resp, "invalid_token")
	})
	t.Run("forged token", func(t *testing.T) {
		forged := NewServer(nil)
		defer forged.Close()
		resp, _ := callAPI(t, k, "GET", u, forged.IssueToken(k.jkt, "alice", ""), "")
		wantChallenge(t, resp, "invalid_token")
	})
	t.Run("expired", func(t *testing.T) {
		old := s.IssueToken(k.jkt, "alice", "")
		now = now.Add(2 * time.Hour)
		defer func() { now = now.Add(-2 * time.Hour) }()
		resp, _ := send(t, "GET", u, nil, map[string]string{"Authorization": "DPoP " + old,
			"DPoP": k.proof("GET", u, withToken(old), withClaims(func(c map[string]any) { c["iat"] = now.Unix() }))})
		wantChallenge(t, resp, "invalid_token")
	})
}

func TestResourceBodyArrivesWhole(t *testing.T) {
	s := newTestServer(t, nil)
	k := newClientKey(t, "EdDSA")
	tok := s.IssueToken(k.jkt, "alice", "")
	body := make([]byte, 5<<20+3)
	rand.Read(body)
	u := s.URL + "/api/upload?x=1"
	resp, b := send(t, "PUT", u, bytes.NewReader(body), map[string]string{"Authorization": "DPoP " + tok, "DPoP": k.proof("PUT", u, withToken(tok))})
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d: %s", resp.StatusCode, b)
	}
	var got struct {
		Len int64  `json:"body_len"`
		Sum string `json:"body_sha256"`
	}
	json.Unmarshal(b, &got)
	sum := sha256.Sum256(body)
	if got.Len != int64(len(body)) || got.Sum != hex.EncodeToString(sum[:]) {
		t.Errorf("body_len, body_sha256 = %d, %s; want %d, %x", got.Len, got.Sum, len(body), sum)
	}
}

func TestResourceNonce(t *testing.T) {
	s := newTestServer(t, &Config{RequireNonce: true, NonceEvery: 2})
	k := newClientKey(t, "ES256")
	tok := s.IssueToken(k.jkt, "alice", "")
	u := s.URL + "/api/x"

	resp, _ := callAPI(t, k, "GET", u, tok, "")
	wantChallenge(t, resp, "use_dpop_nonce")
	n1 := resp.Header.Get("DPoP-Nonce")
	if n1 == "" || n1 != s.RSNonce() {
		t.Fatalf("DPoP-Nonce = %q; want the RS nonce %q", n1, s.RSNonce())
	}
	if n1 == s.ASNonce() {
		t.Errorf("RS nonce equals AS nonce %q", n1)
	}
	resp, _ = callAPI(t, k, "GET", u, tok, n1)
	if resp.StatusCode != 200 || resp.Header.Get("DPoP-Nonce") != n1 {
		t.Fatalf("with nonce: status %d, DPoP-Nonce %q; want 200, %q", resp.StatusCode, resp.Header.Get("DPoP-Nonce"), n1)
	}
	// The second accepted proof rotates; the 200 announces the new nonce.
	resp, _ = callAPI(t, k, "GET", u, tok, n1)
	n2 := resp.Header.Get("DPoP-Nonce")
	if resp.StatusCode != 200 || n2 == n1 || n2 == "" {
		t.Fatalf("rotation: status %d, DPoP-Nonce %q; want 200 and a new nonce", resp.StatusCode, n2)
	}
	resp, _ = callAPI(t, k, "GET", u, tok, n1)
	wantChallenge(t, resp, "use_dpop_nonce")
	if got := resp.Header.Get("DPoP-Nonce"); got != n2 {
		t.Errorf("stale nonce challenge carries %q; want %q", got, n2)
	}
	resp, _ = callAPI(t, k, "GET", u, tok, s.ASNonce())
	wantChallenge(t, resp, "use_dpop_nonce")
	resp, _ = callAPI(t, k, "GET", u, tok, n2)
	if resp.StatusCode != 200 {
		t.Errorf("current nonce: status = %d; want 200", resp.StatusCode)
	}
}

func TestHandle(t *testing.T) {
	s := newTestServer(t, nil)
	s.Handle("/custom", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, ok := TokenFromContext(r.Context())
		if !ok {
			t.Error("TokenFromContext: no token")
			return
		}
		io.WriteString(w, ti.Subject+" "+ti.Scope)
	}))
	k := newClientKey(t, "ES384")
	tok := s.IssueToken(k.jkt, "bob", "a b")
	resp, body := callAPI(t, k, "POST", s.URL+"/custom", tok, "")
	if resp.StatusCode != 200 || string(body) != "bob a b" {
		t.Errorf("got %d %q; want 200 %q", resp.StatusCode, body, "bob a b")
	}
	resp, _ = send(t, "POST", s.URL+"/custom", nil, nil)
	wantChallenge(t, resp, "")
	recs := s.Requests()
	if len(recs) != 2 || recs[0].Kind != KindResource || recs[0].Status != 200 || recs[0].Proof == nil || recs[0].Proof.Thumbprint != k.jkt {
		t.Errorf("Requests()[0] = %+v", recs[0])
	}
	if recs[1].Status != 401 || recs[1].Proof != nil {
		t.Errorf("Requests()[1] = %+v", recs[1])
	}
}

func TestMetadataAndJWKS(t *testing.T) {
	s := newTestServer(t, &Config{Algs: []string{"ES256", "EdDSA"}})
	_, b := send(t, "GET", s.URL+pathMetadata, nil, nil)
	var md struct {
		Issuer   string   `json:"issuer"`
		Token    string   `json:"token_endpoint"`
		PAR      string   `json:"pushed_authorization_request_endpoint"`
		Revoke   string   `json:"revocation_endpoint"`
		Algs     []string `json:"dpop_signing_alg_values_supported"`
		PKCE     []string `json:"code_challenge_methods_supported"`
		JWKSURI  string   `json:"jwks_uri"`
		AuthMeth []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		t.Fatal(err)
	}
	if md.Issuer != s.URL || md.Token != s.Endpoint().TokenURL || md.PAR != s.PARURL() || md.Revoke != s.RevocationURL() || strings.Join(md.Algs, " ") != "ES256 EdDSA" || strings.Join(md.PKCE, " ") != "S256" {
		t.Errorf("metadata = %+v", md)
	}
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Errorf("URL = %q; want 127.0.0.1", s.URL)
	}
	_, b = send(t, "GET", md.JWKSURI, nil, nil)
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	json.Unmarshal(b, &set)
	if len(set.Keys) != 1 || bytes.Contains(set.Keys[0], []byte(`"d"`)) {
		t.Fatalf("jwks = %s", b)
	}
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(b, &jwks); err != nil {
		t.Fatal(err)
	}
	tok := s.IssueToken("jkt-value", "alice", "read")
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(jwks.Keys[0])
	if err != nil {
		t.Fatalf("access token does not verify with the published key: %v", err)
	}
	var c struct {
		Iss, Sub, Aud string
		Cnf           struct{ JKT string }
	}
	json.Unmarshal(payload, &c)
	if c.Iss != s.URL || c.Aud != s.URL || c.Sub != "alice" || c.Cnf.JKT != "jkt-value" {
		t.Errorf("access token claims = %s", payload)
	}
}

func TestRecordsInvalidProof(t *testing.T) {
	s := newTestServer(t, nil)
	k := newClientKey(t, "ES256")
	tok := s.IssueToken(k.jkt, "alice", "")
	u := s.URL + "/api/x"
	send(t, "GET", u, nil, map[string]string{"Authorization": "DPoP " + tok, "DPoP": k.proof("GET", u, withToken(tok), proofOpts{typ: "JWT"})})
	recs := s.Requests()
	if len(recs) != 1 {
		t.Fatalf("%d records; want 1", len(recs))
	}
	r := recs[0]
	if r.Proof != nil || !strings.Contains(r.ProofErr, "typ") || r.Error != "invalid_dpop_proof" || r.Status != 401 || r.Kind != KindResource || r.Method != "GET" || r.Path != "/api/x" {
		t.Errorf("record = %+v", r)
	}
	s.ResetRequests()
	if n := len(s.Requests()); n != 0 {
		t.Errorf("after ResetRequests: %d records", n)
	}
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}
