package dpop_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/oauth2"

	"github.com/dpopkit/dpop"
)

// hostileText is what a hostile server puts in a string it chooses: a
// bidi override, terminal escapes, a line break, invalid UTF-8 and 64 KiB.
var hostileText = "\u202eevil\x1b[2J\r\ninjected\xff" + strings.Repeat("A", 64<<10)

// checkClean fails unless s, a server's string as a field of an error or
// a trace event holds it, is at most max bytes and only printable.
func checkClean(t *testing.T, name, s string, max int) {
	t.Helper()
	if len(s) > max {
		t.Errorf("%s is %d bytes; want at most %d", name, len(s), max)
	}
	for i, r := range s {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar && !strings.HasPrefix(s[i:], "\uFFFD") {
			t.Errorf("%s = %.80q…; has the raw character %U", name, s, r)
			return
		}
	}
}

// checkCleanText fails unless text, an error's text or a log line, is at
// most max bytes and free of control and bidi characters.
func checkCleanText(t *testing.T, name, text string, max int) {
	t.Helper()
	if len(text) > max {
		t.Errorf("%s is %d bytes; want at most %d", name, len(text), max)
	}
	for _, r := range text {
		if unicode.IsControl(r) && r != '\n' || unicode.Is(unicode.Bidi_Control, r) {
			t.Errorf("%s = %.200q…; has the raw character %U", name, text, r)
			return
		}
	}
}

// TestChallengeErrorServerStrings: the server's strings a ChallengeError
// holds (error code, description, algs) are cut short and hold no
// control, bidi or invalid character, however they came (a 401 challenge,
// a 400 JSON body): a program that logs a field, or marshals the error,
// gets no 64 KiB line with terminal escapes.
func TestChallengeErrorServerStrings(t *testing.T) {
	// A quoted-string carries no control character, but any other byte.
	quoted := `"` + strings.NewReplacer("\x1b", "", "\r", "", "\n", "").Replace(hostileText) + `"`
	header := `DPoP error=` + quoted + `, error_description=` + quoted + `, algs="` + strings.Repeat("ES256 ", 10000) + "\u202eRS256\""
	// A 400 body is looked at only when it is small (a few KiB).
	body, _ := json.Marshal(map[string]string{"error": dpop.CodeInvalidProof, "error_description": hostileText[:3000]})
	for name, resp := range map[string]*http.Response{
		"401": {StatusCode: 401, Header: http.Header{"Www-Authenticate": {header}}, Body: http.NoBody},
		"400": {StatusCode: 400, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(string(body)))},
	} {
		t.Run(name, func(t *testing.T) {
			err := dpop.CheckResponse(resp)
			ce, ok := errors.AsType[*dpop.ChallengeError](err)
			if !ok {
				t.Fatalf("CheckResponse = %v; want a *ChallengeError", err)
			}
			checkClean(t, "ErrorCode", ce.ErrorCode, 80)
			checkClean(t, "Description", ce.Description, 300)
			if len(ce.Algs) > 16 {
				t.Errorf("%d algs kept; want at most 16", len(ce.Algs))
			}
			for _, a := range ce.Algs {
				checkClean(t, "an alg", a, 80)
			}
			checkCleanText(t, "Error()", ce.Error(), 2<<10)
			b, err := json.Marshal(ce)
			if err != nil {
				t.Fatal(err)
			}
			checkCleanText(t, "json.Marshal", string(b), 2<<10)
		})
	}
}

// TestCheckResponseNotDPoP: an API that does not speak DPoP (a 401 with
// a Bearer challenge only, or Basic from a proxy) says so: CheckResponse
// returns a ChallengeError naming the scheme, whose text says what it
// means; the Transport tells its Trace, and does not retry (a new token
// would not help).
func TestCheckResponseNotDPoP(t *testing.T) {
	for _, tt := range []struct {
		header, scheme string
	}{
		{`Bearer realm="api", error="invalid_token", error_description="token is not a Bearer token"`, "Bearer"},
		{`bearer`, "Bearer"},
		{`Basic realm="corp proxy"`, "Basic"},
		{`Bearer realm="api", DPoP algs="ES256"`, "DPoP"},
	} {
		t.Run(tt.header, func(t *testing.T) {
			var requests int
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				requests++
				return &http.Response{StatusCode: 401, Header: http.Header{"Www-Authenticate": {tt.header}}, Body: http.NoBody, Request: r}, nil
			})
			var rec traceRecorder
			c := &http.Client{Transport: &dpop.Transport{Base: base, Signer: newSigner(t), Trace: rec.trace(), Source: renewable{}}}
			resp, err := c.Get("https://api.example/items")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if requests != 1 {
				t.Errorf("%d requests; want 1 (no retry)", requests)
			}
			err = dpop.CheckResponse(resp)
			ce, ok := errors.AsType[*dpop.ChallengeError](err)
			if !ok {
				t.Fatalf("CheckResponse = %v; want a *ChallengeError", err)
			}
			if ce.Scheme != tt.scheme || ce.StatusCode != 401 {
				t.Errorf("Scheme, StatusCode = %q, %d; want %q, 401", ce.Scheme, ce.StatusCode, tt.scheme)
			}
			if len(rec.challenges) != 1 || rec.challenges[0].Scheme != tt.scheme {
				t.Errorf("ChallengeReceived = %+v; want one, scheme %s", rec.challenges, tt.scheme)
			}
			if tt.scheme == "DPoP" {
				return
			}
			if msg := err.Error(); !strings.Contains(msg, tt.scheme) || !strings.Contains(msg, "does not accept DPoP") {
				t.Errorf("Error() = %q; want it to name %s and say the server does not accept DPoP", msg, tt.scheme)
			}
		})
	}
}

// renewable is a TokenSource that can always replace its token.
type renewable struct{}

func (renewable) Token() (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: accessSecret, TokenType: "DPoP"}, nil
}
func (r renewable) TokenContext(context.Context) (*oauth2.Token, error) { return r.Token() }
func (renewable) Invalidate(*oauth2.Token) bool                         { return true }

// TestRefusedAlgPointsAtChooseAlg: a refusal of the proof's algorithm
// says where to look: ChooseAlg for a key the server accepts, and
// Metadata.CheckSigner to find out before the first request.
func TestRefusedAlgPointsAtChooseAlg(t *testing.T) {
	errs := map[string]error{
		"challenge with algs": &dpop.ChallengeError{StatusCode: 401, ErrorCode: dpop.CodeInvalidProof, Algs: []string{"ES384", "PS256"}},
		"challenge about alg": &dpop.ChallengeError{StatusCode: 400, ErrorCode: dpop.CodeInvalidProof, Description: "unsupported alg"},
		"CheckSigner":         (&dpop.Metadata{DPoPSigningAlgValuesSupported: []string{"ES384"}}).CheckSigner(newSigner(t)),
	}
	as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_dpop_proof","error_description":"Unsupported DPoP proof alg ES256"}`)
	})
	cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: as.URL + "/token"}}, Signer: newSigner(t)}
	_, errs["token endpoint"] = cfg.Exchange(context.Background(), "code")
	for name, err := range errs {
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "ChooseAlg") {
			t.Errorf("%s: %q; want a pointer to ChooseAlg", name, msg)
		}
	}
}
