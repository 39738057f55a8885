package dpop_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestTokenErrorsCarryNoRequestSecret: a token endpoint (or PAR, device
// endpoint) that echoes the request in its error body gets an error whose
// text has none of the request's secrets, for a JSON error, a JSON error
// whose description echoes, and a plain-text body; the
// *oauth2.RetrieveError is still there.
func TestTokenErrorsCarryNoRequestSecret(t *testing.T) {
	bodies := map[string]func(r *http.Request) (contentType, body string){
		"JSON": func(r *http.Request) (string, string) {
			b, _ := json.Marshal(map[string]string{"error": "invalid_grant", "error_description": "no", "request": echo(r)})
			return "application/json", string(b)
		},
		"JSON description": func(r *http.Request) (string, string) {
			b, _ := json.Marshal(map[string]string{"error": "invalid_grant", "error_description": "bad request: " + echo(r)})
			return "application/json", string(b)
		},
		"text": func(r *http.Request) (string, string) { return "text/plain", "bad request: " + echo(r) },
	}
	for bodyName, body := range bodies {
		var authorization atomic.Value
		as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
			authorization.Store(r.Header.Get("Authorization"))
			ct, b := body(r)
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, b)
		})
		for styleName, style := range map[string]oauth2.AuthStyle{"Basic": oauth2.AuthStyleInHeader, "InParams": oauth2.AuthStyleInParams} {
			for _, op := range tokenOps(t, as.URL, style) {
				t.Run(bodyName+"/"+styleName+"/"+op.name, func(t *testing.T) {
					authorization.Store("")
					err := op.run(t, context.Background())
					if err == nil {
						t.Fatal("no error")
					}
					secrets := []string{clientSecret, codeSecret, verifierSecret, refreshSecret}
					if a := authorization.Load().(string); len(a) > len("Basic ") {
						secrets = append(secrets, a[len("Basic "):])
					}
					checkNoSecret(t, "error", err, secrets)
					var re *oauth2.RetrieveError
					if !errors.As(err, &re) || re.Response == nil || re.Response.StatusCode != http.StatusBadRequest {
						t.Errorf("errors.As(%v, *oauth2.RetrieveError) = %v; want the 400", err, re)
					}
				})
			}
		}
	}
}

// TestTokenErrorTextEscaped: an error_description with control and bidi
// characters comes out escaped, and a huge one is cut.
func TestTokenErrorTextEscaped(t *testing.T) {
	huge := 10 << 20 // past x/oauth2's 1 MiB and this package's 256 KiB limits
	if testing.Short() {
		huge = 2 << 20
	}
	tests := []struct {
		name, desc string
	}{
		{"control and bidi", "evil\u202etxt.exe\x1b[2J\ninjected line\u2066x\u2069\r\x00"},
		{"100 KiB", strings.Repeat("A", 100<<10)},
		{fmt.Sprintf("%d MiB", huge>>20), strings.Repeat("B", huge)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":"invalid_grant","error_description":`+strconv.Quote(tt.desc)+`}`)
			})
			for _, op := range tokenOps(t, as.URL, oauth2.AuthStyleInHeader) {
				err := op.run(t, context.Background())
				if err == nil {
					t.Fatalf("%s: no error", op.name)
				}
				msg := err.Error()
				if len(msg) > 2<<10 {
					t.Errorf("%s: error text is %d bytes; want it cut to a few hundred", op.name, len(msg))
				}
				for _, r := range msg {
					if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
						t.Errorf("%s: error text %.300q has the raw character %U", op.name, msg, r)
						break
					}
				}
			}
		})
	}
}

// TestNonceFromTokenError: an authorization server that challenges the
// retry again (use_dpop_nonce twice in a row) gives an error that holds a
// *ChallengeError with the newest nonce, and that is still an
// *oauth2.RetrieveError.
func TestNonceFromTokenError(t *testing.T) {
	var n atomic.Int32
	as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("DPoP-Nonce", "nonce-"+strconv.Itoa(int(n.Add(1))))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"use_dpop_nonce","error_description":"use this nonce"}`)
	})
	for _, op := range tokenOps(t, as.URL, oauth2.AuthStyleInHeader) {
		if op.name == "DeviceAuth" {
			continue // no proof, so no DPoP challenge
		}
		t.Run(op.name, func(t *testing.T) {
			before := n.Load()
			err := op.run(t, context.Background())
			if got := n.Load() - before; got != 2 {
				t.Errorf("%d requests; want 2 (the challenge answered once)", got)
			}
			want := "nonce-" + strconv.Itoa(int(n.Load()))
			var ce *dpop.ChallengeError
			if !errors.As(err, &ce) || ce.ErrorCode != dpop.CodeUseNonce || ce.Nonce != want {
				t.Errorf("errors.As(%v, *dpop.ChallengeError) = %+v; want use_dpop_nonce with nonce %q", err, ce, want)
			}
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != dpop.CodeUseNonce {
				t.Errorf("errors.As(%v, *oauth2.RetrieveError) = %v; want the use_dpop_nonce answer", err, re)
			}
		})
	}
}

// TestServerStringsEscaped: a token_type or an algs list from a hostile
// server comes out of the error text escaped and cut short.
func TestServerStringsEscaped(t *testing.T) {
	evil := "\u202eevil\x1b[2J\n" + strings.Repeat("A", 100<<10)
	as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.Marshal(map[string]string{"access_token": "a", "token_type": evil})
		w.Write(b)
	})
	s := newSigner(t)
	cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: as.URL}}, Signer: s}
	_, tokErr := cfg.Exchange(context.Background(), "code")
	algErr := (&dpop.Metadata{DPoPSigningAlgValuesSupported: []string{evil, "RS256\x1b[0m"}}).CheckSigner(s)
	for name, err := range map[string]error{"TokenTypeError": tokErr, "AlgError": algErr} {
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		msg := err.Error()
		if len(msg) > 2<<10 {
			t.Errorf("%s: error text is %d bytes; want it cut", name, len(msg))
		}
		for _, r := range msg {
			if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
				t.Errorf("%s: error text %.100q has the raw character %U", name, msg, r)
				break
			}
		}
	}
}

// TestErrorTextBounded: a callback's error_description and a discovery
// error say "dpop:" once, and a huge server string is cut.
func TestErrorTextBounded(t *testing.T) {
	huge := strings.Repeat("A", 1<<20)
	_, err := (&dpop.Metadata{Issuer: "https://as"}).VerifyAuthResponse(url.Values{"error": {"access_denied"}, "error_description": {huge}, "state": {"s"}}, "s")
	if err == nil {
		t.Error("VerifyAuthResponse of an error response: no error")
	} else if msg := err.Error(); len(msg) > 2000 || strings.Count(msg, "dpop:") != 1 {
		t.Errorf("authorization error text is %d bytes with %d \"dpop:\"; want it cut, with one", len(msg), strings.Count(msg, "dpop:"))
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issuer":"` + "http://" + r.Host + `"}`)) // no token_endpoint
	}))
	defer ts.Close()
	_, err = dpop.Discover(context.Background(), ts.URL)
	if err == nil || strings.Count(err.Error(), "dpop:") != 1 {
		t.Errorf("Discover err = %v; want one \"dpop:\"", err)
	}
}

// TestProofErrorHidesPassword: a URL Proof cannot parse is not repeated in
// the error, so the password of its userinfo does not reach a log.
func TestProofErrorHidesPassword(t *testing.T) {
	_, err := newSigner(t).Proof("GET", "https://user:"+clientSecret+"@as example/", nil)
	if err == nil || strings.Contains(err.Error(), clientSecret) {
		t.Errorf("err = %v; want an error without the password", err)
	}
}

// TestErrorFieldsCleaned: the server's strings a TokenError or a
// TokenTypeError holds are cut short and hold no control, bidi or invalid
// character, as their text is: a program that logs a field, or marshals
// the error, gets neither a flood nor terminal escapes.
func TestErrorFieldsCleaned(t *testing.T) {
	var tokenType atomic.Bool
	as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if tokenType.Load() {
			json.NewEncoder(w).Encode(map[string]string{"access_token": "a", "token_type": hostileText})
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": hostileText, "error_description": hostileText, "error_uri": hostileText})
	})
	cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: as.URL}}, Signer: newSigner(t)}
	_, err := cfg.Exchange(context.Background(), "code")
	te, ok := errors.AsType[*dpop.TokenError](err)
	if !ok {
		t.Fatalf("Exchange = %v; want a *TokenError", err)
	}
	checkClean(t, "ErrorCode", te.ErrorCode, 80)
	checkClean(t, "Description", te.Description, 300)
	checkClean(t, "URI", te.URI, 300)
	b, _ := json.Marshal(te)
	checkCleanText(t, "json.Marshal(TokenError)", string(b), 2<<10)

	tokenType.Store(true)
	_, err = cfg.Exchange(context.Background(), "code")
	tte, ok := errors.AsType[*dpop.TokenTypeError](err)
	if !ok {
		t.Fatalf("Exchange = %v; want a *TokenTypeError", err)
	}
	checkClean(t, "TokenType", tte.TokenType, 80)
}

// TestWrappedErrorTextBounded: an error that is not a server's error
// answer but quotes one (an expires_in that does not parse, 200 KiB of
// digits) has a bounded text.
func TestWrappedErrorTextBounded(t *testing.T) {
	as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"a","token_type":"DPoP","expires_in":1`+strings.Repeat("9", 200<<10)+`}`)
	})
	for _, op := range tokenOps(t, as.URL, oauth2.AuthStyleInHeader) {
		if op.name != "Exchange" && op.name != "DeviceAccessToken" {
			continue
		}
		err := op.call(context.Background())
		if err == nil {
			t.Errorf("%s: no error", op.name)
			continue
		}
		checkCleanText(t, op.name+" error text", err.Error(), 2<<10+8)
	}
}

// TestTokenErrorNamesEndpoint: a token-side request that fails names the
// endpoint it went to, without the password or the query of its URL, and
// says when the answer was not an OAuth error at all (a wrong URL, a web
// server's or a proxy's page).
func TestTokenErrorNamesEndpoint(t *testing.T) {
	var status atomic.Int32
	as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(int(status.Load()))
		io.WriteString(w, "<html><body>Sign in to the corporate proxy</body></html>")
	})
	u, _ := url.Parse(as.URL)
	at := func(path string) string {
		return "http://user:" + urlPassword + "@" + u.Host + path + "?key=" + querySecret
	}
	cfg := &dpop.Config{
		OAuth2: &oauth2.Config{ClientID: "c", ClientSecret: clientSecret, Endpoint: oauth2.Endpoint{
			AuthURL: at("/authorize"), TokenURL: at("/token"), DeviceAuthURL: at("/device"),
		}},
		Signer: newSigner(t), PARURL: at("/par"), RevocationURL: at("/revoke"),
	}
	cc := &dpop.ClientCredentials{OAuth2: &clientcredentials.Config{ClientID: "c", ClientSecret: clientSecret, TokenURL: at("/token")}, Signer: newSigner(t)}
	ops := map[string]struct {
		path string
		call func(context.Context) error
	}{
		"Exchange":          {"/token", func(ctx context.Context) error { _, err := cfg.Exchange(ctx, "code"); return err }},
		"ClientCredentials": {"/token", func(ctx context.Context) error { _, err := cc.Token(ctx); return err }},
		"PushAuthCodeURL":   {"/par", func(ctx context.Context) error { _, err := cfg.PushAuthCodeURL(ctx, "st"); return err }},
		"DeviceAuth":        {"/device", func(ctx context.Context) error { _, err := cfg.DeviceAuth(ctx); return err }},
		"Revoke":            {"/revoke", func(ctx context.Context) error { return cfg.Revoke(ctx, refreshSecret, "") }},
	}
	for _, st := range []int{http.StatusNotFound, http.StatusOK} {
		status.Store(int32(st))
		for name, op := range ops {
			if st == http.StatusOK && name == "Revoke" {
				continue // a 200 is a revocation's success, whatever its body (RFC 7009 §2.2)
			}
			if st == http.StatusOK && name == "DeviceAuth" {
				continue // x/oauth2 flattens this error; DeviceAuth would have to name its endpoint
			}
			t.Run(fmt.Sprintf("%d/%s", st, name), func(t *testing.T) {
				err := op.call(context.Background())
				if err == nil {
					t.Fatal("no error")
				}
				msg := err.Error()
				if want := "http://" + u.Host + op.path; !strings.Contains(msg, want) {
					t.Errorf("error %q does not name the endpoint %s", msg, want)
				}
				if !strings.Contains(msg, "not an OAuth") {
					t.Errorf("error %q does not say the answer was not an OAuth answer", msg)
				}
				checkNoSecret(t, "error", err, []string{urlPassword, querySecret, clientSecret})
			})
		}
	}
}

// TestTokenErrorUnreachable: a token-side request to an endpoint that
// does not answer fails with an error that holds neither the password
// nor the query of the endpoint's URL, also where x/oauth2 flattens the
// *url.Error into its own text (device authorization).
func TestTokenErrorUnreachable(t *testing.T) {
	as := newHostile(t, false, func(http.ResponseWriter, *http.Request) {})
	as.Close() // nothing listens there any more
	u, _ := url.Parse(as.URL)
	at := func(path string) string {
		return "http://user:" + urlPassword + "@" + u.Host + path + "?key=" + querySecret
	}
	cfg := &dpop.Config{
		OAuth2: &oauth2.Config{ClientID: "c", ClientSecret: clientSecret, Endpoint: oauth2.Endpoint{
			AuthURL: at("/authorize"), TokenURL: at("/token"), DeviceAuthURL: at("/device"),
		}},
		Signer: newSigner(t), PARURL: at("/par"), RevocationURL: at("/revoke"),
	}
	for name, call := range map[string]func(context.Context) error{
		"Exchange":        func(ctx context.Context) error { _, err := cfg.Exchange(ctx, "code"); return err },
		"PushAuthCodeURL": func(ctx context.Context) error { _, err := cfg.PushAuthCodeURL(ctx, "st"); return err },
		"DeviceAuth":      func(ctx context.Context) error { _, err := cfg.DeviceAuth(ctx); return err },
		"Revoke":          func(ctx context.Context) error { return cfg.Revoke(ctx, refreshSecret, "") },
	} {
		err := call(context.Background())
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		checkNoSecret(t, name+" error", err, []string{urlPassword, querySecret})
	}
}

// TestDowngradeExplains: a Bearer token where a DPoP one was expected is
// explained (what probably happened, where to look) before AllowBearer,
// the switch that accepts it, is mentioned.
func TestDowngradeExplains(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{TokenType: "Bearer"})
	cc := &dpop.ClientCredentials{OAuth2: &clientcredentials.Config{ClientID: "backend", ClientSecret: "backend-secret", TokenURL: srv.Endpoint().TokenURL}, Signer: newSigner(t)}
	_, asErr := cc.Token(context.Background())
	c := &http.Client{Transport: &dpop.Transport{Signer: newSigner(t), Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "a", TokenType: "Bearer"})}}
	_, srcErr := c.Get(srv.URL + "/api/x")
	for name, err := range map[string]error{"token response": asErr, "Source": srcErr} {
		if _, ok := errors.AsType[*dpop.TokenTypeError](err); !ok {
			t.Errorf("%s: err = %v; want a *TokenTypeError", name, err)
			continue
		}
		msg := err.Error()
		probably, allow := strings.Index(msg, "probably"), strings.Index(msg, "AllowBearer")
		if probably < 0 || allow < probably {
			t.Errorf("%s: %q; want what probably happened, then AllowBearer", name, msg)
		}
	}
}
