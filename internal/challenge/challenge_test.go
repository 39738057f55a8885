package challenge

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

var parseTests = []struct {
	name   string
	values []string
	want   []Challenge
}{
	{
		name:   "RFC 9449 nonce challenge",
		values: []string{`DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`},
		want: []Challenge{{Scheme: "DPoP", Params: map[string]string{
			"error":             "use_dpop_nonce",
			"error_description": "Resource server requires nonce in DPoP proof",
		}}},
	},
	{
		name:   "lower-case scheme kept as sent",
		values: []string{`dpop error="invalid_token"`},
		want:   []Challenge{{Scheme: "dpop", Params: map[string]string{"error": "invalid_token"}}},
	},
	{
		name:   "upper-case scheme kept as sent",
		values: []string{`DPOP error="invalid_token"`},
		want:   []Challenge{{Scheme: "DPOP", Params: map[string]string{"error": "invalid_token"}}},
	},
	{
		name:   "param names lower-cased",
		values: []string{`DPoP ERROR="x", Error_Description="Y", aLgS="ES256"`},
		want: []Challenge{{Scheme: "DPoP", Params: map[string]string{
			"error": "x", "error_description": "Y", "algs": "ES256",
		}}},
	},
	{
		name:   "several challenges",
		values: []string{`Bearer realm="x", DPoP algs="ES256 PS256", error="invalid_token"`},
		want: []Challenge{
			{Scheme: "Bearer", Params: map[string]string{"realm": "x"}},
			{Scheme: "DPoP", Params: map[string]string{"algs": "ES256 PS256", "error": "invalid_token"}},
		},
	},
	{
		name:   "RFC 9110 section 11.6.1 example",
		values: []string{`Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple"`},
		want: []Challenge{
			{Scheme: "Newauth", Params: map[string]string{"realm": "apps", "type": "1", "title": `Login to "apps"`}},
			{Scheme: "Basic", Params: map[string]string{"realm": "simple"}},
		},
	},
	{
		name:   "several field values",
		values: []string{`Bearer realm="api"`, `DPoP algs="ES256", error="use_dpop_nonce"`, `Basic`},
		want: []Challenge{
			{Scheme: "Bearer", Params: map[string]string{"realm": "api"}},
			{Scheme: "DPoP", Params: map[string]string{"algs": "ES256", "error": "use_dpop_nonce"}},
			{Scheme: "Basic"},
		},
	},
	{
		name:   "empty field values",
		values: []string{"", " ", ",", `DPoP error=x`, ""},
		want:   []Challenge{{Scheme: "DPoP", Params: map[string]string{"error": "x"}}},
	},
	{
		name:   "no field values",
		values: nil,
		want:   nil,
	},
	{
		name:   "quoted-pair escapes",
		values: []string{`DPoP error_description="a \"quoted\" word, a back\\slash, an \e\s\c\a\p\e\d text, a tab\	"`},
		want: []Challenge{{Scheme: "DPoP", Params: map[string]string{
			"error_description": "a \"quoted\" word, a back\\slash, an escaped text, a tab\t",
		}}},
	},
	{
		name:   "escaped quote at both ends",
		values: []string{`DPoP a="\"", b="\\", c="\"x\""`},
		want:   []Challenge{{Scheme: "DPoP", Params: map[string]string{"a": `"`, "b": `\`, "c": `"x"`}}},
	},
	{
		name:   "quoted-string with separators and obs-text",
		values: []string{"DPoP a=\"x, y=z; \t(){}<>@:/[]?= é\x80\", b=\"\""},
		want:   []Challenge{{Scheme: "DPoP", Params: map[string]string{"a": "x, y=z; \t(){}<>@:/[]?= é\x80", "b": ""}}},
	},
	{
		name:   "token values",
		values: []string{"DPoP error=invalid_token, max_age=300, x=!#$%&'*+-.^_`|~09azAZ"},
		want: []Challenge{{Scheme: "DPoP", Params: map[string]string{
			"error": "invalid_token", "max_age": "300", "x": "!#$%&'*+-.^_`|~09azAZ",
		}}},
	},
	{
		name:   "token68",
		values: []string{`Basic dXNlcjpwYXNz==`},
		want:   []Challenge{{Scheme: "Basic", Token68: "dXNlcjpwYXNz=="}},
	},
	{
		name:   "token68 with every token68 char",
		values: []string{`Negotiate aZ09-._~+/=`},
		want:   []Challenge{{Scheme: "Negotiate", Token68: "aZ09-._~+/="}},
	},
	{
		name:   "token68 without padding",
		values: []string{`Negotiate YIIB`},
		want:   []Challenge{{Scheme: "Negotiate", Token68: "YIIB"}},
	},
	{
		// RFC 9110 §11.2: a lone token (with or without trailing '=')
		// after the scheme is a token68, not a valueless auth-param.
		name:   "lone token is a token68",
		values: []string{`DPoP error`, `Bearer error= `},
		want:   []Challenge{{Scheme: "DPoP", Token68: "error"}, {Scheme: "Bearer", Token68: "error="}},
	},
	{
		name:   "token68 then another challenge",
		values: []string{`Basic dXNlcjpwYXNz== , DPoP algs="ES256"`},
		want: []Challenge{
			{Scheme: "Basic", Token68: "dXNlcjpwYXNz=="},
			{Scheme: "DPoP", Params: map[string]string{"algs": "ES256"}},
		},
	},
	{
		name:   "params then a token68 challenge",
		values: []string{`DPoP error="invalid_token", Basic dXNlcjpwYXNz==`},
		want: []Challenge{
			{Scheme: "DPoP", Params: map[string]string{"error": "invalid_token"}},
			{Scheme: "Basic", Token68: "dXNlcjpwYXNz=="},
		},
	},
	{
		name:   "empty list elements",
		values: []string{`, , DPoP error=x`},
		want:   []Challenge{{Scheme: "DPoP", Params: map[string]string{"error": "x"}}},
	},
	{
		name:   "empty list elements everywhere",
		values: []string{`,Bearer realm="a",, ,DPoP error=x,,  ,algs="ES256" , ,`},
		want: []Challenge{
			{Scheme: "Bearer", Params: map[string]string{"realm": "a"}},
			{Scheme: "DPoP", Params: map[string]string{"error": "x", "algs": "ES256"}},
		},
	},
	{
		name:   "tabs around list separators",
		values: []string{"\t,\tBearer realm=a\t,\tDPoP error=x\t,\t,\talgs=y\t,\tBasic\t"},
		want: []Challenge{
			{Scheme: "Bearer", Params: map[string]string{"realm": "a"}},
			{Scheme: "DPoP", Params: map[string]string{"error": "x", "algs": "y"}},
			{Scheme: "Basic"},
		},
	},
	{
		name:   "scheme alone",
		values: []string{`DPoP`},
		want:   []Challenge{{Scheme: "DPoP"}},
	},
	{
		name:   "scheme alone with trailing whitespace",
		values: []string{"DPoP \t"},
		want:   []Challenge{{Scheme: "DPoP"}},
	},
	{
		name:   "schemes alone",
		values: []string{`DPoP, Bearer,Basic`},
		want:   []Challenge{{Scheme: "DPoP"}, {Scheme: "Bearer"}, {Scheme: "Basic"}},
	},
	{
		name:   "scheme alone, space before the comma",
		values: []string{"Bearer , DPoP error=x", "Basic\t,Newauth"},
		want: []Challenge{
			{Scheme: "Bearer"},
			{Scheme: "DPoP", Params: map[string]string{"error": "x"}},
			{Scheme: "Basic"},
			{Scheme: "Newauth"},
		},
	},
	{
		name:   "empty element before the first param",
		values: []string{`DPoP , error="use_dpop_nonce"`},
		want:   []Challenge{{Scheme: "DPoP", Params: map[string]string{"error": "use_dpop_nonce"}}},
	},
	{
		name:   "params then a scheme alone",
		values: []string{`Bearer realm="x", DPoP`},
		want: []Challenge{
			{Scheme: "Bearer", Params: map[string]string{"realm": "x"}},
			{Scheme: "DPoP"},
		},
	},
	{
		name:   "params then a scheme alone then params",
		values: []string{`Bearer realm="x", DPoP, Basic realm="y"`},
		want: []Challenge{
			{Scheme: "Bearer", Params: map[string]string{"realm": "x"}},
			{Scheme: "DPoP"},
			{Scheme: "Basic", Params: map[string]string{"realm": "y"}},
		},
	},
	{
		name:   "whitespace around equals",
		values: []string{"DPoP error = \"use_dpop_nonce\", algs\t=\tES256 ,  realm= x"},
		want: []Challenge{{Scheme: "DPoP", Params: map[string]string{
			"error": "use_dpop_nonce", "algs": "ES256", "realm": "x",
		}}},
	},
	{
		name:   "whitespace after scheme",
		values: []string{"DPoP \t  error=x"},
		want:   []Challenge{{Scheme: "DPoP", Params: map[string]string{"error": "x"}}},
	},
	{
		name:   "tab after scheme",
		values: []string{"DPoP\terror=x"},
		want:   []Challenge{{Scheme: "DPoP", Params: map[string]string{"error": "x"}}},
	},
	{
		name:   "same param in different challenges",
		values: []string{`DPoP error=a, Bearer error=b`},
		want: []Challenge{
			{Scheme: "DPoP", Params: map[string]string{"error": "a"}},
			{Scheme: "Bearer", Params: map[string]string{"error": "b"}},
		},
	},
	{
		name:   "same scheme twice",
		values: []string{`DPoP algs="ES256"`, `dpop error="invalid_token"`},
		want: []Challenge{
			{Scheme: "DPoP", Params: map[string]string{"algs": "ES256"}},
			{Scheme: "dpop", Params: map[string]string{"error": "invalid_token"}},
		},
	},
	{
		name:   "64 items",
		values: []string{strings.Repeat("A, ", 63) + "B"},
		want:   append(slices.Repeat([]Challenge{{Scheme: "A"}}, 63), Challenge{Scheme: "B"}),
	},
	{
		name:   "64 items as scheme and params",
		values: []string{"DPoP " + params(63)},
		want:   []Challenge{{Scheme: "DPoP", Params: paramMap(63)}},
	},
}

// params returns n auth-params p0=0, p1=1, ….
func params(n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprintf("p%d=%d", i, i)
	}
	return strings.Join(ps, ", ")
}

func paramMap(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("p%d", i)] = fmt.Sprint(i)
	}
	return m
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.values)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.values, err)
			}
			if !equalChallenges(got, tt.want) {
				t.Errorf("Parse(%q) = %+v; want %+v", tt.values, got, tt.want)
			}
		})
	}
}

// equalChallenges compares challenges, treating nil and empty Params alike.
func equalChallenges(a, b []Challenge) bool {
	return slices.EqualFunc(a, b, func(x, y Challenge) bool {
		return x.Scheme == y.Scheme && x.Token68 == y.Token68 && maps.Equal(x.Params, y.Params)
	})
}

var parseErrorTests = []struct {
	name   string
	values []string
}{
	{"unterminated quote", []string{`DPoP error="use_dpop_nonce`}},
	{"unterminated quote after escape", []string{`DPoP error="x\"`}},
	{"backslash at end", []string{`DPoP error="x\`}},
	{"lone quote", []string{`DPoP error="`}},
	{"NUL in quoted string", []string{"DPoP error=\"a\x00b\""}},
	{"newline in quoted string", []string{"DPoP error=\"a\nb\""}},
	{"CR in quoted string", []string{"DPoP error=\"a\rb\""}},
	{"DEL in quoted string", []string{"DPoP error=\"a\x7fb\""}},
	{"escaped control char", []string{"DPoP error=\"a\\\x01b\""}},
	{"escaped DEL", []string{"DPoP error=\"a\\\x7fb\""}},
	{"repeated param", []string{`DPoP error="a", error="b"`}},
	{"repeated param differing in case", []string{`DPoP error="a", ERROR="b"`}},
	{"repeated param, token and quoted", []string{`DPoP algs=ES256, realm=x, Algs="ES256"`}},
	{"param without value", []string{`DPoP error "x"`}},
	{"param without equals", []string{`DPoP error x`}},
	{"param without value, then params", []string{`DPoP error, algs="ES256"`}},
	{"param with empty value before comma", []string{`DPoP error=, algs=x`}},
	{"param with empty value, then a param", []string{`DPoP error= algs=x`}},
	{"second param with empty value at end", []string{`DPoP algs=x, error=`}},
	{"second param with equals then spaces", []string{`DPoP algs=x, error=  `}},
	{"second param with empty value before comma", []string{`DPoP algs=x, error=, realm=y`}},
	{"two values", []string{`DPoP error="a" "b"`}},
	{"token then quoted value", []string{`DPoP error=a"b"`}},
	{"missing comma between params", []string{`DPoP error="a" algs="b"`}},
	{"semicolon separator", []string{`DPoP error="a"; algs="b"`}},
	{"value is not a token", []string{`DPoP error=@`}},
	{"param name is not a token", []string{`DPoP "error"="a"`}},
	{"leading garbage", []string{`@DPoP`}},
	{"leading equals", []string{`=DPoP`}},
	{"quoted scheme", []string{`"DPoP" error=x`}},
	{"garbage after scheme", []string{`DPoP@ error=x`}},
	{"scheme then equals", []string{`DPoP=x`}},
	{"garbage in param list", []string{`DPoP error=x, (comment)`}},
	{"non-ASCII scheme", []string{"DPöP error=x"}},
	{"control char outside quotes", []string{"DPoP\x00error=x"}},
	{"newline between challenges", []string{"DPoP error=x\nBearer"}},
	{"invalid second field value", []string{`DPoP error=x`, `"`}},
	{"65 challenges", []string{strings.Repeat("A, ", 64) + "B"}},
	{"65 challenges over several values", slices.Repeat([]string{"A, B, C, D, E"}, 13)},
	{"scheme and 64 params", []string{"DPoP " + params(64)}},
	{"many params in many challenges", []string{"A " + params(40), "B " + params(40)}},
}

func TestParseErrors(t *testing.T) {
	for _, tt := range parseErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.values)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v; want an error", tt.values, got)
			}
			if got != nil {
				t.Errorf("Parse(%q) = %+v, %v; want nil challenges with the error", tt.values, got, err)
			}
		})
	}
}

func TestParseTooManyIsErrTooMany(t *testing.T) {
	values := []string{strings.Repeat("DPoP, ", 10000)}
	_, err := Parse(values)
	if !errors.Is(err, errTooMany) {
		t.Errorf("Parse(10000 challenges) error = %v; want %v", err, errTooMany)
	}
}

func TestParseErrorMessage(t *testing.T) {
	_, err := Parse([]string{`DPoP error="a", error="b"`})
	if err == nil {
		t.Fatal("Parse of a repeated param: no error")
	}
	if got, want := err.Error(), `"error"`; !strings.Contains(got, want) {
		t.Errorf("Parse error = %q; want it to name %s", got, want)
	}
}

func TestFind(t *testing.T) {
	cs, err := Parse([]string{
		`Bearer realm="api"`,
		`dpop algs="ES256"`,
		`DPoP error="use_dpop_nonce"`,
		`Basic dXNlcjpwYXNz`,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		scheme string
		ok     bool
		want   Challenge
	}{
		{"DPoP", true, Challenge{Scheme: "dpop", Params: map[string]string{"algs": "ES256"}}},
		{"dpop", true, Challenge{Scheme: "dpop", Params: map[string]string{"algs": "ES256"}}},
		{"DPOP", true, Challenge{Scheme: "dpop", Params: map[string]string{"algs": "ES256"}}},
		{"bearer", true, Challenge{Scheme: "Bearer", Params: map[string]string{"realm": "api"}}},
		{"BASIC", true, Challenge{Scheme: "Basic", Token68: "dXNlcjpwYXNz"}},
		{"Digest", false, Challenge{}},
		{"DPo", false, Challenge{}},
		{"DPoP ", false, Challenge{}},
		{"", false, Challenge{}},
	}
	for _, tt := range tests {
		t.Run(tt.scheme, func(t *testing.T) {
			got, ok := Find(cs, tt.scheme)
			if ok != tt.ok {
				t.Fatalf("Find(%q) ok = %v; want %v", tt.scheme, ok, tt.ok)
			}
			if !equalChallenges([]Challenge{got}, []Challenge{tt.want}) {
				t.Errorf("Find(%q) = %+v; want %+v", tt.scheme, got, tt.want)
			}
		})
	}
	if _, ok := Find(nil, "DPoP"); ok {
		t.Errorf("Find(nil, %q) ok = true; want false", "DPoP")
	}
}

func FuzzParse(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(strings.Join(tt.values, "\n"))
	}
	for _, tt := range parseErrorTests {
		f.Add(strings.Join(tt.values, "\n"))
	}
	f.Fuzz(func(t *testing.T, s string) {
		// A newline splits the input into several field values, so the
		// fuzzer also explores lists of fields.
		values := strings.Split(s, "\n")
		cs, err := Parse(values)
		if err != nil {
			if cs != nil {
				t.Fatalf("Parse(%q) = %+v, %v; want nil challenges with the error", values, cs, err)
			}
			return
		}
		items := 0
		for _, c := range cs {
			items += 1 + len(c.Params)
			if c.Scheme == "" {
				t.Fatalf("Parse(%q) = %+v; empty scheme", values, cs)
			}
			for i := range len(c.Scheme) {
				if !isTcharRef(c.Scheme[i]) {
					t.Fatalf("Parse(%q): scheme %q has non-tchar %q", values, c.Scheme, c.Scheme[i])
				}
			}
			if c.Token68 != "" && c.Params != nil {
				t.Fatalf("Parse(%q): challenge %+v has both token68 and params", values, c)
			}
			for name := range c.Params {
				if name == "" {
					t.Fatalf("Parse(%q): challenge %+v has an empty param name", values, c)
				}
				if name != strings.ToLower(name) {
					t.Fatalf("Parse(%q): param name %q is not lower-case", values, name)
				}
				for i := range len(name) {
					if !isTcharRef(name[i]) {
						t.Fatalf("Parse(%q): param name %q has non-tchar %q", values, name, name[i])
					}
				}
			}
			if !strings.Contains(strings.ToLower(s), strings.ToLower(c.Scheme)) {
				t.Fatalf("Parse(%q): scheme %q is not in the input", values, c.Scheme)
			}
		}
		if items > maxItems {
			t.Fatalf("Parse(%q) returned %d items; want at most %d", values, items, maxItems)
		}
	})
}

// isTcharRef is the tchar set of RFC 9110 §5.6.2, written out independently
// of the code under test.
func isTcharRef(c byte) bool {
	return c < 0x80 && strings.IndexByte(
		"!#$%&'*+-.^_`|~0123456789"+
			"abcdefghijklmnopqrstuvwxyz"+
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ", c) >= 0
}

// TestFindScheme: a DPoP challenge is found even when another challenge in
// the same field is malformed, but never inside another challenge's text.
func TestFindScheme(t *testing.T) {
	tests := []struct {
		values []string
		want   string // the error param, or "" for not found
	}{
		{[]string{`DPoP error="use_dpop_nonce"`}, "use_dpop_nonce"},
		{[]string{`Bearer realm="a", realm="b", DPoP error="use_dpop_nonce"`}, "use_dpop_nonce"},
		{[]string{`Basic realm=My API, DPoP error=use_dpop_nonce, algs="ES256"`}, "use_dpop_nonce"},
		{[]string{`Bearer realm="x"`, `dpop ERROR=invalid_token`}, "invalid_token"},
		{[]string{`Bearer realm="DPoP error=x", foo=`}, ""},
		{[]string{`Bearer error="x"DPoP error=y`}, ""},
		{[]string{`Bearer realm="x"`}, ""},
		{[]string{`DPoP error="unterminated`}, ""},
	}
	for _, tt := range tests {
		c, ok := FindScheme(tt.values, "DPoP")
		if got := c.Params["error"]; ok != (tt.want != "") || got != tt.want {
			t.Errorf("FindScheme(%q) = %v, %v; want error=%q", tt.values, c, ok, tt.want)
		}
	}
}
