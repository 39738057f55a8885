package dpop_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Secrets the hostile-server tests send and then look for where they must
// not be: in error text, in %v output, at a server they must not reach.
const (
	clientSecret   = "cs-S3cretClientSecretValue"
	refreshSecret  = "rt-S3cretRefreshTokenValue"
	accessSecret   = "at-S3cretAccessTokenValue"
	codeSecret     = "code-S3cretAuthorizationCode"
	verifierSecret = "cv-S3cretCodeVerifierValue-0123456789abcdefghijklmnop"
)

// hostileServer is an httptest server on 127.0.0.1 that counts the
// requests it receives.
type hostileServer struct {
	*httptest.Server
	n atomic.Int32
}

// newHostile starts a server answering with h (over TLS when tls is set);
// the test closes it.
func newHostile(t *testing.T, tls bool, h http.HandlerFunc) *hostileServer {
	t.Helper()
	s := &hostileServer{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.n.Add(1)
		h(w, r)
	})
	if tls {
		s.Server = httptest.NewTLSServer(handler)
	} else {
		s.Server = httptest.NewServer(handler)
	}
	t.Cleanup(s.Close)
	return s
}

// requests returns how many requests s received.
func (s *hostileServer) requests() int { return int(s.n.Load()) }

// withClient returns a context whose oauth2.HTTPClient is hc.
func withClient(hc *http.Client) context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, hc)
}

// roundTripFunc is a Base answering requests in memory.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func newSigner(t testing.TB) *dpop.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newServer(t testing.TB, cfg *dpoptest.Config) *dpoptest.Server {
	t.Helper()
	srv := dpoptest.NewServer(cfg)
	t.Cleanup(srv.Close)
	return srv
}

// count returns how many recorded requests of kind ended with error code
// errCode ("" for successes).
func count(srv *dpoptest.Server, kind dpoptest.Kind, errCode string) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Kind == kind && r.Error == errCode {
			n++
		}
	}
	return n
}

// apiResult is what dpoptest's resource server answers.
type apiResult struct {
	Method     string `json:"method"`
	Path       string `json:"path"`
	Subject    string `json:"subject"`
	JKT        string `json:"jkt"`
	BodySHA256 string `json:"body_sha256"`
	BodyLen    int64  `json:"body_len"`
}

func getAPI(t *testing.T, c *http.Client, u string) apiResult {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s %s", u, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	var r apiResult
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// checkClientAuth checks that every token request that got as far as client
// authentication (a nonce challenge comes first) used want: the style is
// pinned, never x/oauth2's auto-detection, and a public client sends no
// secret.
func checkClientAuth(t *testing.T, srv *dpoptest.Server, want dpoptest.ClientAuth) {
	t.Helper()
	n := 0
	for _, r := range srv.Requests() {
		if r.Kind == "token" && r.ClientAuth != "" {
			n++
			if r.ClientAuth != want {
				t.Errorf("token request authenticated with %q; want %q", r.ClientAuth, want)
			}
		}
	}
	if n == 0 {
		t.Errorf("no token request got to client authentication")
	}
}

// headlessAuthorize gets authURL from dpoptest's auto-approving
// authorization endpoint and returns the redirect's query.
func headlessAuthorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query()
}

func publicConfig(srv *dpoptest.Server, s *dpop.Signer) *dpop.Config {
	return &dpop.Config{
		OAuth2: &oauth2.Config{
			ClientID:    "cli",
			Endpoint:    srv.Endpoint(),
			RedirectURL: "http://127.0.0.1:54321/callback",
			Scopes:      []string{"api:read"},
		},
		Signer: s,
		PARURL: srv.PARURL(),
	}
}

// login runs authorization code + PKCE with cfg and returns the token.
func login(t *testing.T, cfg *dpop.Config, exchangeCfg *dpop.Config) (*oauth2.Token, error) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	q := headlessAuthorize(t, cfg.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier)))
	if q.Get("state") != "st-1" || q.Get("code") == "" {
		t.Fatalf("authorize redirect query %v", q)
	}
	return exchangeCfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
}

// loadClient returns an http.Client whose Transport presents a token srv
// issued for a new Ed25519 key (cheap to sign under -race), with the nonce
// cache it uses, and enough idle connections for conns goroutines.
func loadClient(t testing.TB, srv *dpoptest.Server, conns int, retries func(*http.Request) int) (*http.Client, *dpop.NonceCache) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := &http.Transport{MaxIdleConnsPerHost: conns}
	t.Cleanup(base.CloseIdleConnections)
	nonces := dpop.NewNonceCache(0)
	tok := srv.IssueToken(s.Thumbprint(), "alice", "api:read")
	tr := &dpop.Transport{
		Base:         base,
		Signer:       s,
		Source:       oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok, TokenType: "DPoP"}),
		Nonces:       nonces,
		NonceRetries: retries,
	}
	return &http.Client{Transport: tr}, nonces
}

// answers counts what the callers got back.
type answers struct {
	mu         sync.Mutex
	ok         int // 2xx
	unanswered int // a use_dpop_nonce challenge handed back to the caller
	other      map[string]int
}

func (a *answers) add(resp *http.Response, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case err != nil:
		a.otherf("error %v", err)
	case resp.StatusCode/100 == 2:
		a.ok++
	default:
		var ce *dpop.ChallengeError
		if errors.As(dpop.CheckResponse(resp), &ce) && ce.ErrorCode == dpop.CodeUseNonce && ce.Nonce != "" {
			a.unanswered++
			return
		}
		a.otherf("%d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func (a *answers) otherf(format string, args ...any) {
	if a.other == nil {
		a.other = make(map[string]int)
	}
	a.other[fmt.Sprintf(format, args...)]++
}

// hammer sends goroutines×perG GETs to u through c, all goroutines
// starting together, and counts the answers.
func hammer(c *http.Client, u string, goroutines, perG int) *answers {
	a := new(answers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range perG {
				resp, err := c.Get(u)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				a.add(resp, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	return a
}

// wire is what a server's records say of the requests of one kind.
type wire struct {
	requests, ok, challenges int
	badProofs                []string // invalid_dpop_proof: a replayed jti, a stale iat, ...
	jtiDup                   int      // proofs whose jti was sent before
}

func wireOf(t testing.TB, srv *dpoptest.Server, kind dpoptest.Kind) wire {
	t.Helper()
	var w wire
	jtis := make(map[string]bool)
	for _, r := range srv.Requests() {
		if r.Kind != kind {
			continue
		}
		w.requests++
		switch {
		case r.Status/100 == 2:
			w.ok++
		case r.Error == dpop.CodeUseNonce:
			w.challenges++
		case r.Error == dpop.CodeInvalidProof:
			w.badProofs = append(w.badProofs, r.ProofErr)
		}
		if r.Proof != nil {
			if jtis[r.Proof.JTI] {
				w.jtiDup++
			}
			jtis[r.Proof.JTI] = true
		}
	}
	return w
}

// checkFresh fails t when a proof was sent twice or refused: every attempt,
// retries included, carries a new jti and iat (RFC 9449 §11.1), and
// dpoptest's jti cache answers a replay with invalid_dpop_proof.
func checkFresh(t testing.TB, w wire) {
	t.Helper()
	if w.jtiDup != 0 {
		t.Errorf("%d proofs reused a jti; want 0", w.jtiDup)
	}
	if len(w.badProofs) != 0 {
		t.Errorf("%d invalid_dpop_proof answers (first: %s); want 0", len(w.badProofs), w.badProofs[0])
	}
}

// get sends a GET to u through c and returns the answer, its body read
// and closed.
func get(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// tokenOp is one request of the token machinery, as a test makes it.
type tokenOp struct {
	name string
	call func(ctx context.Context) error
}

// run calls op.call on a fake clock (onFakeClock): the device grant waits
// its polling interval, a second at least, before its first poll, and no
// op needs to wait in real time.
func (op tokenOp) run(t *testing.T, ctx context.Context) error {
	return onFakeClock(t, ctx, op.call)
}

// onFakeClock calls call in a synctest bubble, whose clock moves only when
// everything in the bubble waits for it, so that timers (the device
// grant's polling interval) fire at once. The requests go through the
// client of ctx (http.DefaultClient if none) from outside the bubble
// (outsideBubble). The proofs' iat is then the bubble's time, 2000-01-01:
// a server that checks it needs a bubbleClock.
func onFakeClock(t *testing.T, ctx context.Context, call func(context.Context) error) error {
	t.Helper()
	hc := http.DefaultClient
	if c, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && c != nil {
		hc = c
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, outsideBubble(t, hc))
	var err error
	synctest.Test(t, func(*testing.T) { err = call(ctx) })
	return err
}

// outsideBubble returns a copy of hc for code in a synctest bubble: its
// requests are sent through hc's Transport by a goroutine started here,
// outside the bubble, so the connections and their goroutines stay
// outside it. The bubble's clock stands still while a request is on the
// network, and the bubble can end with connections left open. A request
// goes without its context (a bubble's channels must not be used outside
// it), and one at a time.
func outsideBubble(t testing.TB, hc *http.Client) *http.Client {
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	p := &bubbleProxy{reqs: make(chan *http.Request), resps: make(chan bubbleResult)}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case r := <-p.reqs:
				resp, err := base.RoundTrip(r)
				p.resps <- bubbleResult{resp, err}
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() { close(done) })
	c := *hc
	c.Transport = p
	return &c
}

// bubbleProxy is the Transport of outsideBubble's client.
type bubbleProxy struct {
	mu    sync.Mutex // one request at a time, so that reqs and resps pair up
	reqs  chan *http.Request
	resps chan bubbleResult
}

type bubbleResult struct {
	resp *http.Response
	err  error
}

func (p *bubbleProxy) RoundTrip(r *http.Request) (*http.Response, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs <- r.WithContext(context.Background())
	res := <-p.resps
	return res.resp, res.err
}

// bubbleClock is a clock for a server outside a synctest bubble that reads
// the time as the code in the bubble does: sync, called in the bubble,
// moves it to the bubble's time (2000-01-01), reset back to the real
// time. From sync on it runs in real time while the bubble's clock jumps
// over its waits, so the two drift apart by those waits (seconds, within
// a proof's iat window).
type bubbleClock struct {
	start  time.Time // the real time when the clock was made
	offset atomic.Int64
}

func newBubbleClock() *bubbleClock { return &bubbleClock{start: time.Now()} }

func (c *bubbleClock) sync() {
	// The real time is not readable in the bubble: the clock was made just
	// before, and the milliseconds since are within any iat window.
	c.offset.Store(int64(time.Now().Round(0).Sub(c.start.Round(0))))
}

func (c *bubbleClock) reset() { c.offset.Store(0) }

// Now is the clock, for dpoptest.Config.Now.
func (c *bubbleClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// tokenOps returns every request of the token machinery, against an
// authorization server at asURL, each sending the test secrets
// (clientSecret with style; codeSecret, verifierSecret, refreshSecret).
func tokenOps(t *testing.T, asURL string, style oauth2.AuthStyle) []tokenOp {
	t.Helper()
	s := newSigner(t)
	cfg := &dpop.Config{
		OAuth2: &oauth2.Config{ClientID: "c", ClientSecret: clientSecret, Endpoint: oauth2.Endpoint{
			AuthURL: asURL + "/authorize", TokenURL: asURL + "/token", DeviceAuthURL: asURL + "/device", AuthStyle: style,
		}},
		Signer: s,
		PARURL: asURL + "/par",
	}
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: clientSecret, TokenURL: asURL + "/token", AuthStyle: style},
		Signer: s,
	}
	return []tokenOp{
		{"Exchange", func(ctx context.Context) error {
			_, err := cfg.Exchange(ctx, codeSecret, oauth2.VerifierOption(verifierSecret))
			return err
		}},
		{"refresh", func(ctx context.Context) error {
			expired := &oauth2.Token{AccessToken: accessSecret, RefreshToken: refreshSecret, Expiry: time.Now().Add(-time.Hour)}
			_, err := cfg.TokenSource(ctx, expired).Token()
			return err
		}},
		{"ClientCredentials", func(ctx context.Context) error { _, err := cc.Token(ctx); return err }},
		{"PushAuthCodeURL", func(ctx context.Context) error {
			_, err := cfg.PushAuthCodeURL(ctx, "state", oauth2.S256ChallengeOption(verifierSecret))
			return err
		}},
		{"DeviceAuth", func(ctx context.Context) error { _, err := cfg.DeviceAuth(ctx); return err }},
		{"DeviceAccessToken", func(ctx context.Context) error {
			da := &oauth2.DeviceAuthResponse{DeviceCode: codeSecret, Interval: 1, Expiry: time.Now().Add(time.Minute)}
			_, err := cfg.DeviceAccessToken(ctx, da)
			return err
		}},
	}
}

// echo returns what a server that echoes requests puts in its answers:
// the request's form and Authorization header.
func echo(r *http.Request) string {
	b, _ := io.ReadAll(r.Body)
	return r.Header.Get("Authorization") + " " + string(b) + " " + r.URL.RawQuery
}

// formatVerbs are the renderings a log line or a debug print may use.
var formatVerbs = []string{"%v", "%+v", "%#v", "%s", "%x", "%q"}

// checkNoSecret fails when any rendering of v contains one of secrets.
func checkNoSecret(t *testing.T, name string, v any, secrets []string) {
	t.Helper()
	for _, verb := range formatVerbs {
		out := fmt.Sprintf(verb, v)
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s of %s = %.200q…; contains a secret (%.40q…)", verb, name, out, s)
			}
		}
	}
}

// noPanic runs f and returns what it panicked with, or nil.
func noPanic(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// maxWait bounds how long a test waits for a call that must return at a
// deadline far shorter; reaching it is a failure, not a measurement.
const maxWait = 10 * time.Second
