package dpop

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// origin identifies a server for nonce purposes (RFC 9449 §8, §9): the
// scheme and host of a URL, both lower-case, the port kept only when it is
// not the scheme's default. Its fields are canonical, so it compares with ==.
type origin struct {
	scheme, host string
}

// originOf returns the origin of a request to u whose Host header is host
// (empty means u.Host). It allocates only when the URL has upper-case
// letters in its scheme or host.
func originOf(u *url.URL, host string) origin {
	if host == "" {
		host = u.Host
	}
	scheme := lowerASCII(u.Scheme)
	host = lowerASCII(removeZone(host))
	switch {
	case strings.HasSuffix(host, ":"):
		host = host[:len(host)-1] // an empty port is the default port (RFC 3986 §6.2.3)
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		host = host[:len(host)-3]
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		host = host[:len(host)-4]
	}
	return origin{scheme, host}
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

// httpURL reports whether u is an absolute http or https URL with a valid
// host.
func httpURL(u *url.URL) bool {
	s := lowerASCII(u.Scheme)
	return (s == "http" || s == "https") && validHost(u.Host) && u.Opaque == ""
}

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

// removeZone removes the zone of an IPv6 literal ("[fe80::1%eth0]:443"), as
// net/http does for the Host header it sends: the server never sees it.
func removeZone(host string) string {
	if !strings.HasPrefix(host, "[") {
		return host
	}
	i := strings.LastIndex(host, "]")
	if i < 0 {
		return host
	}
	j := strings.LastIndex(host[:i], "%")
	if j < 0 {
		return host
	}
	return host[:j] + host[i:]
}

// validHost reports whether host is a plausible URI authority host[:port]
// (RFC 3986 §3.2.2): a reg-name, an IPv4 address or an IP literal in
// brackets, in the characters those may use. It keeps a host that would
// break the htu claim's JSON, or that net/http would refuse, out of proofs.
func validHost(host string) bool {
	if host == "" {
		return false
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
	return true
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
