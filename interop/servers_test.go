package interop

// These tests prove the interop servers' configuration with hand-made DPoP
// proofs (go-jose, net/http only), independently of the SDK under test.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

type rawProofer struct {
	key    *ecdsa.PrivateKey
	signer jose.Signer
	jkt    string
}

func newRawProofer(t *testing.T) *rawProofer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &rawProofer{key: key, signer: signer, jkt: base64.RawURLEncoding.EncodeToString(tp)}
}

// proof returns a fresh DPoP proof for method and rawURL (query dropped).
func (p *rawProofer) proof(t *testing.T, method, rawURL, nonce, accessToken string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.RawQuery, u.Fragment = "", ""
	jti := make([]byte, 16)
	rand.Read(jti)
	claims := map[string]any{
		"jti": base64.RawURLEncoding.EncodeToString(jti),
		"htm": method,
		"htu": u.String(),
		"iat": time.Now().Unix(),
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	payload, _ := json.Marshal(claims)
	jws, err := p.signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type discovery struct {
	Issuer                      string   `json:"issuer"`
	AuthorizationEndpoint       string   `json:"authorization_endpoint"`
	TokenEndpoint               string   `json:"token_endpoint"`
	DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint"`
	PAREndpoint                 string   `json:"pushed_authorization_request_endpoint"`
	DPoPAlgs                    []string `json:"dpop_signing_alg_values_supported"`
}

func discover(t *testing.T, issuer string) discovery {
	t.Helper()
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d discovery
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != issuer {
		t.Fatalf("discovery issuer %q, want %q", d.Issuer, issuer)
	}
	return d
}

type oauthResponse struct {
	status int
	header http.Header
	body   map[string]any
}

func (r oauthResponse) str(k string) string { s, _ := r.body[k].(string); return s }

// postAS POSTs form to endpoint with a DPoP proof (when p != nil). On
// 400 use_dpop_nonce it checks the challenge and retries once with the nonce
// and a new proof, as RFC 9449 §8 says.
func postAS(t *testing.T, p *rawProofer, endpoint string, form url.Values, basicID, basicSecret string) oauthResponse {
	t.Helper()
	nonce := ""
	for attempt := 0; attempt < 2; attempt++ {
		req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basicID != "" {
			req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
		}
		if p != nil {
			req.Header.Set("DPoP", p.proof(t, http.MethodPost, endpoint, nonce, ""))
		}
		r := doJSON(t, req)
		if attempt == 0 && r.status == http.StatusBadRequest && r.str("error") == "use_dpop_nonce" {
			nonce = r.header.Get("DPoP-Nonce")
			if nonce == "" {
				t.Fatalf("AS use_dpop_nonce without DPoP-Nonce: %v", r.body)
			}
			continue
		}
		return r
	}
	t.Fatal("unreachable")
	return oauthResponse{}
}

func doJSON(t *testing.T, req *http.Request) oauthResponse {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := oauthResponse{status: resp.StatusCode, header: resp.Header, body: map[string]any{}}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: HTTP %d, not JSON: %q", req.Method, req.URL, resp.StatusCode, raw)
		}
	}
	return r
}

// callRS calls the RS with the token and a proof; first without a nonce, so it
// must see the 401 use_dpop_nonce challenge, then with it.
func callRS(t *testing.T, p *rawProofer, method, u, token, body string) oauthResponse {
	t.Helper()
	send := func(nonce string) oauthResponse {
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", p.proof(t, method, u, nonce, token))
		return doJSON(t, req)
	}
	r := send("")
	if r.status != http.StatusUnauthorized {
		t.Fatalf("RS without nonce: HTTP %d %v, want 401", r.status, r.body)
	}
	wa := r.header.Get("WWW-Authenticate")
	if !strings.HasPrefix(wa, "DPoP ") || !strings.Contains(wa, `error="use_dpop_nonce"`) || !strings.Contains(wa, `algs="`) {
		t.Fatalf("RS challenge: WWW-Authenticate %q", wa)
	}
	nonce := r.header.Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatal("RS challenge without DPoP-Nonce")
	}
	r = send(nonce)
	if r.status != http.StatusOK {
		t.Fatalf("RS with nonce: HTTP %d %v (WWW-Authenticate %q)", r.status, r.body, r.header.Get("WWW-Authenticate"))
	}
	if r.header.Get("DPoP-Nonce") == "" {
		t.Fatal("RS 200 without DPoP-Nonce")
	}
	return r
}

// jwtClaims decodes a JWT's payload without verifying it (the RS verifies).
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func checkDPoPToken(t *testing.T, r oauthResponse, p *rawProofer, rs string) string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("token endpoint: HTTP %d %v", r.status, r.body)
	}
	if !strings.EqualFold(r.str("token_type"), "DPoP") {
		t.Fatalf("token_type %q, want DPoP", r.str("token_type"))
	}
	at := r.str("access_token")
	c := jwtClaims(t, at)
	keys := make([]string, 0, len(r.body))
	for k := range r.body {
		keys = append(keys, k)
	}
	t.Logf("token response: token_type=%q scope=%q expires_in=%v fields=%v; access token claims %v",
		r.str("token_type"), r.str("scope"), r.body["expires_in"], keys, c)
	if cnf, _ := c["cnf"].(map[string]any); cnf["jkt"] != p.jkt {
		t.Fatalf("access token cnf %v, want jkt %s", c["cnf"], p.jkt)
	}
	if c["aud"] != rs {
		t.Fatalf("access token aud %v, want %s", c["aud"], rs)
	}
	return at
}

func TestServersClientCredentials(t *testing.T) {
	issuer, rs := requireInterop(t)
	id, secret := backendClient(t)
	d := discover(t, issuer)
	p := newRawProofer(t)

	// Without DPoP the AS refuses (dpop_bound_access_tokens).
	if r := postAS(t, nil, d.TokenEndpoint, url.Values{"grant_type": {"client_credentials"}}, id, secret); r.status != http.StatusBadRequest {
		t.Fatalf("client_credentials without DPoP: HTTP %d %v, want 400", r.status, r.body)
	}

	r := postAS(t, p, d.TokenEndpoint, url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read"}}, id, secret)
	at := checkDPoPToken(t, r, p, rs)
	if r.str("scope") != "api:read" {
		t.Errorf("scope %q", r.str("scope"))
	}

	body := strings.Repeat("dpop ", 1000)
	got := callRS(t, p, http.MethodPost, rs+"/api/echo?x=1", at, body)
	sum := sha256.Sum256([]byte(body))
	if got.str("body_sha256") != hex.EncodeToString(sum[:]) || got.body["body_len"] != float64(len(body)) {
		t.Errorf("RS body digest: %v", got.body)
	}
	if got.str("jkt") != p.jkt || got.str("client_id") != id || got.str("path") != "/api/echo" || got.str("method") != "POST" {
		t.Errorf("RS answer: %v", got.body)
	}

	// Bodies up to 16 MiB are accepted and hashed; one byte more is refused.
	big := strings.Repeat("x", 16<<20)
	if got := callRS(t, p, http.MethodPut, rs+"/api/big", at, big); got.body["body_len"] != float64(16<<20) {
		t.Errorf("16 MiB body: %v", got.body)
	}
	req, _ := http.NewRequest(http.MethodPut, rs+"/api/big", strings.NewReader(big+"x"))
	req.Header.Set("Authorization", "DPoP "+at)
	req.Header.Set("DPoP", p.proof(t, http.MethodPut, rs+"/api/big", "", at))
	if r := doJSON(t, req); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("16 MiB + 1 body: HTTP %d", r.status)
	}

	// A replayed proof is refused.
	nonce := got.header.Get("DPoP-Nonce")
	proof := p.proof(t, http.MethodGet, rs+"/api/x", nonce, at)
	for i, want := range []int{200, 401} {
		req, _ := http.NewRequest(http.MethodGet, rs+"/api/x", nil)
		req.Header.Set("Authorization", "DPoP "+at)
		req.Header.Set("DPoP", proof)
		if r := doJSON(t, req); r.status != want {
			t.Fatalf("proof use #%d: HTTP %d %v, want %d", i+1, r.status, r.body, want)
		} else if want == 401 && !strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_dpop_proof") {
			t.Fatalf("replay: WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
		}
	}
}

// loopbackRedirect returns http://127.0.0.1:<free port>/callback.
func loopbackRedirect(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port) + "/callback"
}

func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestServersHeadlessLogin(t *testing.T) {
	issuer, rs := requireInterop(t)
	clientID := publicClientID(t)
	d := discover(t, issuer)

	for _, par := range []bool{false, true} {
		name := "query"
		if par {
			name = "PAR"
		}
		t.Run(name, func(t *testing.T) {
			p := newRawProofer(t)
			redirect := loopbackRedirect(t)
			verifier, challenge := pkce()
			params := url.Values{
				"client_id":             {clientID},
				"response_type":         {"code"},
				"redirect_uri":          {redirect},
				"scope":                 {"openid api:read"},
				"state":                 {"st-" + name},
				"code_challenge":        {challenge},
				"code_challenge_method": {"S256"},
				"dpop_jkt":              {p.jkt},
			}
			authURL := d.AuthorizationEndpoint + "?" + params.Encode()
			if par {
				r := postAS(t, p, d.PAREndpoint, params, "", "")
				if r.status != http.StatusCreated || r.str("request_uri") == "" {
					t.Fatalf("PAR: HTTP %d %v", r.status, r.body)
				}
				authURL = d.AuthorizationEndpoint + "?" + url.Values{"client_id": {clientID}, "request_uri": {r.str("request_uri")}}.Encode()
			}
			code, state := headlessLogin(t, authURL)
			if state != "st-"+name {
				t.Fatalf("state %q", state)
			}

			r := postAS(t, p, d.TokenEndpoint, url.Values{
				"grant_type":    {"authorization_code"},
				"client_id":     {clientID},
				"code":          {code},
				"redirect_uri":  {redirect},
				"code_verifier": {verifier},
			}, "", "")
			at := checkDPoPToken(t, r, p, rs)
			if r.str("refresh_token") == "" || r.str("id_token") == "" {
				t.Fatalf("want refresh_token and id_token: %v", r.body)
			}
			got := callRS(t, p, http.MethodGet, rs+"/api/me", at, "")
			if got.str("sub") != "alice" || got.str("scope") != "api:read" {
				t.Fatalf("RS answer: %v", got.body)
			}

			// The refresh token is bound to the DPoP key: another key is refused.
			other := newRawProofer(t)
			rt := r.str("refresh_token")
			bad := postAS(t, other, d.TokenEndpoint, url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {rt}}, "", "")
			if bad.status != http.StatusBadRequest || bad.str("error") != "invalid_grant" {
				t.Fatalf("refresh with another key: HTTP %d %v, want invalid_grant", bad.status, bad.body)
			}
			r2 := postAS(t, p, d.TokenEndpoint, url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {rt}}, "", "")
			checkDPoPToken(t, r2, p, rs)
			if r2.str("refresh_token") == "" || r2.str("refresh_token") == rt {
				t.Fatalf("refresh: want a rotated refresh_token: %v", r2.body)
			}
		})
	}
}

func TestServersHeadlessDevice(t *testing.T) {
	issuer, rs := requireInterop(t)
	clientID := publicClientID(t)
	d := discover(t, issuer)

	for _, complete := range []bool{true, false} {
		name := "verification_uri_complete"
		if !complete {
			name = "user_code"
		}
		t.Run(name, func(t *testing.T) {
			p := newRawProofer(t)
			da := postAS(t, nil, d.DeviceAuthorizationEndpoint, url.Values{"client_id": {clientID}, "scope": {"openid api:read"}}, "", "")
			if da.status != http.StatusOK || da.str("device_code") == "" {
				t.Fatalf("device authorization: HTTP %d %v", da.status, da.body)
			}
			poll := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {clientID}, "device_code": {da.str("device_code")}}
			if r := postAS(t, p, d.TokenEndpoint, poll, "", ""); r.str("error") != "authorization_pending" {
				t.Fatalf("poll before approval: HTTP %d %v", r.status, r.body)
			}
			if complete {
				headlessApproveDevice(t, da.str("verification_uri_complete"))
			} else {
				headlessEnterUserCode(t, da.str("verification_uri"), da.str("user_code"))
			}
			r := postAS(t, p, d.TokenEndpoint, poll, "", "")
			if r.str("error") == "slow_down" {
				time.Sleep(6 * time.Second)
				r = postAS(t, p, d.TokenEndpoint, poll, "", "")
			}
			at := checkDPoPToken(t, r, p, rs)
			got := callRS(t, p, http.MethodGet, rs+"/api/device", at, "")
			if got.str("sub") != "alice" {
				t.Fatalf("RS answer: %v", got.body)
			}
		})
	}
}

// TestServersHeadlessBrowse runs a real loopback listener, as a CLI login does,
// and lets headlessBrowse deliver the code to it.
func TestServersHeadlessBrowse(t *testing.T) {
	issuer, _ := requireInterop(t)
	clientID := publicClientID(t)
	d := discover(t, issuer)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	redirect := "http://" + l.Addr().String() + "/callback"
	got := make(chan url.Values, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		select {
		case got <- r.URL.Query():
		default:
		}
		io.WriteString(w, "login complete, you can close this window")
	})}
	go srv.Serve(l)
	defer srv.Close()

	_, challenge := pkce()
	authURL := d.AuthorizationEndpoint + "?" + url.Values{
		"client_id": {clientID}, "response_type": {"code"}, "redirect_uri": {redirect},
		"scope": {"openid api:read"}, "state": {"st-browse"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}.Encode()
	status, body, err := headlessBrowse(authURL)
	if err != nil || status != http.StatusOK || !strings.Contains(body, "login complete") {
		t.Fatalf("headlessBrowse: %d %q %v", status, body, err)
	}
	q := <-got
	if q.Get("code") == "" || q.Get("state") != "st-browse" || q.Get("iss") != issuer {
		t.Fatalf("callback query: %v", q)
	}
}

// TestServersRSNonceRotation: POST /_rs/rotate-nonce invalidates the nonce the
// client holds; the next call gets a use_dpop_nonce challenge again.
func TestServersRSNonceRotation(t *testing.T) {
	issuer, rs := requireInterop(t)
	id, secret := backendClient(t)
	d := discover(t, issuer)
	p := newRawProofer(t)
	at := checkDPoPToken(t, postAS(t, p, d.TokenEndpoint, url.Values{"grant_type": {"client_credentials"}}, id, secret), p, rs)
	nonce := callRS(t, p, http.MethodGet, rs+"/api/a", at, "").header.Get("DPoP-Nonce")

	resp, err := http.Post(rs+"/_rs/rotate-nonce", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, rs+"/api/b", nil)
	req.Header.Set("Authorization", "DPoP "+at)
	req.Header.Set("DPoP", p.proof(t, http.MethodGet, rs+"/api/b", nonce, at))
	r := doJSON(t, req)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("WWW-Authenticate"), "use_dpop_nonce") ||
		r.header.Get("DPoP-Nonce") == "" || r.header.Get("DPoP-Nonce") == nonce {
		t.Fatalf("after rotation: HTTP %d %v %q", r.status, r.body, r.header.Get("WWW-Authenticate"))
	}
}
