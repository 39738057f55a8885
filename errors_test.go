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
	"golang.org/x/oauth2"
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
