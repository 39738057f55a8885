package resource

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseAuthorization(t *testing.T) {
	for _, tt := range []struct {
		vals          []string
		scheme, token string
		reason        Reason
	}{
		{[]string{"DPoP abc"}, schemeDPoP, "abc", ""},
		{[]string{"dpop  a.b-c_d~e+f/g=="}, schemeDPoP, "a.b-c_d~e+f/g==", ""},
		{[]string{"BEARER x"}, schemeBearer, "x", ""},
		{nil, "", "", ReasonMissingToken},
		{[]string{""}, "", "", ReasonMissingToken},
		{[]string{"Basic YTpi"}, "", "", ReasonScheme},
		{[]string{"DPoPx abc"}, "", "", ReasonScheme},
		{[]string{"DPoP\tabc"}, "", "", ReasonScheme},
		{[]string{"DPoP a", "DPoP b"}, "", "", ReasonMalformed},
		{[]string{"DPoP"}, "", "", ReasonMalformed},
		{[]string{"DPoP a=b"}, "", "", ReasonMalformed},
		{[]string{"DPoP =="}, "", "", ReasonMalformed},
		{[]string{"DPoP a b"}, "", "", ReasonMalformed},
		{[]string{`DPoP token="x"`}, "", "", ReasonMalformed},
		{[]string{"DPoP " + strings.Repeat("a", maxAuthorizationLen)}, "", "", ReasonTooLarge},
	} {
		scheme, token, e := parseAuthorization(tt.vals)
		got := Reason("")
		if e != nil {
			got = e.Reason
		}
		if scheme != tt.scheme || token != tt.token || got != tt.reason {
			t.Errorf("parseAuthorization(%.30q) = %q, %q, %v; want %q, %q, %s", tt.vals, scheme, token, e, tt.scheme, tt.token, tt.reason)
		}
	}
}

func TestURLParts(t *testing.T) {
	for _, tt := range []struct {
		in, path, base string
		okPath, okBase bool
	}{
		{"https://a.example/x/y?q#f", "/x/y", "https://a.example", true, true},
		{"https://a.example", "/", "https://a.example", true, true},
		{"https://a.example?q", "/", "https://a.example", true, true},
		{"/x?q", "/x", "", true, false},
		{"x", "", "", false, false},
		{"", "", "", false, false},
	} {
		p, ok := urlPath(tt.in)
		if p != tt.path || ok != tt.okPath {
			t.Errorf("urlPath(%q) = %q, %v; want %q, %v", tt.in, p, ok, tt.path, tt.okPath)
		}
		b, ok := urlBase(tt.in)
		if b != tt.base || ok != tt.okBase {
			t.Errorf("urlBase(%q) = %q, %v; want %q, %v", tt.in, b, ok, tt.base, tt.okBase)
		}
	}
}

func TestRequestPath(t *testing.T) {
	r := httptest.NewRequest("GET", "https://a.example/x/%2F/y?q=1", nil)
	if p, ok := requestPath(r); !ok || p != "/x/%2F/y" {
		t.Errorf("requestPath = %q, %v; want the path as sent", p, ok)
	}
	r.URL.Path, r.URL.RawPath = "/y", "" // as http.StripPrefix leaves it
	if p, _ := requestPath(r); p != "/x/%2F/y" {
		t.Errorf("requestPath after StripPrefix = %q; want the path as sent", p)
	}
	r.RequestURI = ""
	if p, ok := requestPath(r); !ok || p != "/y" {
		t.Errorf("requestPath of a request without RequestURI = %q, %v", p, ok)
	}
}
