package dpop

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	internalhtu "github.com/dpopkit/dpop/internal/htu"
	"golang.org/x/net/idna"
)

// origin identifies a server for nonce and token purposes (RFC 9449 §8,
// §9; RFC 6454): the scheme and host of a URL, lower-case, an
// internationalized host name in its ASCII (punycode) form as net/http
// sends it, the port kept only when it is not the scheme's default and
// without leading zeros (the form of internal/htu, which the verifiers
// compare), and the zone of an IPv6 link-local literal. Its fields are canonical, so it
// compares with ==.
type origin struct {
	scheme, host string
	// zone is the zone of an IPv6 literal ("eth0" of "[fe80::1%eth0]"):
	// net/http never sends it (the htu leaves it out too), but addresses in
	// different zones are different servers.
	zone string
}

// originOf returns the origin of a request to u whose Host header is host
// (empty means u.Host); checkURL has accepted both. It allocates only when
// the scheme or host has upper-case letters, or the host is not ASCII.
func originOf(u *url.URL, host string) origin {
	if host == "" {
		host = u.Host
	}
	scheme := lowerASCII(u.Scheme)
	host, zone := splitZone(host)
	host = lowerASCII(asciiHost(host))
	// The normal form the verifiers compare (RFC 3986 §6.2.3): an empty or
	// default port dropped, a port's leading zeros too. Host accepts every
	// host checkURL does; the fallback is for the callers that compare
	// origins of URLs not checked (a redirect's).
	if h, err := internalhtu.Host(scheme, host); err == nil {
		host = h
	} else {
		switch {
		case strings.HasSuffix(host, ":"):
			host = host[:len(host)-1]
		case scheme == "http" && strings.HasSuffix(host, ":80"):
			host = host[:len(host)-3]
		case scheme == "https" && strings.HasSuffix(host, ":443"):
			host = host[:len(host)-4]
		}
	}
	return origin{scheme, host, zone}
}

// appendHTU appends the htu claim for a request to u at origin o (RFC 9449
// §4.2, §4.3 point 9): scheme://host[:port] and the path as it goes on the
// wire, without query, fragment or userinfo; "/" for an empty path.
func appendHTU(dst []byte, o origin, u *url.URL) []byte {
	dst = append(dst, o.scheme...)
	dst = append(dst, "://"...)
	dst = append(dst, o.host...)
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	return append(dst, p...)
}

// htu returns the htu claim for a request to u at origin o, for traces.
func htu(o origin, u *url.URL) string {
	b := make([]byte, 0, len(o.scheme)+3+len(o.host)+max(len(u.EscapedPath()), 1))
	return string(appendHTU(b, o, u))
}

// checkURL returns an error unless u, with the Host header host (empty
// means u.Host), is a request net/http sends as it is and whose htu names
// the server it goes to: an absolute http or https URL, not opaque, with a
// valid host, and a path that is empty or starts with "/" (a path such as
// ".evil.com/x" would make the htu "http://example.com.evil.com/x").
func checkURL(u *url.URL, host string) error {
	if s := lowerASCII(u.Scheme); s != "http" && s != "https" || u.Opaque != "" {
		return errors.New("dpop: request URL is not an absolute http or https URL")
	}
	if !validHost(u.Host) {
		return fmt.Errorf("dpop: request URL host %s is not a valid host", quote(u.Host))
	}
	if host != "" && !validHost(host) {
		return fmt.Errorf("dpop: request Host %s is not a valid host", quote(host))
	}
	if p := u.EscapedPath(); p != "" && p[0] != '/' {
		return fmt.Errorf("dpop: request URL path %s does not start with /", quote(p))
	}
	return nil
}

// httpURL reports whether u is an absolute http or https URL that
// checkURL accepts.
func httpURL(u *url.URL) bool { return checkURL(u, "") == nil }

// lowerASCII returns s with ASCII letters lower-cased, allocating only when
// it has an upper-case letter.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// splitZone removes the zone of an IPv6 literal ("[fe80::1%25eth0]:443"),
// as net/http does for the Host header it sends (the server never sees
// it), and returns it apart.
func splitZone(host string) (string, string) {
	if !strings.HasPrefix(host, "[") {
		return host, ""
	}
	i := strings.LastIndex(host, "]")
	if i < 0 {
		return host, ""
	}
	j := strings.LastIndex(host[:i], "%")
	if j < 0 {
		return host, ""
	}
	return host[:j] + host[i:], host[j+1 : i]
}

// asciiHost returns host[:port] with an internationalized host name in its
// ASCII form (IDNA 2008 lookup, punycode), as net/http converts it before
// it sends the request; "" when it has no such form. An ASCII host is
// returned as it is.
func asciiHost(host string) string {
	if isASCII(host) {
		return host
	}
	if !utf8.ValidString(host) {
		return ""
	}
	name, port := host, ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		name, port = host[:i], host[i:]
	}
	a, err := idna.Lookup.ToASCII(name)
	if err != nil || !isASCII(a) {
		return ""
	}
	return a + port
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// validHost reports whether host is a plausible URI authority host[:port]
// (RFC 3986 §3.2.2): a reg-name, an IPv4 address or an IP literal in
// brackets, in the characters those may use, or an internationalized name
// that has an ASCII form. It keeps a host that would break the htu claim's
// JSON, or that net/http would refuse, out of proofs.
func validHost(host string) bool {
	host = asciiHost(host)
	if hostName(host) == "" {
		return false // "https://:443/" names no server
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:[]%", c) >= 0:
		default:
			return false
		}
	}
	// The host of the htu must be one the verifiers of this repository
	// read (internal/htu): a bracket only around an IPv6 literal, a port of
	// digits, no "%" outside a zone.
	_, err := internalhtu.Host("http", host)
	return err == nil
}

// hostName returns the name or address of host[:port] without its port
// (the inside of an IP literal's brackets), as url.URL.Hostname does.
func hostName(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.LastIndexByte(host, ']'); i >= 0 {
			return host[1:i]
		}
		return host[1:]
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		return host[:i]
	}
	return host
}

// parseOrigin returns the origin of rawURL, an absolute http(s) URL.
func parseOrigin(rawURL string) (origin, bool) {
	u, err := url.Parse(rawURL)
	if err != nil || !httpURL(u) {
		return origin{}, false
	}
	return originOf(u, ""), true
}

// firstOrigin returns the origin of the first request of a redirect chain:
// [http.Client] sets Response on each redirected request (see
// http.Request.Response), and that response's Request is the previous hop.
// A chain it cannot follow to its start (a response without its Request,
// as a nonconforming Base may return) yields ok == false: the hop is then
// treated as foreign, so the token is not sent.
func firstOrigin(req *http.Request) (o origin, ok bool) {
	for req.Response != nil {
		if req.Response.Request == nil || req.Response.Request.URL == nil {
			return origin{}, false
		}
		req = req.Response.Request
	}
	return originOf(req.URL, req.Host), true
}

// loopback reports whether host names this machine: a loopback IP address
// or "localhost" (RFC 8252 §8.3).
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// secureURL parses raw and returns an error unless it is an absolute https
// URL, or an http URL whose host is a loopback address (127.0.0.0/8, ::1 or
// localhost): traffic to a loopback address never leaves the machine, and
// a test server has no certificate. It is the one rule for every endpoint
// the SDK is told or discovers (RFC 8414 §2, RFC 9449 §11.6, FAPI 2.0
// Security Profile §5.2.2); its errors quote raw and leave the context to
// the caller.
func secureURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("empty")
	}
	u, err := url.Parse(raw)
	if err != nil || !httpURL(u) {
		return nil, fmt.Errorf("%s is not an absolute https URL", quote(raw))
	}
	if lowerASCII(u.Scheme) != "https" && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("%s is not https (plain http is allowed on loopback addresses only)", quote(raw))
	}
	return u, nil
}

// String returns the origin as scheme://host[:port], for traces.
func (o origin) String() string { return o.scheme + "://" + o.host }
