// Package htu normalises the htu claim of DPoP proofs and the URLs it is
// compared with (RFC 9449 §4.3 point 9). It is the one normalisation of the
// repository: the resource server compares with it, and the strict test
// server (dpoptest) through the resource server's checks; the client
// writes the host of its htu with [Host], and its tests check that every
// htu it makes agrees with [Normalize], so that what one side sends the
// other reads the same way.
//
// It exists for internal use only.
package htu

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// Normalize returns the normal form of rawURL, an absolute http or https
// URL, for comparing an htu claim with the URL a request was sent to
// (RFC 9449 §4.3 point 9): "scheme://host[:port]/path", the query and the
// fragment dropped, after the syntax-based and scheme-based normalisations
// of RFC 3986 §6.2.2 and §6.2.3:
//
//   - the scheme and the host in lower case (§6.2.2.1), an
//     internationalised host name in its ASCII form (the form HTTP
//     clients send, RFC 5891 §4), the zone of an IPv6 literal dropped (it
//     is never sent on the wire, RFC 6874 §4);
//   - the hexadecimal digits of percent-encodings in upper case
//     (§6.2.2.1), percent-encoded unreserved characters decoded
//     (§6.2.2.2), and the bytes a URI cannot hold as they are
//     percent-encoded in UTF-8 (RFC 3987 §3.1), as HTTP clients send them;
//   - dot segments removed from the path (§6.2.2.3, §5.2.4);
//   - the scheme's default port and an empty port dropped, an empty path
//     made "/" (§6.2.3).
//
// Reserved characters keep their form: "/a%2Fb" and "/a/b" differ. A URL
// with userinfo, without a host, or with a malformed percent-encoding or
// port is an error. The result of a URL already in normal form is rawURL
// itself without its query and fragment, and costs no allocation.
func Normalize(rawURL string) (string, error) {
	end := len(rawURL)
	if i := strings.IndexAny(rawURL, "?#"); i >= 0 {
		end = i
	}
	s := rawURL[:end]
	i := strings.Index(s, "://")
	if i < 0 {
		return "", errors.New("not an absolute URL")
	}
	scheme := s[:i]
	lower := strings.ToLower(scheme) // allocates only for an upper-case scheme
	if lower != "http" && lower != "https" {
		return "", errors.New("not an http or https URL")
	}
	rest := s[i+3:]
	authority, path := rest, ""
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		authority, path = rest[:j], rest[j:]
	}
	host, err := normalHost(lower, authority)
	if err != nil {
		return "", err
	}
	np, err := normalPath(path)
	if err != nil {
		return "", err
	}
	if scheme == lower && host == authority && np == path {
		return s, nil
	}
	return lower + "://" + host + np, nil
}

// Host returns the normal form of authority, the host[:port] of a URL of
// scheme "http" or "https", as [Normalize] writes it, or an error saying
// why Normalize would refuse a URL with this authority. It costs no
// allocation for an authority already in normal form. The client checks
// with it that the host of every htu it signs is one a verifier reads.
func Host(scheme, authority string) (string, error) { return normalHost(scheme, authority) }

// normalHost returns the normal form of authority, host[:port], for a URL
// of the lower-case scheme.
func normalHost(scheme, authority string) (string, error) {
	if strings.IndexByte(authority, '@') >= 0 {
		return "", errors.New("URL has userinfo")
	}
	host, port := authority, ""
	if strings.HasPrefix(authority, "[") {
		j := strings.IndexByte(authority, ']')
		if j < 0 {
			return "", errors.New("unclosed IP literal")
		}
		host, port = authority[:j+1], authority[j+1:]
		if port != "" && port[0] != ':' {
			return "", errors.New("malformed host")
		}
	} else if j := strings.LastIndexByte(authority, ':'); j >= 0 {
		host, port = authority[:j], authority[j:]
	}
	if port != "" {
		port = port[1:]
		if port != "" {
			n, err := strconv.ParseUint(port, 10, 16)
			if err != nil {
				return "", errors.New("malformed port")
			}
			switch {
			case scheme == "http" && n == 80, scheme == "https" && n == 443:
				port = ""
			case port[0] == '0':
				port = strconv.FormatUint(n, 10) // leading zeros
			}
		}
	}
	h, err := normalHostName(host)
	if err != nil {
		return "", err
	}
	if port == "" {
		return h, nil
	}
	if len(authority) == len(h)+1+len(port) && authority[:len(h)] == h && authority[len(h)+1:] == port {
		return authority, nil
	}
	return h + ":" + port, nil
}

// normalHostName returns host, a reg-name, an IPv4 address or an IP literal
// in brackets, in lower case: an internationalised name in its ASCII form,
// an IPv6 zone dropped.
func normalHostName(host string) (string, error) {
	if host == "" {
		return "", errors.New("URL has no host")
	}
	if host[0] == '[' {
		inner := host[1 : len(host)-1]
		if z := strings.IndexByte(inner, '%'); z >= 0 {
			inner = inner[:z] // the zone, "%25eth0" (RFC 6874 §2) or "%eth0"
		}
		if a, err := netip.ParseAddr(inner); err != nil || !a.Is6() {
			return "", errors.New("malformed IP literal")
		}
		if len(inner) == len(host)-2 && strings.ToLower(inner) == inner {
			return host, nil
		}
		return "[" + strings.ToLower(inner) + "]", nil
	}
	ascii := true
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case c >= 0x80:
			ascii = false
		case isUnreserved(c) || strings.IndexByte("!$&'()*+,;=", c) >= 0:
		default:
			// '%' too: no HTTP client percent-encodes a host name.
			return "", errors.New("malformed host")
		}
	}
	if !ascii {
		a, err := idna.Lookup.ToASCII(host)
		if err != nil {
			return "", errors.New("malformed internationalised host")
		}
		return normalHostName(a)
	}
	return strings.ToLower(host), nil
}

// normalPath returns the normal form of an absolute path (or "" for none):
// percent-encodings normalised, dot segments removed, "" made "/".
func normalPath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	normal := true
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", errors.New("malformed percent-encoding in path")
			}
			if isLowerHex(p[i+1]) || isLowerHex(p[i+2]) || isUnreserved(unhex(p[i+1])<<4|unhex(p[i+2])) {
				normal = false
			}
			i += 2
		case c == '.':
			if (i == 0 || p[i-1] == '/') && (i+1 == len(p) || p[i+1] == '/' || p[i+1] == '.' && (i+2 == len(p) || p[i+2] == '/')) {
				normal = false
			}
		case !isPathByte(c):
			normal = false
		}
	}
	if normal {
		return p, nil
	}
	b := make([]byte, 0, len(p)+8)
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			if isUnreserved(d) {
				b = append(b, d)
			} else {
				b = append(b, '%', upperHex[d>>4], upperHex[d&0xf])
			}
			i += 2
		case isPathByte(c):
			b = append(b, c)
		default:
			b = append(b, '%', upperHex[c>>4], upperHex[c&0xf])
		}
	}
	return removeDotSegments(string(b)), nil
}

// removeDotSegments is the algorithm of RFC 3986 §5.2.4 for an absolute
// path.
func removeDotSegments(in string) string {
	out := make([]string, 0, strings.Count(in, "/"))
	segs := strings.Split(in[1:], "/")
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

const upperHex = "0123456789ABCDEF"

// isPathByte reports whether c may stand in a path as it is: pchar or "/"
// (RFC 3986 §3.3), without '%'.
func isPathByte(c byte) bool {
	return isUnreserved(c) || strings.IndexByte("!$&'()*+,;=:@/", c) >= 0
}

// isUnreserved reports whether c is an unreserved character (RFC 3986
// §2.3).
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isLowerHex(c byte) bool { return 'a' <= c && c <= 'f' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
