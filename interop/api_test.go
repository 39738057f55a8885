package interop

// Interop tests of examples/api, the resource server built on this
// module's resource package, with tokens from oidc-provider (as.mjs, JWT
// access tokens whose audience is DPOP_INTEROP_RS): called by this SDK's
// client, by panva's oauth4webapi (oauth4webapi_client.mjs), and with the
// OpenID Foundation FAPI 2.0 conformance suite's DPoP negative tests, replayed
// at its resource endpoint with proofs made by hand.
//
// examples/api is a module of its own (it needs go-redis); the test builds it
// with the go command in its directory, whose go.mod reaches this checkout
// through replace directives, so that this works on a fresh clone.

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

var (
	apiBuildOnce sync.Once
	apiBinary    string
	apiBuildErr  error
)

// buildAPI builds examples/api once per test binary.
func buildAPI(t *testing.T) string {
	t.Helper()
	apiBuildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dpop-interop-api")
		if err != nil {
			apiBuildErr = err
			return
		}
		apiBinary = filepath.Join(dir, "api")
		cmd := exec.Command("go", "build", "-o", apiBinary, ".")
		cmd.Dir = filepath.Join("..", "examples", "api")
		if out, err := cmd.CombinedOutput(); err != nil {
			apiBuildErr = fmt.Errorf("go build ./examples/api: %v\n%s", err, out)
		}
	})
	if apiBuildErr != nil {
		t.Fatal(apiBuildErr)
	}
	return apiBinary
}

// startExampleAPI runs examples/api against oidc-provider, with nonces
// required unless noNonce, and stops it (SIGTERM, a clean exit) at the end of the test.
// It returns the API's base URL.
func startExampleAPI(t *testing.T, noNonce ...bool) string {
	t.Helper()
	issuer, rs := requireInterop(t)
	bin := buildAPI(t)
	args := []string{"-addr", "127.0.0.1:0", "-issuer", issuer, "-audience", rs}
	if len(noNonce) == 0 || !noNonce[0] {
		args = append(args, "-require-nonce")
	}
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	var mu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return stderr.Write(p) })
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		l, _ := r.ReadString('\n')
		lines <- l
		io.Copy(io.Discard, r)
	}()
	logs := func() string { mu.Lock(); defer mu.Unlock(); return stderr.String() }
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
	}
	u, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("examples/api: first line %q; stderr:\n%s", line, logs())
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("examples/api exited with %v", err)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("examples/api did not stop within 15s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("examples/api stderr:\n%s", logs())
		}
	})
	return u
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// apiGrant is examples/api's answer.
type apiGrant struct {
	Sub, JKT, ClientID, Scope, Method, Path string
}

func (g *apiGrant) UnmarshalJSON(b []byte) error {
	var m struct {
		Sub      string `json:"sub"`
		JKT      string `json:"jkt"`
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
		Method   string `json:"method"`
		Path     string `json:"path"`
	}
	err := json.Unmarshal(b, &m)
	*g = apiGrant(m)
	return err
}

// TestAPISDK calls examples/api with this SDK's client and a token of
// oidc-provider: the nonce challenge is met with one retry, then the known
// nonce is used.
func TestAPISDK(t *testing.T) {
	api := startExampleAPI(t)
	issuer, _ := requireInterop(t)
	md := sdkDiscover(t, issuer)
	for _, alg := range []string{"ES256", "EdDSA", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			s := sdkSigner(t, alg)
			cc := sdkBackend(t, md, s, "api:read")
			ctx, rec := sdkContext(t)
			c := cc.Client(ctx)
			for i, method := range []string{"GET", "POST", "GET"} {
				req, _ := http.NewRequestWithContext(ctx, method, api+"/api/items/"+fmt.Sprint(i)+"?q=1", strings.NewReader("{}"))
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("%s: %d %s", method, resp.StatusCode, body)
				}
				var g apiGrant
				if err := json.Unmarshal(body, &g); err != nil {
					t.Fatal(err)
				}
				id, _ := backendClient(t)
				if g.JKT != s.Thumbprint() || g.ClientID != id || g.Sub == "" || g.Scope != "api:read" || g.Method != method {
					t.Errorf("%s: %+v; want jkt %s, client_id %s, scope api:read", method, g, s.Thumbprint(), id)
				}
			}
			var rsx []string
			for _, e := range rec.take() {
				if strings.HasPrefix(e.path, "/api/") {
					rsx = append(rsx, e.String())
				}
			}
			want := []string{"GET /api/items/0 401 use_dpop_nonce", "GET /api/items/0 200", "POST /api/items/1 200", "GET /api/items/2 200"}
			if strings.Join(rsx, "\n") != strings.Join(want, "\n") {
				t.Errorf("exchanges with examples/api:\n%s\nwant:\n%s", strings.Join(rsx, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestAPIOAuth4WebAPI runs panva's oauth4webapi against oidc-provider and
// examples/api (oauth4webapi_client.mjs): its DPoP proofs are accepted, and
// its nonce retry meets our challenge.
func TestAPIOAuth4WebAPI(t *testing.T) {
	api := startExampleAPI(t)
	issuer, _ := requireInterop(t)
	id, secret := backendClient(t)
	for _, alg := range []string{"ES256", "EdDSA", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", "oauth4webapi_client.mjs")
			cmd.Env = append(os.Environ(), "ISSUER="+issuer, "CLIENT_ID="+id, "CLIENT_SECRET="+secret, "API="+api, "ALG="+alg)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node oauth4webapi_client.mjs: %v\n%s", err, stderr.String())
			}
			var res struct {
				Alg       string
				JKT       string
				Exchanges []struct {
					Method, Error, Nonce string
					Status               int
				}
				Bodies []apiGrant
			}
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			var got []string
			for _, e := range res.Exchanges {
				got = append(got, strings.TrimSpace(fmt.Sprintf("%s %d %s", e.Method, e.Status, e.Error)))
				if e.Nonce == "" {
					t.Errorf("%s %d without DPoP-Nonce", e.Method, e.Status)
				}
			}
			want := []string{"GET 401 use_dpop_nonce", "GET 200", "POST 200", "GET 200"}
			if strings.Join(got, ", ") != strings.Join(want, ", ") {
				t.Errorf("exchanges %v, want %v", got, want)
			}
			for _, g := range res.Bodies {
				if g.JKT != res.JKT || g.ClientID != id || g.Sub == "" {
					t.Errorf("answer %+v; want jkt %s (the node key), client_id %s", g, res.JKT, id)
				}
			}
			if len(res.Bodies) != 3 {
				t.Errorf("%d answers, want 3", len(res.Bodies))
			}
		})
	}
}

// handProofer makes DPoP proofs by hand (ES256 on crypto/ecdsa), header
// and claims as maps a test may change before signing.
type handProofer struct {
	key *ecdsa.PrivateKey
	jwk map[string]any
	jkt string
}

func newHandProofer(t *testing.T) *handProofer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := (&jose.JSONWebKey{Key: key.Public()}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var jwk map[string]any
	json.Unmarshal(pub, &jwk)
	tp, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &handProofer{key: key, jwk: jwk, jkt: base64.RawURLEncoding.EncodeToString(tp)}
}

// parts returns the header and claims of a valid proof.
func (p *handProofer) parts(method, htu, nonce, token string) (header, claims map[string]any) {
	jti := make([]byte, 16)
	rand.Read(jti)
	ath := sha256.Sum256([]byte(token))
	header = map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": p.jwk}
	claims = map[string]any{
		"jti": base64.RawURLEncoding.EncodeToString(jti),
		"htm": method,
		"htu": htu,
		"iat": time.Now().Unix(),
		"ath": base64.RawURLEncoding.EncodeToString(ath[:]),
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	return header, claims
}

// sign signs header and claims with p's key (ES256, whatever header says).
func (p *handProofer) sign(t *testing.T, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	d := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, p.key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// apiAnswer is a raw answer of examples/api.
type apiAnswer struct {
	status int
	code   string // error= of the DPoP challenge
	nonce  string
	body   []byte
}

// rawCall sends method u with these Authorization and DPoP header lines,
// the DPoP header under the name dpopName.
func rawCall(t *testing.T, method, u, auth, dpopName string, proofs ...string) apiAnswer {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for _, p := range proofs {
		req.Header[dpopName] = append(req.Header[dpopName], p) // sent as written
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	a := apiAnswer{status: resp.StatusCode, nonce: resp.Header.Get("DPoP-Nonce"), body: body}
	if m := wwwAuthErrorRe.FindStringSubmatch(resp.Header.Get("WWW-Authenticate")); m != nil {
		a.code = m[1]
	}
	if a.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "DPoP") {
		t.Errorf("401 with WWW-Authenticate %q, want a DPoP challenge", resp.Header.Get("WWW-Authenticate"))
	}
	for _, p := range proofs {
		if p != "" && strings.Contains(string(body)+resp.Header.Get("WWW-Authenticate"), p) {
			t.Errorf("the answer echoes the proof")
		}
	}
	return a
}

// TestAPIFAPI2Negative replays the OpenID Foundation FAPI 2.0 conformance
// suite's DPoP negative tests of a resource endpoint at examples/api, with
// a token of oidc-provider bound to a hand-made key: each mutated proof is
// refused with the status and error code of RFC 9449 §7.1 (RFC 6750 §3.1
// for a malformed request), and what the suite requires to pass passes.
func TestAPIFAPI2Negative(t *testing.T) {
	api := startExampleAPI(t)
	issuer, _ := requireInterop(t)
	p := newHandProofer(t)
	other := newHandProofer(t)

	// A token of oidc-provider bound to p's key, with a hand-made proof
	// at the token endpoint (oidc-provider requires its nonce too).
	md := discover(t, issuer)
	id, secret := backendClient(t)
	token := handToken(t, p, md.TokenEndpoint, id, secret)

	u := api + "/api/fapi"
	nonce := rawCall(t, "GET", u, "", "DPoP").nonce
	if nonce == "" {
		t.Fatal("no DPoP-Nonce on a challenge")
	}
	// valid returns the parts of a valid proof for GET u with the current nonce.
	valid := func() (map[string]any, map[string]any) { return p.parts("GET", u, nonce, token) }
	send := func(t *testing.T, dpopName string, proofs ...string) apiAnswer {
		t.Helper()
		a := rawCall(t, "GET", u, "DPoP "+token, dpopName, proofs...)
		if a.nonce != "" {
			nonce = a.nonce
		}
		return a
	}
	type mutation func(t *testing.T) []string
	signed := func(f func(h, c map[string]any)) mutation {
		return func(t *testing.T) []string {
			h, c := valid()
			f(h, c)
			return []string{p.sign(t, h, c)}
		}
	}
	const proofErr, tokenErr, reqErr = "invalid_dpop_proof", "invalid_token", "invalid_request"
	refused := []struct {
		name   string
		proofs mutation
		status int
		code   string
	}{
		{"missing typ", signed(func(h, c map[string]any) { delete(h, "typ") }), 401, proofErr},
		{"missing alg", signed(func(h, c map[string]any) { delete(h, "alg") }), 401, proofErr},
		{"missing jwk", signed(func(h, c map[string]any) { delete(h, "jwk") }), 401, proofErr},
		{"missing jti", signed(func(h, c map[string]any) { delete(c, "jti") }), 401, proofErr},
		{"missing htm", signed(func(h, c map[string]any) { delete(c, "htm") }), 401, proofErr},
		{"missing htu", signed(func(h, c map[string]any) { delete(c, "htu") }), 401, proofErr},
		{"missing iat", signed(func(h, c map[string]any) { delete(c, "iat") }), 401, proofErr},
		{"missing ath", signed(func(h, c map[string]any) { delete(c, "ath") }), 401, proofErr},
		{"wrong typ", signed(func(h, c map[string]any) { h["typ"] = "jwt" }), 401, proofErr},
		{"alg none", func(t *testing.T) []string {
			h, c := valid()
			h["alg"] = "none"
			s := p.sign(t, h, c)
			return []string{s[:strings.LastIndexByte(s, '.')+1]}
		}, 401, proofErr},
		{"alg changed", signed(func(h, c map[string]any) { h["alg"] = "ES384" }), 401, proofErr},
		{"alg HS256", signed(func(h, c map[string]any) { h["alg"] = "HS256" }), 401, proofErr},
		{"bad signature", func(t *testing.T) []string {
			h, c := valid()
			s := []byte(p.sign(t, h, c))
			i := strings.LastIndexByte(string(s), '.') + 5
			s[i] ^= 'A' ^ 'B'
			if s[i] == '.' || s[i] == 0 {
				s[i] = 'A'
			}
			return []string{string(s)}
		}, 401, proofErr},
		{"other htm", signed(func(h, c map[string]any) { c["htm"] = "POST" }), 401, proofErr},
		{"other htu", signed(func(h, c map[string]any) { c["htu"] = api + "/api/other" }), 401, proofErr},
		{"wrong ath", signed(func(h, c map[string]any) {
			a := sha256.Sum256([]byte(token + "x"))
			c["ath"] = base64.RawURLEncoding.EncodeToString(a[:])
		}), 401, proofErr},
		{"another key than cnf.jkt", func(t *testing.T) []string {
			h, c := other.parts("GET", u, nonce, token)
			return []string{other.sign(t, h, c)}
		}, 401, tokenErr},
		{"jwk with the private key", signed(func(h, c map[string]any) {
			jwk := map[string]any{}
			for k, v := range p.jwk {
				jwk[k] = v
			}
			jwk["d"] = base64.RawURLEncoding.EncodeToString(p.key.D.FillBytes(make([]byte, 32)))
			h["jwk"] = jwk
		}), 401, proofErr},
		{"two DPoP headers", func(t *testing.T) []string {
			h, c := valid()
			h2, c2 := valid()
			return []string{p.sign(t, h, c), p.sign(t, h2, c2)}
		}, 400, reqErr},
		{"none", func(t *testing.T) []string { return nil }, 401, proofErr},
		{"stale nonce", signed(func(h, c map[string]any) { c["nonce"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }), 401, "use_dpop_nonce"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			a := send(t, "DPoP", tt.proofs(t)...)
			if a.status != tt.status || a.code != tt.code {
				t.Errorf("%d %q, want %d %q", a.status, a.code, tt.status, tt.code)
			}
		})
	}

	// iat an hour off: refused, with or without a nonce (a valid nonce
	// stands in for the iat window only as far back as the nonce was
	// accepted, RFC 9449 §11.1).
	plain := startExampleAPI(t, true)
	for _, off := range []time.Duration{-time.Hour, time.Hour} {
		t.Run(fmt.Sprintf("iat %v off", off), func(t *testing.T) {
			pu := plain + "/api/fapi"
			h, c := p.parts("GET", pu, "", token)
			c["iat"] = time.Now().Add(off).Unix()
			if a := rawCall(t, "GET", pu, "DPoP "+token, "DPoP", p.sign(t, h, c)); a.status != 401 || a.code != proofErr {
				t.Errorf("without nonces: %d %q, want 401 %q", a.status, a.code, proofErr)
			}
			h, c = valid()
			c["iat"] = time.Now().Add(off).Unix()
			if a := send(t, "DPoP", p.sign(t, h, c)); a.status != 401 || a.code != proofErr {
				t.Errorf("with a valid nonce: %d %q, want 401 %q", a.status, a.code, proofErr)
			}
		})
	}

	accepted := []struct {
		name     string
		dpopName string
		proof    func(t *testing.T) string
		target   string
	}{
		{"header name dpop", "dpop", func(t *testing.T) string { h, c := p.parts("GET", u, nonce, token); return p.sign(t, h, c) }, u},
		{"header name DPOP", "DPOP", func(t *testing.T) string { h, c := p.parts("GET", u, nonce, token); return p.sign(t, h, c) }, u},
		{"htu with query and fragment", "DPoP", func(t *testing.T) string {
			h, c := p.parts("GET", u+"?page=2#top", nonce, token)
			return p.sign(t, h, c)
		}, u + "?page=2"},
		{"extra claims", "DPoP", func(t *testing.T) string {
			h, c := p.parts("GET", u, nonce, token)
			c["extra"] = "value"
			c["nested"] = map[string]any{"a": []any{1, "b"}}
			h["kid"] = "ignored"
			return p.sign(t, h, c)
		}, u},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			a := rawCall(t, "GET", tt.target, "DPoP "+token, tt.dpopName, tt.proof(t))
			if a.nonce != "" {
				nonce = a.nonce
			}
			if a.status != 200 {
				t.Fatalf("%d %q %s, want 200", a.status, a.code, a.body)
			}
			var g apiGrant
			json.Unmarshal(a.body, &g)
			if g.JKT != p.jkt {
				t.Errorf("jkt %q, want %q", g.JKT, p.jkt)
			}
		})
	}
}

// handToken gets a client credentials token from oidc-provider bound to p's
// key, with hand-made proofs (the first request meets the nonce challenge).
func handToken(t *testing.T, p *handProofer, tokenURL, id, secret string) string {
	t.Helper()
	nonce := ""
	for range 2 {
		h, c := p.parts("POST", tokenURL, nonce, "")
		delete(c, "ath")
		req, _ := http.NewRequest("POST", tokenURL, strings.NewReader("grant_type=client_credentials&scope=api%3Aread"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		req.Header.Set("DPoP", p.sign(t, h, c))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			Error       string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if body.Error == "use_dpop_nonce" {
			nonce = resp.Header.Get("DPoP-Nonce")
			continue
		}
		if resp.StatusCode != 200 || body.TokenType != "DPoP" {
			t.Fatalf("token request: %d %q %q", resp.StatusCode, body.Error, body.TokenType)
		}
		return body.AccessToken
	}
	t.Fatal("token request: two nonce challenges")
	return ""
}
