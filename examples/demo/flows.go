package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
)

// demo is what the steps share. The steps run in order, one at a time.
type demo struct {
	opts  options
	out   *printer
	log   *traceLog
	net   *http.Transport // the only connection to the servers
	trace *tracer         // over net; the Base of every dpop.Transport

	srv      *dpoptest.Server
	key      *dpop.Signer
	asNonces *dpop.NonceCache // the authorization server's nonces
	rsNonces *dpop.NonceCache // the resource server's nonces

	login *dpop.Config  // the CLI's configuration, from step 3 on
	tok   *oauth2.Token // alice's current token
	api   *http.Client  // alice's API client, from step 4 on
}

func newDemo(out *printer, opts options) *demo {
	net := http.DefaultTransport.(*http.Transport).Clone()
	net.Proxy = nil // 127.0.0.1 only
	log := newTraceLog(out)
	return &demo{
		opts:     opts,
		out:      out,
		log:      log,
		net:      net,
		trace:    &tracer{base: net, party: "client", log: log},
		asNonces: dpop.NewNonceCache(0),
		rsNonces: dpop.NewNonceCache(0),
	}
}

func (d *demo) close() {
	d.net.CloseIdleConnections()
	if d.srv != nil {
		d.srv.Close()
	}
}

// tracedContext returns ctx with the tracing client as oauth2.HTTPClient:
// the SDK's token requests then go through the tracer too.
func (d *demo) tracedContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: d.trace})
}

// step is one numbered step of the demo.
type step struct {
	name  string // short; names the step in errors and in the JSON output
	title string
	run   func(context.Context) error
}

func (d *demo) steps() []step {
	return []step{
		{"generate", "Generate: start the AS + RS on 127.0.0.1 and create the client's key", d.generate},
		{"client credentials", "Bind: a backend gets a DPoP-bound token with client credentials", d.clientCredentials},
		{"login", "Bind: alice logs in with an authorization code + PKCE + dpop_jkt (headless)", d.authCodeLogin},
		{"api calls", "Verify: call the API; the RS demands a nonce and the Transport retries", d.callAPI},
		{"refresh", "Refresh: the token expires and is renewed with the same key", d.refresh},
		{"stolen token", "Attack: the access token is stolen, the key is not", d.stolenToken},
		{"replayed proof", "Attack: a captured request is replayed verbatim, proof and all", d.replayedProof},
	}
}

func (d *demo) generate(ctx context.Context) error {
	d.srv = dpoptest.NewServer(&dpoptest.Config{RequireNonce: true, NonceEvery: 3})
	d.out.info("servers", d.srv.URL+" (AS: /authorize, /token; RS: /api/)")
	d.out.info("nonces", "required by both servers, rotated every 3 accepted proofs")
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if d.key, err = dpop.NewSigner(pk, nil); err != nil {
		return err
	}
	d.out.info("client key", "ECDSA P-256, proofs signed "+d.key.Alg())
	d.out.info("jkt", d.key.Thumbprint()+" (RFC 7638 thumbprint: tokens get bound to it)")
	return d.expect(d.key.Alg() == "ES256", "the key signs ES256 proofs", d.key.Alg())
}

func (d *demo) clientCredentials(ctx context.Context) error {
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{
			ClientID:     "backend",
			ClientSecret: "backend-secret",
			TokenURL:     d.srv.Endpoint().TokenURL,
			Scopes:       []string{"api"},
		},
		Signer: d.key,
		Nonces: d.asNonces,
	}
	mark := d.log.mark()
	tok, err := cc.Token(ctx)
	if err != nil {
		return err
	}
	if err := d.expectRetries(mark, 1, "the AS demanded a nonce: one 400 use_dpop_nonce, one retry"); err != nil {
		return err
	}
	return d.checkToken(tok, "backend")
}

func (d *demo) authCodeLogin(ctx context.Context) error {
	d.login = &dpop.Config{
		OAuth2: &oauth2.Config{
			ClientID:    "cli", // a public client: PKCE instead of a secret
			Endpoint:    d.srv.Endpoint(),
			RedirectURL: "http://127.0.0.1/callback",
			Scopes:      []string{"api"},
		},
		Signer: d.key,
		Nonces: d.asNonces,
	}
	verifier, state := oauth2.GenerateVerifier(), rand.Text()
	authURL := d.login.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
	u, err := url.Parse(authURL)
	if err != nil {
		return err
	}
	q := u.Query()
	d.out.info("authorize URL", joinKV("dpop_jkt", short(q.Get("dpop_jkt")), "code_challenge_method", q.Get("code_challenge_method"), "code_challenge", short(q.Get("code_challenge"))))
	if err := d.expect(q.Get("dpop_jkt") == d.key.Thumbprint(), "dpop_jkt binds the code to our key", q.Get("dpop_jkt")); err != nil {
		return err
	}
	code, err := d.browse(ctx, authURL, state)
	if err != nil {
		return err
	}
	mark := d.log.mark()
	tok, err := d.login.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return err
	}
	if d.log.retries(mark) == 0 {
		d.out.info("no challenge", "the AS nonce learned in step 2 is still current (one nonce cache per server)")
	}
	if err := d.checkToken(tok, dpoptest.TestUser); err != nil {
		return err
	}
	d.tok = tok
	return d.expect(tok.RefreshToken != "", "a refresh token came with it", "none")
}

// browse plays alice's browser: it opens the authorization URL, which
// dpoptest approves at once, and takes code and state from the redirect
// instead of following it to a loopback listener.
func (d *demo) browse(ctx context.Context, authURL, state string) (string, error) {
	hc := &http.Client{
		Transport: d.trace.as("browser"),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil {
		return "", fmt.Errorf("authorization endpoint answered %s; want 302 Found with a Location", resp.Status)
	}
	q := loc.Query()
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("authorization refused: %s: %s", e, q.Get("error_description"))
	}
	if err := d.expect(q.Get("state") == state && q.Get("code") != "", "the redirect carries a code and our state", loc.RawQuery); err != nil {
		return "", err
	}
	return q.Get("code"), nil
}

func (d *demo) callAPI(ctx context.Context) error {
	d.api = d.apiClient(d.login.TokenSource(ctx, d.tok))

	mark := d.log.mark()
	if _, err := d.callOK(ctx, http.MethodGet, "/api/me", ""); err != nil {
		return err
	}
	if err := d.expectRetries(mark, 1, "the RS demanded its own nonce: one 401 use_dpop_nonce, one retry"); err != nil {
		return err
	}

	mark = d.log.mark()
	if _, err := d.callOK(ctx, http.MethodPost, "/api/notes", `{"note":"first"}`); err != nil {
		return err
	}
	if _, err := d.callOK(ctx, http.MethodGet, "/api/me", ""); err != nil {
		return err
	}
	if err := d.expectRetries(mark, 0, "no retry while the cached nonce is current, even across a rotation"); err != nil {
		return err
	}

	d.srv.RotateNonces()
	d.out.info("server", "rotates both nonces now, as after a restart: the cached ones go stale")
	mark = d.log.mark()
	if _, err := d.callOK(ctx, http.MethodPost, "/api/notes", `{"note":"second"}`); err != nil {
		return err
	}
	return d.expectRetries(mark, 1, "the stale nonce got a challenge and one retry, the body sent again")
}

// apiClient returns alice's API client: a dpop.Transport over the tracer,
// sharing the resource server's nonces across steps.
func (d *demo) apiClient(ts oauth2.TokenSource) *http.Client {
	return &http.Client{Transport: &dpop.Transport{
		Base:   d.trace,
		Source: ts,
		Signer: d.key,
		Nonces: d.rsNonces,
	}}
}

func (d *demo) refresh(ctx context.Context) error {
	expired := *d.tok
	expired.Expiry = time.Now().Add(-time.Minute)
	d.out.info("access token", "expired (as it would be after an hour); the refresh token is kept")
	ts := d.login.TokenSource(ctx, &expired)
	tok, err := ts.Token()
	if err != nil {
		return err
	}
	if grant := d.lastGrant(); grant != "refresh_token" {
		return d.expect(false, "the AS saw a refresh_token grant", grant)
	}
	if err := d.expect(tok.AccessToken != d.tok.AccessToken, "a new access token", "the old one"); err != nil {
		return err
	}
	if err := d.checkToken(tok, dpoptest.TestUser); err != nil {
		return err
	}
	d.tok = tok
	d.api = d.apiClient(ts)
	_, err = d.callOK(ctx, http.MethodGet, "/api/me", "")
	return err
}

// lastGrant returns the grant_type of the last token request the AS saw.
func (d *demo) lastGrant() string {
	reqs := d.srv.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Kind == "token" {
			return reqs[i].GrantType
		}
	}
	return "none"
}

// checkToken checks a token response (RFC 9449 §5, §6.1): token_type DPoP
// and a JWT access token whose cnf.jkt is our key's thumbprint.
func (d *demo) checkToken(tok *oauth2.Token, subject string) error {
	if err := d.expect(strings.EqualFold(tok.TokenType, "DPoP"), "token_type is DPoP", tok.TokenType); err != nil {
		return err
	}
	var c struct {
		Sub      string `json:"sub"`
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
		Exp      int64  `json:"exp"`
		Cnf      struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	parts := strings.Split(tok.AccessToken, ".")
	if len(parts) != 3 {
		return fmt.Errorf("the access token is not a JWT")
	}
	if err := decodeSegment(parts[1], &c); err != nil {
		return fmt.Errorf("access token payload: %w", err)
	}
	d.out.info("access token", short(tok.AccessToken)+" (JWT), payload: "+
		joinKV("sub", c.Sub, "client_id", c.ClientID, "scope", c.Scope, "exp", clock(c.Exp), "cnf.jkt", short(c.Cnf.JKT)))
	if err := d.expect(c.Cnf.JKT == d.key.Thumbprint(), "cnf.jkt is our key's thumbprint: the token is bound to the key", c.Cnf.JKT); err != nil {
		return err
	}
	return d.expect(c.Sub == subject, "issued to "+subject, c.Sub)
}
