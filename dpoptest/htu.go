package dpoptest

import (
	"errors"
	"net/url"
	"strings"
)

// normalizeHTU returns the form of an htu claim or request URL that
// [Verifier.Verify] compares (RFC 9449 §4.3 point 9, RFC 3986 §6.2.2 and
// §6.2.3): "scheme://host[:port]/path" with scheme and host in lower case,
// the scheme's default port removed, an empty path replaced by "/", hex
// digits of percent-encodings in upper case, and the query and fragment
// dropped. The path is otherwise kept as sent on the wire: "/a%2Fb" and
// "/a/b" differ. Only absolute http and https URLs without userinfo are
// accepted.
func normalizeHTU(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("dpoptest: " + err.Error())
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", errors.New("dpoptest: htu " + quote(raw) + " is not an http(s) URL")
	}
	if u.User != nil || u.Host == "" || u.Opaque != "" {
		return "", errors.New("dpoptest: htu " + quote(raw) + " has no host or carries userinfo")
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" && !(scheme == "http" && p == "80") && !(scheme == "https" && p == "443") {
		host += ":" + p
	}
	// The path as written: after "scheme://authority", before '?' or '#'.
	rest := raw[strings.Index(raw, "//")+2:]
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	path := ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		path = rest[i:]
	}
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + upperPercent(path), nil
}

// upperPercent upper-cases the hex digits of percent-encodings
// (RFC 3986 §6.2.2.1).
func upperPercent(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	b := []byte(p)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1] = upper(b[i+1])
			b[i+2] = upper(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}
