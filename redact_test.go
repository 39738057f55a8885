package dpop_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/dpopkit/dpop"
)

// failingKey signs ok times, then fails: a hardware key unplugged, or a
// KMS that stopped answering.
type failingKey struct {
	crypto.Signer
	ok    int32
	calls atomic.Int32
}

func (k *failingKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if k.calls.Add(1) > k.ok {
		return nil, errors.New("key unavailable")
	}
	return k.Signer.Sign(r, digest, opts)
}

// echoServer is an authorization server whose every answer is a 400 error
// whose error_description echoes the request's client assertion and then
// its form, as some servers do. It records the assertions it received.
type echoServer struct {
	url        string
	mu         sync.Mutex
	assertions []string // guarded by mu
}

func newEchoServer(t *testing.T) *echoServer {
	t.Helper()
	e := &echoServer{}
	srv := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		a := r.PostForm.Get("client_assertion")
		e.mu.Lock()
		e.assertions = append(e.assertions, a)
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{
			"error":             "invalid_client",
			"error_description": "refresh " + r.PostForm.Get("refresh_token") + " assertion " + a + " refused; request was " + r.PostForm.Encode(),
		})
	})
	e.url = srv.URL
	return e
}

func (e *echoServer) sent() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.assertions...)
}

// assertionOps returns every request that authenticates the client with
// private_key_jwt, each made by a Config or a ClientCredentials of its own
// for as, whose assertions a key from newKey signs.
func assertionOps(t *testing.T, as string, newKey func() crypto.Signer) []tokenOp {
	t.Helper()
	config := func() *dpop.Config {
		a, err := dpop.NewAssertionSigner(newKey(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return &dpop.Config{
			OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{
				AuthURL: as + "/authorize", TokenURL: as + "/token", DeviceAuthURL: as + "/device",
			}},
			Signer: newSigner(t), ClientAssertion: a, Issuer: as, PARURL: as + "/par",
		}
	}
	return []tokenOp{
		{"Exchange", func(ctx context.Context) error {
			_, err := config().Exchange(ctx, codeSecret, oauth2.VerifierOption(verifierSecret))
			return err
		}},
		{"refresh", func(ctx context.Context) error {
			expired := &oauth2.Token{AccessToken: accessSecret, RefreshToken: refreshSecret, Expiry: time.Now().Add(-time.Hour)}
			_, err := config().TokenSource(ctx, expired).Token()
			return err
		}},
		{"ClientCredentials", func(ctx context.Context) error {
			cfg := config()
			cc := &dpop.ClientCredentials{
				OAuth2: &clientcredentials.Config{ClientID: "c", TokenURL: as + "/token"},
				Signer: cfg.Signer, ClientAssertion: cfg.ClientAssertion, Issuer: as,
			}
			_, err := cc.Token(ctx)
			return err
		}},
		{"PushAuthCodeURL", func(ctx context.Context) error {
			_, err := config().PushAuthCodeURL(ctx, "state", oauth2.S256ChallengeOption(verifierSecret))
			return err
		}},
		{"DeviceAuth", func(ctx context.Context) error { _, err := config().DeviceAuth(ctx); return err }},
		{"DeviceAccessToken", func(ctx context.Context) error {
			da := &oauth2.DeviceAuthResponse{DeviceCode: codeSecret, Interval: 1, Expiry: time.Now().Add(time.Minute)}
			_, err := config().DeviceAccessToken(ctx, da)
			return err
		}},
	}
}

// checkErrorHidesSecrets fails when the text of err, under any verb, or
// a server string its *TokenError or *ChallengeError keeps, holds one of
// secrets.
func checkErrorHidesSecrets(t *testing.T, err error, secrets []string) {
	t.Helper()
	checkNoSecret(t, "error", err, secrets)
	var fields []string
	if te, ok := errors.AsType[*dpop.TokenError](err); ok {
		fields = append(fields, te.ErrorCode, te.Description, te.URI)
	}
	if ce, ok := errors.AsType[*dpop.ChallengeError](err); ok {
		fields = append(fields, ce.ErrorCode, ce.Description)
	}
	for _, f := range fields {
		for _, s := range secrets {
			if s != "" && strings.Contains(f, s) {
				t.Errorf("error field %.80q… holds a secret (%.20q…)", f, s)
			}
		}
	}
}

// TestRedactWhatWasSent: an error answer that echoes the request is
// redacted of the secrets that were sent, not of a body made again. A
// client assertion is signed anew for each attempt, so reading the body
// again through GetBody gives another assertion than the one the server
// echoes; and when that signing fails, the rest of the form (the refresh
// token) must still be redacted.
func TestRedactWhatWasSent(t *testing.T) {
	for _, tt := range []struct {
		name   string
		signOK int32 // signatures the assertion key makes before it fails
	}{
		{"assertion signed again", 1 << 30},
		{"signing again fails", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			as := newEchoServer(t)
			newKey := func() crypto.Signer {
				ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				return &failingKey{Signer: ec, ok: tt.signOK}
			}
			for _, op := range assertionOps(t, as.url, newKey) {
				t.Run(op.name, func(t *testing.T) {
					before := len(as.sent())
					err := op.call(context.Background())
					if err == nil {
						t.Fatal("no error")
					}
					sent := as.sent()[before:]
					if len(sent) == 0 || sent[0] == "" {
						t.Fatalf("the server got no client assertion (err = %v)", err)
					}
					secrets := []string{refreshSecret, codeSecret, verifierSecret}
					for _, a := range sent {
						secrets = append(secrets, a, a[strings.LastIndex(a, ".")+1:]) // and its signature alone
					}
					checkErrorHidesSecrets(t, err, secrets)
				})
			}
		})
	}
}

// TestRedactWithoutResponseRequest: a token endpoint reached through an
// HTTP client whose transport returns responses without their Request
// (an in-memory fake, a recording proxy) still gets the request's secrets
// redacted from an answer that echoes them.
func TestRedactWithoutResponseRequest(t *testing.T) {
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		desc, _ := json.Marshal("bad request: " + r.Header.Get("Authorization") + " " + string(b))
		return &http.Response{
			StatusCode: http.StatusBadRequest,
			Header:     http.Header{"Content-Type": {"application/json"}},
			Body:       io.NopCloser(strings.NewReader(`{"error":"invalid_grant","error_description":` + string(desc) + `}`)),
		}, nil // no Request
	})
	ctx := withClient(&http.Client{Transport: base})
	for styleName, style := range map[string]oauth2.AuthStyle{"Basic": oauth2.AuthStyleInHeader, "InParams": oauth2.AuthStyleInParams} {
		for _, op := range tokenOps(t, "https://as.example", style) {
			t.Run(styleName+"/"+op.name, func(t *testing.T) {
				err := op.call(ctx)
				if err == nil {
					t.Fatal("no error")
				}
				basic := "Basic " + base64Std("c:"+url.QueryEscape(clientSecret))
				checkErrorHidesSecrets(t, err, []string{clientSecret, codeSecret, verifierSecret, refreshSecret, basic[len("Basic "):]})
			})
		}
	}
}

// TestRedactResourceServerEcho: a resource server whose refusal echoes
// the access token or the proof in its error_description gives a
// ChallengeError that holds neither.
func TestRedactResourceServerEcho(t *testing.T) {
	api := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		proof := r.Header.Get("DPoP")
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`DPoP error="invalid_token", error_description="%s refused (proof %s)"`, r.Header.Get("Authorization"), proof))
		w.WriteHeader(http.StatusUnauthorized)
	})
	var proofs []string
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		proofs = append(proofs, r.Header.Get("DPoP"))
		return http.DefaultTransport.RoundTrip(r)
	})
	tok := &oauth2.Token{AccessToken: accessSecret, TokenType: "DPoP"}
	c := &http.Client{Transport: &dpop.Transport{Base: base, Signer: newSigner(t), Source: oauth2.StaticTokenSource(tok)}}
	resp, err := c.Get(api.URL + "/items")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	err = dpop.CheckResponse(resp)
	if err == nil {
		t.Fatal("CheckResponse = nil; want the invalid_token challenge")
	}
	secrets := []string{accessSecret}
	for _, p := range proofs {
		_, claims, _ := strings.Cut(p, ".") // the header is the public key's
		secrets = append(secrets, p, claims[:40])
	}
	checkErrorHidesSecrets(t, err, secrets)
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestRedactLargeForm: a form whose secrets come after a large parameter
// (claims sorts before client_secret) is redacted all the same.
func TestRedactLargeForm(t *testing.T) {
	as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": "secret " + r.PostForm.Get("client_secret") + " refused"})
	})
	cfg := &dpop.Config{
		OAuth2: &oauth2.Config{ClientID: "c", ClientSecret: clientSecret, Endpoint: oauth2.Endpoint{
			AuthURL: as.URL + "/authorize", TokenURL: as.URL + "/token", AuthStyle: oauth2.AuthStyleInParams,
		}},
		Signer: newSigner(t), PARURL: as.URL + "/par",
	}
	claims := oauth2.SetAuthURLParam("claims", `{"userinfo":{"x":"`+strings.Repeat("a", 100<<10)+`"}}`)
	_, err := cfg.PushAuthCodeURL(context.Background(), "state", claims)
	if err == nil {
		t.Fatal("no error")
	}
	checkErrorHidesSecrets(t, err, []string{clientSecret})
}

// Secrets of a URL: the password of its userinfo and an API key in its
// query.
const (
	urlPassword = "pw-S3cretURLPassword"
	querySecret = "qk-S3cretQueryKey"
)

// encodings returns s as text may carry it: raw, base64, base64url and
// hex.
func encodings(s string) []string {
	b := []byte(s)
	return []string{s, base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b), fmt.Sprintf("%x", b)}
}

// TestSecretsUnderEveryEncoder: every exported type that holds a secret
// (a private key, a token, a client secret, a device code, a password in
// an endpoint URL) shows none of it under any verb of fmt (as a value and
// as a pointer), under log/slog's text and JSON handlers, or under
// encoding/json; and the types that summarize themselves marshal without
// an error.
func TestSecretsUnderEveryEncoder(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(ec, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertionKey := testKeys(t)["Ed25519"]
	a, err := dpop.NewAssertionSigner(assertionKey, &dpop.SignerOptions{KeyID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	proof, err := s.Proof("POST", "https://as.example/token", &dpop.ProofOptions{AccessToken: accessSecret})
	if err != nil {
		t.Fatal(err)
	}
	assertion, err := a.Assertion("c", "https://as.example")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "https://user:" + urlPassword + "@as.example/token?key=" + querySecret
	var secrets []string
	for _, v := range []string{accessSecret, refreshSecret, clientSecret, codeSecret, urlPassword, querySecret, proof, assertion} {
		secrets = append(secrets, encodings(v)...)
	}
	secrets = append(secrets, secretRenderings(t, ec)...)
	secrets = append(secrets, secretRenderings(t, assertionKey)...)

	tok := &oauth2.Token{AccessToken: accessSecret, RefreshToken: refreshSecret, TokenType: "DPoP"}
	cfg := dpop.Config{
		OAuth2: &oauth2.Config{ClientID: "c", ClientSecret: clientSecret, Endpoint: oauth2.Endpoint{
			AuthURL: endpoint, TokenURL: endpoint, DeviceAuthURL: endpoint,
		}},
		Signer: s, PARURL: endpoint, RevocationURL: endpoint,
	}
	cc := dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: clientSecret, TokenURL: endpoint},
		Signer: s, ClientAssertion: a,
	}
	tr := &dpop.Transport{Signer: s, Source: oauth2.StaticTokenSource(tok)}
	po := dpop.ProofOptions{AccessToken: accessSecret, Nonce: "n1"}
	ds := dpop.DeviceStatus{Auth: &oauth2.DeviceAuthResponse{DeviceCode: codeSecret, UserCode: "WDJB-MJHT", VerificationURI: "https://as.example/device"}, Polls: 2}
	ctx := context.Background()

	// A token error from a server that echoes the request.
	as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": string(b) + r.Header.Get("Authorization")})
	})
	echoCfg := dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", ClientSecret: clientSecret, Endpoint: oauth2.Endpoint{TokenURL: as.URL + "/token?key=" + querySecret}}, Signer: s}
	_, tokenErr := echoCfg.Exchange(ctx, codeSecret)
	if tokenErr == nil {
		t.Fatal("Exchange: no error")
	}

	values := []struct {
		name      string
		v         any
		marshaler bool // must marshal to JSON without an error
	}{
		{"Signer", *s, true}, {"*Signer", s, true},
		{"AssertionSigner", *a, true}, {"*AssertionSigner", a, true},
		{"ProofOptions", po, true}, {"*ProofOptions", &po, true},
		{"Config", cfg, true}, {"*Config", &cfg, true},
		{"ClientCredentials", cc, true}, {"*ClientCredentials", &cc, true},
		{"*Transport", tr, true},
		{"DeviceStatus", ds, true}, {"*DeviceStatus", &ds, true},
		{"Config.TokenSource", cfg.TokenSource(ctx, tok), true},
		{"ClientCredentials.TokenSource", cc.TokenSource(ctx), true},
		{"Config.Client", cfg.Client(ctx, tok), false},
		{"TokenError", tokenErr, false},
	}
	for _, v := range values {
		t.Run(v.name, func(t *testing.T) {
			outputs := map[string]string{}
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
				outputs[verb] = fmt.Sprintf(verb, v.v)
			}
			var text, js strings.Builder
			slog.New(slog.NewTextHandler(&text, nil)).Info("m", "v", v.v)
			slog.New(slog.NewJSONHandler(&js, nil)).Info("m", "v", v.v)
			outputs["slog text"], outputs["slog JSON"] = text.String(), js.String()
			b, err := json.Marshal(v.v)
			if v.marshaler && err != nil {
				t.Errorf("json.Marshal: %v", err)
			}
			if v.marshaler && strings.Contains(js.String(), "!ERROR") {
				t.Errorf("slog JSON = %s; want the value, not an error", js.String())
			}
			outputs["json.Marshal"] = string(b)
			for enc, out := range outputs {
				for _, secret := range secrets {
					if strings.Contains(out, secret) {
						t.Errorf("%s = %.300q; contains a secret (%.24q…)", enc, out, secret)
					}
				}
			}
		})
	}
}
