package dpop_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode"

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
