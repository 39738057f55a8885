package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"github.com/dpopkit/dpop/resource"
)

// TestAPI calls the command with the SDK's client, tokens from a dpoptest
// authorization server: GET and POST under /api/ answer what the token
// grants.
func TestAPI(t *testing.T) {
	as := dpoptest.NewServer(nil)
	defer as.Close()
	api := startAPI(t, nil, "-issuer", as.URL, "-audience", as.URL)

	signer := newSigner(t)
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{
			ClientID: "backend", ClientSecret: "backend-secret",
			TokenURL: as.Endpoint().TokenURL, Scopes: []string{"read"},
		},
		Signer: signer,
	}
	client := cc.Client(context.Background())
	for _, method := range []string{"GET", "POST"} {
		req, _ := http.NewRequest(method, api.URL+"/api/items/7?page=2", strings.NewReader(""))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", method, resp.StatusCode, body)
		}
		g := decodeGrant(t, body)
		if g.Sub == "" || g.JKT != signer.Thumbprint() || g.ClientID != "backend" || g.Scope != "read" || g.Method != method || g.Path != "/api/items/7" {
			t.Errorf("%s: %+v; want jkt %s, client_id backend, scope read", method, g, signer.Thumbprint())
		}
	}

	// Other methods and paths are not served.
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	proof, _ := signer.Proof("DELETE", api.URL+"/api/items/7", &dpop.ProofOptions{AccessToken: tok.AccessToken})
	if st, _, _, _ := rawRequest(t, http.DefaultTransport, "DELETE", api.URL+"/api/items/7", "DPoP "+tok.AccessToken, proof); st != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d, want 405", st)
	}
}

// TestAPIRefused: a refused proof, a replay, no credentials, a proof for
// another URL each get a 401 DPoP challenge with the right code and the
// resource_metadata parameter (RFC 9728 §5.1).
func TestAPIRefused(t *testing.T) {
	as := dpoptest.NewServer(nil)
	defer as.Close()
	api := startAPI(t, nil, "-issuer", as.URL, "-audience", as.URL)
	signer := newSigner(t)
	token := as.IssueToken(signer.Thumbprint(), "alice", "read")
	u := api.URL + "/api/x"
	rt := http.DefaultTransport

	good, _ := signer.Proof("GET", u, &dpop.ProofOptions{AccessToken: token})
	if st, _, _, body := rawRequest(t, rt, "GET", u, "DPoP "+token, good); st != 200 {
		t.Fatalf("valid request: %d %s", st, body)
	}
	other, _ := signer.Proof("GET", "http://api.example.com/api/x", &dpop.ProofOptions{AccessToken: token})
	noATH, _ := signer.Proof("GET", u, nil)
	tests := []struct {
		name   string
		auth   string
		proofs []string
		code   string
	}{
		{"replay", "DPoP " + token, []string{good}, "invalid_dpop_proof"},
		{"other htu", "DPoP " + token, []string{other}, "invalid_dpop_proof"},
		{"no ath", "DPoP " + token, []string{noATH}, "invalid_dpop_proof"},
		{"no proof", "DPoP " + token, nil, "invalid_dpop_proof"},
		{"another key's token", "DPoP " + as.IssueToken(newSigner(t).Thumbprint(), "bob", ""), []string{mustProof(t, signer, "GET", u, as.IssueToken(newSigner(t).Thumbprint(), "bob", ""))}, "invalid_dpop_proof"},
		{"no credentials", "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", u, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			for _, p := range tt.proofs {
				req.Header.Add("DPoP", p)
			}
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			ch := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != 401 || !strings.HasPrefix(ch, "DPoP") || challengeCode(ch) != tt.code {
				t.Errorf("%d %q, want 401 DPoP error=%q", resp.StatusCode, ch, tt.code)
			}
			if !strings.Contains(ch, `resource_metadata="`+api.URL+`/.well-known/oauth-protected-resource"`) {
				t.Errorf("challenge %q without resource_metadata", ch)
			}
		})
	}
}

func mustProof(t testing.TB, s *dpop.Signer, method, u, token string) string {
	t.Helper()
	p, err := s.Proof(method, u, &dpop.ProofOptions{AccessToken: token})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAPINonce: with -require-nonce, a proof without the nonce gets a
// use_dpop_nonce challenge carrying one (RFC 9449 §9), and the SDK's client
// meets it with one retry; two instances with the same -nonce-key-file
// accept each other's nonces.
func TestAPINonce(t *testing.T) {
	as := dpoptest.NewServer(nil)
	defer as.Close()
	key := t.TempDir() + "/nonce.key"
	if err := writeFile(key, strings.Repeat("ab", 32)+"\n"); err != nil {
		t.Fatal(err)
	}
	a := startAPI(t, nil, "-issuer", as.URL, "-audience", as.URL, "-require-nonce", "-nonce-key-file", key, "-public-url", "http://127.0.0.1:1")
	b := startAPI(t, []string{"DPOP_NONCE_KEY=" + strings.Repeat("ab", 32)}, "-issuer", as.URL, "-audience", as.URL, "-require-nonce", "-public-url", "http://127.0.0.1:1")

	signer := newSigner(t)
	token := as.IssueToken(signer.Thumbprint(), "alice", "read")
	u := "http://127.0.0.1:1/api/n"
	st, code, nonce, _ := rawRequest(t, dialTo(a.Addr), "GET", u, "DPoP "+token, mustProof(t, signer, "GET", u, token))
	if st != 401 || code != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("proof without nonce: %d %q nonce %q, want 401 use_dpop_nonce with a nonce", st, code, nonce)
	}
	p, _ := signer.Proof("GET", u, &dpop.ProofOptions{AccessToken: token, Nonce: nonce})
	if st, code, _, body := rawRequest(t, dialTo(b.Addr), "GET", u, "DPoP "+token, p); st != 200 {
		t.Fatalf("nonce of A at B: %d %q %s", st, code, body)
	}

	// The SDK's client: one challenge, one retry, then the nonce is known.
	var n int
	client := dpop.NewClient(context.WithValue(context.Background(), oauth2.HTTPClient,
		&http.Client{Transport: countingTransport{dialTo(a.Addr), &n}}),
		oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token, TokenType: "DPoP"}), signer)
	for i := range 3 {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("call %d: %d", i, resp.StatusCode)
		}
	}
	if n != 4 {
		t.Errorf("%d round trips for 3 calls, want 4 (one nonce challenge)", n)
	}
}

type countingTransport struct {
	base http.RoundTripper
	n    *int
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	*c.n++
	return c.base.RoundTrip(r)
}

// TestAPIMetadata: the RFC 9728 document at the well-known URL.
func TestAPIMetadata(t *testing.T) {
	as := dpoptest.NewServer(nil)
	defer as.Close()
	api := startAPI(t, nil, "-issuer", as.URL, "-audience", as.URL)
	resp, err := http.Get(api.URL + "/.well-known/oauth-protected-resource")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if m["resource"] != api.URL || m["dpop_bound_access_tokens_required"] != true {
		t.Errorf("document %v", m)
	}
	if as, _ := m["authorization_servers"].([]any); len(as) != 1 {
		t.Errorf("authorization_servers %v", m["authorization_servers"])
	}
	if algs, _ := m["dpop_signing_alg_values_supported"].([]any); len(algs) == 0 {
		t.Errorf("dpop_signing_alg_values_supported %v", m["dpop_signing_alg_values_supported"])
	}
	// The SDK's client finds the authorization server from it.
	pr, err := resource.FetchMetadata(context.Background(), api.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = pr
}

// TestLoadNonceKey reads hex and base64 keys, refuses short ones.
func TestLoadNonceKey(t *testing.T) {
	hex := strings.Repeat("0f", 32)
	for _, s := range []string{hex, "D" + "w8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8=", "Dw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8"} {
		k, err := loadNonceKey("", s)
		if err != nil || len(k) != 32 {
			t.Errorf("%q: %d bytes, %v", s, len(k), err)
		}
	}
	if k, err := loadNonceKey("", ""); k != nil || err != nil {
		t.Errorf("empty: %v %v", k, err)
	}
	if _, err := loadNonceKey("", "abcd"); err == nil {
		t.Error("a 2-byte key accepted")
	}
	if _, err := loadNonceKey("", "not a key!"); err == nil || strings.Contains(err.Error(), "not a key") {
		t.Errorf("err %v (must not echo the key)", err)
	}
}

// The public URL of the instances behind the "load balancer" of the
// two-instance tests: the test's transport dials one instance or the other.
const sharedURL = "http://127.0.0.1:1"

// twoInstances starts two instances on the Redis at addr, with nonces
// required under one shared key (issue 20 item 5).
func twoInstances(t *testing.T, as *dpoptest.Server, addr string, more ...string) (a, b *instance) {
	t.Helper()
	env := []string{"DPOP_NONCE_KEY=" + strings.Repeat("5a", 32)}
	args := []string{"-issuer", as.URL, "-audience", as.URL, "-public-url", sharedURL, "-require-nonce", "-redis", addr}
	args = append(args, more...)
	return startAPI(t, env, args...), startAPI(t, env, args...)
}

// TestTwoInstancesRedis: a proof accepted by one instance is refused by the
// other, sent byte for byte; a nonce of one is accepted by the other.
func TestTwoInstancesRedis(t *testing.T) {
	addr := redisAddr(t)
	as := dpoptest.NewServer(nil)
	defer as.Close()
	a, b := twoInstances(t, as, addr)
	toA, toB := dialTo(a.Addr), dialTo(b.Addr)
	signer := newSigner(t)
	token := as.IssueToken(signer.Thumbprint(), "alice", "read")
	u := sharedURL + "/api/orders"

	// A nonce of A ...
	st, code, nonce, _ := rawRequest(t, toA, "POST", u, "DPoP "+token, mustProof(t, signer, "POST", u, token))
	if st != 401 || code != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("no nonce: %d %q, want 401 use_dpop_nonce", st, code)
	}
	// ... accepted by B.
	proof, _ := signer.Proof("POST", u, &dpop.ProofOptions{AccessToken: token, Nonce: nonce})
	st, code, _, body := rawRequest(t, toB, "POST", u, "DPoP "+token, proof)
	if st != 200 {
		t.Fatalf("A's nonce at B: %d %q %s", st, code, body)
	}
	// The same request, byte for byte, at A: a replay.
	st, code, _, _ = rawRequest(t, toA, "POST", u, "DPoP "+token, proof)
	if st != 401 || code != "invalid_dpop_proof" {
		t.Errorf("proof accepted by B, replayed at A: %d %q, want 401 invalid_dpop_proof", st, code)
	}
	// And the other way round.
	proof, _ = signer.Proof("POST", u, &dpop.ProofOptions{AccessToken: token, Nonce: nonce})
	if st, code, _, _ = rawRequest(t, toA, "POST", u, "DPoP "+token, proof); st != 200 {
		t.Fatalf("at A: %d %q", st, code)
	}
	if st, code, _, _ = rawRequest(t, toB, "POST", u, "DPoP "+token, proof); st != 401 || code != "invalid_dpop_proof" {
		t.Errorf("proof accepted by A, replayed at B: %d %q", st, code)
	}
}

// TestTwoInstancesRedisDown: with their Redis stopped, both instances
// answer 503 (fail closed, the client keeps its token), and both recover
// when it is back on the same address.
func TestTwoInstancesRedisDown(t *testing.T) {
	rs := newRedisServer(t)
	as := dpoptest.NewServer(nil)
	defer as.Close()
	a, b := twoInstances(t, as, rs.Addr)
	signer := newSigner(t)
	token := as.IssueToken(signer.Thumbprint(), "alice", "read")
	u := sharedURL + "/api/x"

	nonce := ""
	call := func(rt http.RoundTripper) (int, string) {
		for range 2 { // at most one nonce challenge
			p, _ := signer.Proof("GET", u, &dpop.ProofOptions{AccessToken: token, Nonce: nonce})
			st, code, n, _ := rawRequest(t, rt, "GET", u, "DPoP "+token, p)
			if n != "" {
				nonce = n
			}
			if code != "use_dpop_nonce" {
				return st, code
			}
		}
		return 0, "use_dpop_nonce twice"
	}
	for _, inst := range []*instance{a, b} {
		if st, code := call(dialTo(inst.Addr)); st != 200 {
			t.Fatalf("Redis up, %s: %d %q", inst.URL, st, code)
		}
	}
	rs.Stop()
	for _, inst := range []*instance{a, b} {
		if st, code := call(dialTo(inst.Addr)); st != 503 {
			t.Errorf("Redis down, %s: %d %q, want 503", inst.URL, st, code)
		}
	}
	rs.Start(t)
	for _, inst := range []*instance{a, b} {
		var st int
		var code string
		for range 100 { // go-redis reconnects on the next command
			if st, code = call(dialTo(inst.Addr)); st == 200 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if st != 200 {
			t.Errorf("Redis back, %s: %d %q, want 200", inst.URL, st, code)
		}
	}
	for _, inst := range []*instance{a, b} {
		if !strings.Contains(inst.stderr.String(), "store_unavailable") {
			t.Errorf("%s did not log the store's failure", inst.URL)
		}
	}
}

// TestTwoInstancesRedisLoad: two instances, 64 concurrent clients each, every
// proof fresh, with deliberate replays mixed in (each a request accepted
// earlier, sent byte for byte to the other instance): no fresh proof is
// refused as a replay, and no replay is accepted.
func TestTwoInstancesRedisLoad(t *testing.T) {
	addr := redisAddr(t)
	as := dpoptest.NewServer(nil)
	defer as.Close()
	// The machine running the tests is shared and small: a claim may wait
	// longer than the Store's default 150 ms for a CPU, and would be
	// answered 503 (fail closed). Those are counted, and retried as a
	// client would, with a fresh proof.
	a, b := twoInstances(t, as, addr, "-redis-timeout", "1s")
	const (
		clientsPerInstance = 64
		callsPerClient     = 24 // 3072 fresh requests in all
		replayEvery        = 6  // a replay after every 6th accepted call: 512
	)
	type sent struct{ auth, proof, url string }
	var (
		mu                                  sync.Mutex
		fresh, freshOK, freshReplayRefused  int
		unavailable                         int
		otherRefused                        []string
		replays, replaysAccepted, replaysOK int
	)
	insts := []*instance{a, b}
	var wg sync.WaitGroup
	for i := range 2 * clientsPerInstance {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inst, other := insts[i%2], insts[(i+1)%2]
			rt, otherRT := dialTo(inst.Addr), dialTo(other.Addr)
			signer := newSigner(t)
			token := as.IssueToken(signer.Thumbprint(), fmt.Sprint("client", i), "read")
			nonce := ""
			for j := range callsPerClient {
				u := fmt.Sprintf("%s/api/load/%d/%d", sharedURL, i, j)
				var st int
				var code string
				var s sent
				for range 6 { // nonce challenges and 503s are retried with a fresh proof
					p, err := signer.Proof("GET", u, &dpop.ProofOptions{AccessToken: token, Nonce: nonce})
					if err != nil {
						t.Error(err)
						return
					}
					s = sent{"DPoP " + token, p, u}
					var n string
					st, code, n, _ = rawRequest(t, rt, "GET", u, s.auth, s.proof)
					if n != "" {
						nonce = n
					}
					if st == http.StatusServiceUnavailable {
						mu.Lock()
						unavailable++
						mu.Unlock()
						time.Sleep(10 * time.Millisecond)
						continue
					}
					if code != "use_dpop_nonce" {
						break
					}
				}
				mu.Lock()
				fresh++
				switch {
				case st == 200:
					freshOK++
				case code == "invalid_dpop_proof" && st == 401:
					freshReplayRefused++ // the only proof refusal a fresh, valid proof could meet here
				default:
					otherRefused = append(otherRefused, fmt.Sprintf("%d %s", st, code))
				}
				mu.Unlock()
				if st == 200 && j%replayEvery == replayEvery-1 {
					rst, rcode, _, _ := rawRequest(t, otherRT, "GET", s.url, s.auth, s.proof)
					mu.Lock()
					replays++
					if rst == 200 {
						replaysAccepted++
					} else if rst == 401 && rcode == "invalid_dpop_proof" {
						replaysOK++
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("load: %d fresh requests, %d accepted, %d refused as invalid proofs (replays), %d refused otherwise %v",
		fresh, freshOK, freshReplayRefused, len(otherRefused), first(otherRefused, 5))
	t.Logf("load: %d answers 503 (a claim in Redis over -redis-timeout), retried with a fresh proof", unavailable)
	t.Logf("load: %d deliberate replays to the other instance, %d accepted, %d refused as invalid_dpop_proof",
		replays, replaysAccepted, replaysOK)
	if fresh != 2*clientsPerInstance*callsPerClient || freshOK != fresh {
		t.Errorf("fresh: %d of %d accepted", freshOK, fresh)
	}
	if replaysAccepted != 0 || replaysOK != replays || replays == 0 {
		t.Errorf("replays: %d of %d accepted, %d refused as replays", replaysAccepted, replays, replaysOK)
	}
	// The logs reach the test through pipes: wait a little for the last lines.
	logged := 0
	for range 100 {
		logged = 0
		for _, inst := range insts {
			logged += strings.Count(inst.stderr.String(), "reason=replay ")
		}
		if logged >= replays {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if logged != replays {
		t.Errorf("the instances logged %d refusals as replays, want %d (the deliberate ones)", logged, replays)
	}
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// TestNewServerBounds: every timeout of the server is set, and a huge
// header is refused (431) before the Verifier sees it.
func TestNewServerBounds(t *testing.T) {
	srv := newServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Errorf("server bounds %v %v %v %v %d: each must be set", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
	as := dpoptest.NewServer(nil)
	defer as.Close()
	api := startAPI(t, nil, "-issuer", as.URL, "-audience", as.URL)
	req, _ := http.NewRequest("GET", api.URL+"/api/x", nil)
	req.Header.Set("DPoP", strings.Repeat("a", 1<<20))
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("1 MiB header: %d, want 431", resp.StatusCode)
	}
	// The next legitimate request succeeds.
	signer := newSigner(t)
	token := as.IssueToken(signer.Thumbprint(), "alice", "read")
	if st, code, _, body := rawRequest(t, http.DefaultTransport, "GET", api.URL+"/api/x", "DPoP "+token, mustProof(t, signer, "GET", api.URL+"/api/x", token)); st != 200 {
		t.Errorf("then a valid request: %d %q %s", st, code, body)
	}
}
