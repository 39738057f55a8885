package dpop_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/dpopkit/dpop"
)

const testIssuer = "https://as.example"

func TestVerifyAuthResponse(t *testing.T) {
	for _, tt := range []struct {
		name     string
		query    string
		required bool
		code     string // want; "" means an error
		errHas   string
	}{
		{"code", "code=c1&state=s1&iss=https%3A%2F%2Fas.example", true, "c1", ""},
		{"no iss, not required", "code=c1&state=s1", false, "c1", ""},
		{"no iss, required", "code=c1&state=s1", true, "", "no iss"},
		{"wrong iss, not required", "code=c1&state=s1&iss=https%3A%2F%2Fevil.example", false, "", "mix-up"},
		{"iss with slash", "code=c1&state=s1&iss=https%3A%2F%2Fas.example%2F", true, "", "mix-up"},
		{"empty iss", "code=c1&state=s1&iss=", false, "", "mix-up"},
		{"wrong state", "code=c1&state=s2&iss=https%3A%2F%2Fas.example", true, "", "state does not match"},
		{"no state", "code=c1&iss=https%3A%2F%2Fas.example", true, "", "state does not match"},
		{"state prefix", "code=c1&state=s&iss=https%3A%2F%2Fas.example", true, "", "state does not match"},
		{"two states", "code=c1&state=s1&state=s1", false, "", "2 state parameters"},
		{"two codes", "code=c1&code=c2&state=s1", false, "", "2 code parameters"},
		{"two iss", "code=c1&state=s1&iss=https%3A%2F%2Fas.example&iss=x", false, "", "2 iss parameters"},
		{"no code", "state=s1&iss=https%3A%2F%2Fas.example", true, "", "neither code nor error"},
		{"error with wrong state", "error=access_denied&state=s2", false, "", "state does not match"},
		{"error with wrong iss", "error=access_denied&state=s1&iss=x", false, "", "mix-up"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			md := &dpop.Metadata{Issuer: testIssuer, AuthorizationResponseISSParameterSupported: tt.required}
			code, err := md.VerifyAuthResponse(q, "s1")
			if code != tt.code {
				t.Errorf("VerifyAuthResponse(%s) = %q, %v; want %q", tt.query, code, err, tt.code)
			}
			if tt.code == "" && (err == nil || !strings.Contains(err.Error(), tt.errHas)) {
				t.Errorf("VerifyAuthResponse(%s) error = %v; want one containing %q", tt.query, err, tt.errHas)
			}
			cfg := &dpop.Config{Issuer: testIssuer, FAPI2: tt.required}
			if c2, err2 := cfg.VerifyAuthResponse(q, "s1"); c2 != code || (err2 == nil) != (err == nil) {
				t.Errorf("Config.VerifyAuthResponse = %q, %v; want Metadata.VerifyAuthResponse's %q, %v", c2, err2, code, err)
			}
		})
	}
}

func TestVerifyAuthResponseError(t *testing.T) {
	q := url.Values{
		"error":             {"access_denied"},
		"error_description": {"the user said \"no\"\n\x1b[31m"},
		"error_uri":         {"https://as.example/e"},
		"state":             {"s1"},
		"iss":               {testIssuer},
	}
	md := &dpop.Metadata{Issuer: testIssuer, AuthorizationResponseISSParameterSupported: true}
	_, err := md.VerifyAuthResponse(q, "s1")
	var ae *dpop.AuthResponseError
	if !errors.As(err, &ae) {
		t.Fatalf("VerifyAuthResponse = %v; want an *AuthResponseError", err)
	}
	if ae.ErrorCode != "access_denied" || ae.Description != q.Get("error_description") || ae.URI != "https://as.example/e" {
		t.Errorf("AuthResponseError = %+v; want the response's error, error_description and error_uri", ae)
	}
	want := `dpop: authorization server answered "access_denied": "the user said \"no\"\n\x1b[31m" (see "https://as.example/e")`
	if got := err.Error(); got != want {
		t.Errorf("Error() = %s; want %s", got, want)
	}
	if strings.ContainsAny(err.Error(), "\n\x1b") {
		t.Errorf("Error() has control characters: %q", err.Error())
	}
}

func TestVerifyAuthResponseEmptyExpectations(t *testing.T) {
	q := url.Values{"code": {"c"}, "state": {""}}
	if _, err := (&dpop.Metadata{}).VerifyAuthResponse(q, ""); err == nil {
		t.Error("VerifyAuthResponse with an empty expected state: no error")
	}
	q = url.Values{"code": {"c"}, "state": {"s"}, "iss": {""}}
	if _, err := (&dpop.Metadata{}).VerifyAuthResponse(q, "s"); err == nil {
		t.Error("VerifyAuthResponse with iss and no expected issuer: no error")
	}
}

// TestVerifyAuthResponseEmptyEntries: a parameter present with no value
// (a url.Values entry holding no string, which a caller's own parsing can
// make) is an error, never a panic.
func TestVerifyAuthResponseEmptyEntries(t *testing.T) {
	for _, p := range []string{"iss", "state", "code", "error", "error_description", "error_uri"} {
		q := url.Values{"code": {"c1"}, "state": {"s1"}, "iss": {testIssuer}}
		q[p] = []string{}
		for _, required := range []bool{false, true} {
			var code string
			var err error
			if r := noPanic(func() {
				code, err = (&dpop.Metadata{Issuer: testIssuer, AuthorizationResponseISSParameterSupported: required}).VerifyAuthResponse(q, "s1")
			}); r != nil {
				t.Fatalf("VerifyAuthResponse with an empty %s entry panicked: %v", p, r)
			}
			if p == "error" || p == "error_description" || p == "error_uri" {
				continue // no value: not an error answer; the code stands
			}
			if err == nil || code != "" {
				t.Errorf("VerifyAuthResponse with an empty %s entry = %q, %v; want an error", p, code, err)
			}
		}
	}
}

// FuzzVerifyAuthResponse feeds VerifyAuthResponse arbitrary callback
// queries (with the parameters named in empty also present with no
// value): it must never panic, return a code only for the right state and
// issuer, and print errors without control characters.
func FuzzVerifyAuthResponse(f *testing.F) {
	f.Add("code=c1&state=s1&iss=https%3A%2F%2Fas.example", true, "")
	f.Add("error=access_denied&error_description=%1B%5B31m&state=s1", false, "")
	f.Add("state=s1&state=s1&code=c", false, "")
	f.Add("code=c1&state=s1;iss=x", true, "")
	f.Add("code=c1&state=s1", false, "iss")
	f.Add("code=c1&iss=https%3A%2F%2Fas.example", true, "state,code")
	f.Fuzz(func(t *testing.T, raw string, required bool, empty string) {
		q, _ := url.ParseQuery(raw)
		for _, p := range strings.Split(empty, ",") {
			if p != "" && !q.Has(p) {
				q[p] = []string{}
			}
		}
		md := &dpop.Metadata{Issuer: testIssuer, AuthorizationResponseISSParameterSupported: required}
		code, err := md.VerifyAuthResponse(q, "s1")
		if c2, err2 := (&dpop.Config{Issuer: testIssuer, FAPI2: required}).VerifyAuthResponse(q, "s1"); c2 != code || (err2 == nil) != (err == nil) {
			t.Fatalf("Config.VerifyAuthResponse = %q, %v; want Metadata.VerifyAuthResponse's %q, %v", c2, err2, code, err)
		}
		if err != nil {
			if code != "" {
				t.Fatalf("VerifyAuthResponse = %q, %v; want no code with an error", code, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r\x1b\x00") {
				t.Fatalf("error has control characters: %q", err.Error())
			}
			return
		}
		if code == "" || q.Get("state") != "s1" || q.Has("error") && q.Get("error") != "" {
			t.Fatalf("VerifyAuthResponse(%q) = %q; want an error", raw, code)
		}
		if iss, ok := q["iss"]; (ok && (len(iss) != 1 || iss[0] != testIssuer)) || (!ok && required) {
			t.Fatalf("VerifyAuthResponse(%q) = %q with iss %q; want an error", raw, code, iss)
		}
	})
}
