package htu

import (
	"net/url"
	"strings"
	"testing"
)

// TestNormalizeRFC3986 checks the equivalences RFC 3986 §6 names, with its
// own examples where it gives them (in the http scheme where the RFC uses
// "example:").
func TestNormalizeRFC3986(t *testing.T) {
	tests := []struct {
		section string
		a, b    string
	}{
		// §6.2.2: "example://a/b/c/%7Bfoo%7D" and "eXAMPLE://a/./b/../b/%63/%7bfoo%7d".
		{"6.2.2", "http://a/b/c/%7Bfoo%7D", "hTTP://a/./b/../b/%63/%7bfoo%7d"},
		// §6.2.2.1: scheme and host are case-insensitive, percent-encoding hex digits too.
		{"6.2.2.1", "http://www.example.com/", "HTTP://www.Example.com/"},
		{"6.2.2.1", "http://example.com/a%3Ab", "http://example.com/a%3ab"},
		// §6.2.2.2: percent-encoded unreserved characters are decoded.
		{"6.2.2.2", "http://example.com/~user", "http://example.com/%7Euser"},
		{"6.2.2.2", "http://example.com/a-b_c.d", "http://example.com/%61%2D%62%5F%63%2E%64"},
		// §6.2.2.3 with the examples of §5.2.4.
		{"6.2.2.3", "http://example.com/a/g", "http://example.com/a/b/c/./../../g"},
		{"6.2.2.3", "http://example.com/", "http://example.com/.."},
		{"6.2.2.3", "http://example.com/a/", "http://example.com/a/b/.."},
		{"6.2.2.3", "http://example.com/a/", "http://example.com/a/."},
		{"6.2.2.3", "http://example.com/b", "http://example.com/a/%2E%2E/b"},
		// §6.2.3: its four equivalent forms.
		{"6.2.3", "http://example.com/", "http://example.com"},
		{"6.2.3", "http://example.com/", "http://example.com:/"},
		{"6.2.3", "http://example.com/", "http://example.com:80/"},
		{"6.2.3", "https://example.com/", "https://example.com:443"},
		// RFC 9449 §4.3 point 9: query and fragment ignored.
		{"9449", "https://example.com/p", "https://example.com/p?q=1#f"},
		{"9449", "https://example.com/", "https://example.com?q"},
		{"9449", "https://example.com/", "https://example.com#f"},
		// RFC 3987 §3.1: an IRI's non-ASCII characters as UTF-8 percent-encodings.
		{"3987", "https://example.com/caf%C3%A9", "https://example.com/café"},
		{"3987", "https://xn--caf-dma.example/", "https://café.example/"},
		// RFC 6874: the zone is never sent.
		{"6874", "http://[fe80::1]:8080/", "http://[FE80::1%25eth0]:8080/"},
	}
	for _, tt := range tests {
		na, err := Normalize(tt.a)
		if err != nil {
			t.Errorf("§%s: Normalize(%q): %v", tt.section, tt.a, err)
			continue
		}
		nb, err := Normalize(tt.b)
		if err != nil {
			t.Errorf("§%s: Normalize(%q): %v", tt.section, tt.b, err)
			continue
		}
		if na != nb {
			t.Errorf("§%s: Normalize(%q) = %q, Normalize(%q) = %q; want equal", tt.section, tt.a, na, tt.b, nb)
		}
		if na != tt.a && tt.section != "9449" {
			t.Errorf("§%s: Normalize(%q) = %q; want it unchanged (normal form)", tt.section, tt.a, na)
		}
	}
}

// TestNormalizeDistinct checks URLs that must stay apart.
func TestNormalizeDistinct(t *testing.T) {
	tests := []struct{ a, b string }{
		{"http://example.com/a%2Fb", "http://example.com/a/b"}, // reserved stays encoded (§2.2)
		{"http://example.com/a%3Fb", "http://example.com/a?b"},
		{"http://example.com/Items", "http://example.com/items"}, // the path is case-sensitive
		{"http://example.com/", "https://example.com/"},
		{"https://example.com:8443/", "https://example.com/"},
		{"http://example.com:443/", "http://example.com/"},
		{"http://example.com//a", "http://example.com/a"},
		{"http://example.com/a/", "http://example.com/a"},
		{"http://a.example/", "http://b.example/"},
		{"http://[::1]/", "http://[::2]/"},
	}
	for _, tt := range tests {
		na, err1 := Normalize(tt.a)
		nb, err2 := Normalize(tt.b)
		if err1 != nil || err2 != nil {
			t.Errorf("Normalize(%q), Normalize(%q): %v, %v", tt.a, tt.b, err1, err2)
			continue
		}
		if na == nb {
			t.Errorf("Normalize(%q) = Normalize(%q) = %q; want different", tt.a, tt.b, na)
		}
	}
}

func TestNormalizeErrors(t *testing.T) {
	for _, raw := range []string{
		"", "/path", "example.com/path", "ftp://example.com/", "http:/example.com/", "http://",
		"http:///path", "http://user@example.com/", "http://u:p@example.com/", "http://example.com:x/",
		"http://example.com:65536/", "http://example.com:-1/", "http://[::1/", "http://[::1]x/",
		"http://[zz]/", "http://[1.2.3.4]/", "http://exa mple.com/", "http://exa%41mple.com/",
		"http://example.com/%", "http://example.com/%4", "http://example.com/%zz", "http://:80/",
		"http://exa\"mple.com/", "http://example.com:+80/",
	} {
		if got, err := Normalize(raw); err == nil {
			t.Errorf("Normalize(%q) = %q; want an error", raw, got)
		}
	}
}

func TestNormalizeForms(t *testing.T) {
	tests := []struct{ in, want string }{
		{"HTTPS://API.Example.COM:0443/A/b?x#y", "https://api.example.com/A/b"},
		{"http://example.com:08080/", "http://example.com:8080/"},
		{"http://example.com/a b", "http://example.com/a%20b"},
		{"http://example.com/a{b}", "http://example.com/a%7Bb%7D"},
		{"http://example.com/a[b]", "http://example.com/a%5Bb%5D"},
		{"http://example.com/%7e%2f", "http://example.com/~%2F"},
		{"http://1.2.3.4:80/x", "http://1.2.3.4/x"},
		{"http://[2001:DB8::1]/", "http://[2001:db8::1]/"},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestNormalizeNoAlloc holds the promise the verifier's hot path relies
// on: a URL already in normal form costs nothing.
func TestNormalizeNoAlloc(t *testing.T) {
	raw := "https://api.example.com:8443/v1/items/%2F~x?q=1"
	if n := testing.AllocsPerRun(100, func() { Normalize(raw) }); n != 0 {
		t.Errorf("Normalize of a normal URL: %v allocations; want 0", n)
	}
}

// TestNormalizeNetURL checks that the normal form of the URLs net/url
// parses is one net/url parses back to the same scheme, host and path: the
// normalisation never changes which resource a URL names.
func TestNormalizeNetURL(t *testing.T) {
	for _, raw := range []string{
		"https://example.com/a/./b/../c/%7Ex%2Fy", "http://EXAMPLE.com:80", "https://[::1]:443/a?b",
		"http://example.com/caf%c3%a9/", "http://example.com/a;b=c/@d:e",
	} {
		n, err := Normalize(raw)
		if err != nil {
			t.Fatalf("Normalize(%q): %v", raw, err)
		}
		u, err := url.Parse(n)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", n, err)
		}
		orig, _ := url.Parse(raw)
		if u.Hostname() != strings.ToLower(orig.Hostname()) {
			t.Errorf("host of %q = %q; want %q", n, u.Hostname(), orig.Hostname())
		}
		if u.RawQuery != "" || u.Fragment != "" {
			t.Errorf("%q kept a query or fragment", n)
		}
	}
}

// FuzzNormalize checks that Normalize never panics, that it is idempotent
// and that its output names an http(s) URL without query or fragment.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"https://example.com/a/../b?x", "HTTP://[fe80::1%25en0]:80/%7e", "https://café.example/é",
		"http://a:0/./..//%2e%2E/x#", "https://x/%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n, err := Normalize(raw)
		if err != nil {
			return
		}
		if !strings.HasPrefix(n, "http://") && !strings.HasPrefix(n, "https://") {
			t.Fatalf("Normalize(%q) = %q: not http(s)", raw, n)
		}
		if strings.ContainsAny(n, "?# ") {
			t.Fatalf("Normalize(%q) = %q: query, fragment or space kept", raw, n)
		}
		n2, err := Normalize(n)
		if err != nil || n2 != n {
			t.Fatalf("Normalize(Normalize(%q)) = %q, %v; want %q", raw, n2, err, n)
		}
	})
}
