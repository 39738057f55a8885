package resource

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// proxyVerifier is a Verifier without PublicURLs, trusting proxies.
func proxyVerifier(t *testing.T, proxies ...string) *Verifier {
	t.Helper()
	c := Config{Tokens: &tokenTable{}}
	for _, p := range proxies {
		c.TrustedProxies = append(c.TrustedProxies, netip.MustParsePrefix(p))
	}
	v, err := NewVerifier(c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRequestTarget(t *testing.T) {
	type hdr = map[string]string
	tests := []struct {
		name    string
		proxies []string
		remote  string
		tls     bool
		headers hdr
		uri     string
		want    string // base + path; "" for a refusal
	}{
		{name: "plain", remote: "203.0.113.5:1", want: "http://internal:8080/items"},
		{name: "TLS", remote: "203.0.113.5:1", tls: true, want: "https://internal:8080/items"},
		{name: "forwarding headers without trusted proxies", remote: "10.0.0.1:1",
			headers: hdr{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https", "Forwarded": "host=evil.example", "X-Forwarded-Prefix": "/x"},
			want:    "http://internal:8080/items"},
		{name: "untrusted peer", proxies: []string{"10.0.0.0/8"}, remote: "203.0.113.5:1",
			headers: hdr{"X-Forwarded-Host": "evil.example", "Forwarded": "host=evil.example"}, want: "http://internal:8080/items"},
		{name: "peer not an address", proxies: []string{"10.0.0.0/8"}, remote: "@",
			headers: hdr{"X-Forwarded-Host": "evil.example"}, want: "http://internal:8080/items"},
		{name: "trusted peer, X-Forwarded", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1",
			headers: hdr{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com", "X-Forwarded-For": "198.51.100.7"},
			want:    "https://api.example.com/items"},
		{name: "trusted peer, IPv4-mapped", proxies: []string{"10.0.0.0/8"}, remote: "[::ffff:10.0.0.1]:1",
			headers: hdr{"X-Forwarded-Host": "api.example.com"}, want: "http://api.example.com/items"},
		{name: "trusted IPv4-mapped prefix", proxies: []string{"::ffff:10.0.0.0/104"}, remote: "10.0.0.1:1",
			headers: hdr{"X-Forwarded-Host": "api.example.com"}, want: "http://api.example.com/items"},
		{name: "client-injected X-Forwarded-Host is skipped", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1",
			headers: hdr{"X-Forwarded-Host": "evil.example, api.example.com, internal", "X-Forwarded-Proto": "http, https, http",
				"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.0.0.2"},
			want: "https://api.example.com/items"},
		{name: "X-Forwarded-For spoofing trusted addresses further left", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1",
			headers: hdr{"X-Forwarded-Host": "evil.example, api.example.com", "X-Forwarded-For": "10.9.9.9, 198.51.100.7"},
			want:    "http://api.example.com/items"},
		{name: "one proxy that sets", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1",
			headers: hdr{"X-Forwarded-Host": "api.example.com", "X-Forwarded-For": "6.6.6.6, 198.51.100.7"},
			want:    "http://api.example.com/items"},
		{name: "X-Forwarded-Prefix", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1",
			headers: hdr{"X-Forwarded-Host": "api.example.com", "X-Forwarded-Proto": "https", "X-Forwarded-Prefix": "/v1/"},
			want:    "https://api.example.com/v1/items"},
		{name: "Forwarded", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1",
			headers: hdr{"Forwarded": `for=6.6.6.6;host=evil.example;proto=http, for="198.51.100.7:4711";proto=https;host=api.example.com, for=10.0.0.2;proto=http;host=internal`},
			want:    "https://api.example.com/items"},
		{name: "Forwarded, IPv6 and quoted host", proxies: []string{"10.0.0.0/8", "2001:db8::/32"}, remote: "10.0.0.1:1",
			headers: hdr{"Forwarded": `for=unknown;host="api.example.com:8443";proto=HTTPS, for="[2001:db8::1]:80";host=internal`},
			want:    "https://api.example.com:8443/items"},
		{name: "Forwarded on several lines", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1",
			headers: hdr{"Forwarded": "for=198.51.100.7;host=api.example.com\nfor=10.0.0.2;host=internal"},
			want:    "http://api.example.com/items"},
		{name: "Forwarded and X-Forwarded agree", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1",
			headers: hdr{"Forwarded": "host=api.example.com;proto=https", "X-Forwarded-Host": "API.example.com", "X-Forwarded-Proto": "https"},
			want:    "https://api.example.com/items"},
		{name: "Forwarded and X-Forwarded disagree", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1",
			headers: hdr{"Forwarded": "host=api.example.com", "X-Forwarded-Host": "evil.example"}},
		{name: "Forwarded malformed", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1", headers: hdr{"Forwarded": `host="unterminated`}},
		{name: "Forwarded parameter twice", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1", headers: hdr{"Forwarded": `host=a;host=b`}},
		{name: "forwarded proto ftp", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1", headers: hdr{"X-Forwarded-Proto": "ftp"}},
		{name: "forwarded host with a path", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1", headers: hdr{"X-Forwarded-Host": "evil.example/x"}},
		{name: "forwarded prefix relative", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1", headers: hdr{"X-Forwarded-Prefix": "v1"}},
		{name: "forwarded prefix with query", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1", headers: hdr{"X-Forwarded-Prefix": "/v1?x"}},
		{name: "too many hops", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1",
			headers: hdr{"X-Forwarded-Host": "a", "X-Forwarded-For": strings.Repeat("1.2.3.4,", maxForwardedHops+1)}},
		{name: "Forwarded too long", proxies: []string{"10.0.0.0/8"}, remote: "10.0.0.1:1",
			headers: hdr{"Forwarded": strings.Repeat("for=1.2.3.4,", maxForwardedHops+1)}},
		{name: "Host invalid", remote: "203.0.113.5:1", headers: hdr{"Host": "a/b"}},
		{name: "absolute-form target", remote: "203.0.113.5:1", uri: "http://internal:8080/items?q", want: "http://internal:8080/items"},
		{name: "asterisk target", remote: "203.0.113.5:1", uri: "*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := proxyVerifier(t, tt.proxies...)
			r := httptest.NewRequest("GET", "http://internal:8080/items?q=1", nil)
			r.RemoteAddr = tt.remote
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tt.uri != "" {
				r.RequestURI = tt.uri
			}
			for k, val := range tt.headers {
				if k == "Host" {
					r.Host = val
					continue
				}
				for line := range strings.SplitSeq(val, "\n") {
					r.Header.Add(k, line)
				}
			}
			tgt, e := v.requestTarget(r)
			if tt.want == "" {
				if e == nil {
					t.Fatalf("target %s; want a refusal", tgt.String())
				}
				if e.Status() != http.StatusBadRequest {
					t.Errorf("status %d; want 400", e.Status())
				}
				return
			}
			if e != nil {
				t.Fatalf("requestTarget: %v", e)
			}
			if got := tgt.String(); got != tt.want {
				t.Errorf("target = %s; want %s", got, tt.want)
			}
		})
	}
}

// TestCheckBehindProxy checks end to end that a proof made for another
// host is refused however the client names that host in forwarding
// headers, and accepted for the public URL.
func TestCheckBehindProxy(t *testing.T) {
	s := newSetup(t, "ES256", func(c *Config) {
		c.PublicURLs = nil
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	req := func(htu, remote string, headers map[string]string) *http.Request {
		c := claims(s.token)
		c["htu"] = htu
		r := s.request(s.key.proof(t, s.key.header(), c))
		r.Host = "internal:8080"
		r.RemoteAddr = remote
		for k, v := range headers {
			r.Header.Set(k, v)
		}
		return r
	}
	spoof := map[string]string{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
	if _, err := s.v.Check(req("https://evil.example/items", "203.0.113.5:1", spoof)); reasonOf(err) != ReasonHTU {
		t.Errorf("spoofed host from an untrusted peer: %v; want an htu refusal", err)
	}
	if _, err := s.v.Check(req("https://api.example.com/items", "10.0.0.1:1", map[string]string{"X-Forwarded-Host": "api.example.com", "X-Forwarded-Proto": "https"})); err != nil {
		t.Errorf("through the trusted proxy: %v", err)
	}
	if _, err := s.v.Check(req("https://internal:8080/items", "203.0.113.5:1", spoof)); err != nil { // httptest.NewRequest of an https URL sets TLS
		t.Errorf("direct request: %v", err)
	}
}

func TestNodeAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.43": "192.0.2.43", "192.0.2.43:47011": "192.0.2.43", "[2001:db8:cafe::17]:4711": "2001:db8:cafe::17",
		"[2001:db8::1]": "2001:db8::1", "2001:db8::1": "2001:db8::1", "unknown": "invalid IP", "_hidden": "invalid IP",
		"[2001:db8::1]x": "invalid IP", "fe80::1%eth0": "invalid IP", "": "invalid IP",
	} {
		if got := nodeAddr(in).String(); got != want {
			t.Errorf("nodeAddr(%q) = %s; want %s", in, got, want)
		}
	}
}

// FuzzForwarded checks that the Forwarded parser never panics, stays
// within its bounds, and that what it reads of a trusted chain is a valid
// host or an error.
func FuzzForwarded(f *testing.F) {
	for _, s := range []string{
		`for=192.0.2.60;proto=http;by=203.0.113.43`, `for="[2001:db8:cafe::17]:4711"`, `for=unknown, for=10.0.0.1;host="a:1"`,
		`host="\"q\\"`, `;;,,for=x;`, `HOST=a;Proto=https`,
	} {
		f.Add(s)
	}
	trusted := func(a netip.Addr) bool { return a.IsValid() }
	f.Fuzz(func(t *testing.T, s string) {
		elems, err := parseForwarded([]string{s})
		if err != nil {
			return
		}
		if len(elems) > maxForwardedHops {
			t.Fatalf("%d elements", len(elems))
		}
		fw, ok, err := readForwarded([]string{s}, forwarded{scheme: "http", host: "internal"}, trusted)
		if err == nil && ok && (!validHost(fw.host) || fw.scheme == "") {
			t.Fatalf("readForwarded(%q) = %+v", s, fw)
		}
	})
}
