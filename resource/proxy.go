package resource

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
)

// Bounds on the forwarding headers read from a trusted proxy.
const (
	maxForwardedLen  = 8 << 10 // bytes of each kind of header, all values together
	maxForwardedHops = 32      // elements of a Forwarded or X-Forwarded-For list
)

// requestTarget returns the public URL r must be named by: a configured
// public URL, or the one trusted proxies forwarded, or the request's own
// scheme and Host, each followed by the request path.
func (v *Verifier) requestTarget(r *http.Request) (target, *Error) {
	path, ok := requestPath(r)
	if !ok {
		return target{}, refuse(ErrorInvalidRequest, ReasonURL, errors.New("request target is not an absolute path"))
	}
	if v.bases != nil {
		return target{bases: v.bases, path: path}, nil
	}
	f := forwarded{scheme: "http", host: r.Host}
	if r.TLS != nil {
		f.scheme = "https"
	}
	if len(v.proxies) > 0 && v.trusted(peerAddr(r.RemoteAddr)) {
		if err := f.read(r.Header, v.trusted); err != nil {
			return target{}, refuse(ErrorInvalidRequest, ReasonForwarded, err)
		}
	}
	if !validHost(f.host) {
		return target{}, refuse(ErrorInvalidRequest, ReasonURL, errors.New("host "+quoteUntrusted(f.host)+" is not a valid host"))
	}
	return target{bases: []string{f.scheme + "://" + f.host + f.prefix}, path: path}, nil
}

// trusted reports whether a is the address of a trusted proxy.
func (v *Verifier) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range v.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr returns the address of an http.Request's RemoteAddr,
// "ip:port"; the zero Addr when it is not one (a Unix socket).
func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

// forwarded is the public scheme, host and path prefix of a request as
// the proxies in front of the API received it.
type forwarded struct {
	scheme, host, prefix string
}

// read updates f from the forwarding headers of h, sent by a trusted
// proxy: RFC 7239 Forwarded, or X-Forwarded-Proto, -Host and -Prefix with
// X-Forwarded-For. Each list is read from the right, the end the nearest
// proxy wrote, through the proxies trusted names, to the element the
// outermost trusted proxy wrote; what a client put further left is never
// read. When both kinds of header are present they must agree: a proxy
// passes on what a client sent in the kind it does not manage.
func (f *forwarded) read(h http.Header, trusted func(netip.Addr) bool) error {
	std, hasStd, err := readForwarded(h.Values("Forwarded"), *f, trusted)
	if err != nil {
		return err
	}
	x, hasX, err := readXForwarded(h, *f, trusted)
	if err != nil {
		return err
	}
	switch {
	case hasStd && hasX && (!strings.EqualFold(std.scheme, x.scheme) || !strings.EqualFold(std.host, x.host)):
		return errors.New("Forwarded and X-Forwarded-* name different URLs")
	case hasStd:
		*f = std
	case hasX:
		*f = x
	}
	p, err := readPrefix(h.Values("X-Forwarded-Prefix"), hopsOf(h, trusted))
	if err != nil {
		return err
	}
	f.scheme, f.prefix = strings.ToLower(f.scheme), p
	return nil
}

// readForwarded applies the Forwarded header values vals (RFC 7239) to f.
func readForwarded(vals []string, f forwarded, trusted func(netip.Addr) bool) (forwarded, bool, error) {
	if len(vals) == 0 {
		return f, false, nil
	}
	elems, err := parseForwarded(vals)
	if err != nil {
		return f, false, err
	}
	for i := len(elems) - 1; i >= 0; i-- {
		e := elems[i]
		if e.proto != "" {
			f.scheme = e.proto
		}
		if e.host != "" {
			f.host = e.host
		}
		// e was written by a trusted proxy; the element before it was
		// written by the node e names, if that one is trusted too.
		if !trusted(e.forAddr) {
			break
		}
	}
	if err := checkForwarded(f); err != nil {
		return f, false, err
	}
	return f, true, nil
}

// readXForwarded applies X-Forwarded-Proto and -Host to f. hops counts the
// trusted proxies: the value of the outermost is hops from the right.
func readXForwarded(h http.Header, f forwarded, trusted func(netip.Addr) bool) (forwarded, bool, error) {
	protos, hosts := h.Values("X-Forwarded-Proto"), h.Values("X-Forwarded-Host")
	if len(protos) == 0 && len(hosts) == 0 {
		return f, false, nil
	}
	hops := hopsOf(h, trusted)
	if hops < 0 {
		return f, false, errors.New("X-Forwarded-For list too long or malformed")
	}
	var err error
	if len(protos) > 0 {
		if f.scheme, err = listValue(protos, hops); err != nil {
			return f, false, err
		}
	}
	if len(hosts) > 0 {
		if f.host, err = listValue(hosts, hops); err != nil {
			return f, false, err
		}
	}
	if err := checkForwarded(f); err != nil {
		return f, false, err
	}
	return f, true, nil
}

// readPrefix returns the path prefix a trusted proxy removed
// (X-Forwarded-Prefix), "" when none.
func readPrefix(vals []string, hops int) (string, error) {
	if len(vals) == 0 {
		return "", nil
	}
	if hops < 0 {
		return "", errors.New("X-Forwarded-For list too long or malformed")
	}
	p, err := listValue(vals, hops)
	if err != nil {
		return "", err
	}
	p = strings.TrimRight(p, "/")
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("\"<>\\^`{|}?#", c) >= 0 {
			return "", errors.New("X-Forwarded-Prefix " + quoteUntrusted(p) + " is not a path")
		}
	}
	if p != "" && p[0] != '/' {
		return "", errors.New("X-Forwarded-Prefix " + quoteUntrusted(p) + " is not an absolute path")
	}
	return p, nil
}

// hopsOf returns how many trusted proxies the request passed: the peer,
// and each trusted address at the right end of X-Forwarded-For. It
// returns -1 for a list too long or malformed.
func hopsOf(h http.Header, trusted func(netip.Addr) bool) int {
	list, ok := splitList(h.Values("X-Forwarded-For"))
	if !ok {
		return -1
	}
	hops := 1
	for i := len(list) - 1; i >= 0 && trusted(nodeAddr(list[i])); i-- {
		hops++
	}
	return hops
}

// listValue returns the value of a comma-separated list written by the
// outermost of hops trusted proxies, each of which appended one value or
// kept the list: the hops-th from the right, or the first.
func listValue(vals []string, hops int) (string, error) {
	list, ok := splitList(vals)
	if !ok || len(list) == 0 {
		return "", errors.New("forwarding header list too long or empty")
	}
	return list[max(len(list)-hops, 0)], nil
}

// splitList splits comma-separated header values into their elements,
// without empty ones, within the bounds.
func splitList(vals []string) ([]string, bool) {
	n := 0
	for _, v := range vals {
		n += len(v)
	}
	if n > maxForwardedLen {
		return nil, false
	}
	var out []string
	for _, v := range vals {
		for part := range strings.SplitSeq(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out, len(out) <= maxForwardedHops
}

// checkForwarded checks a forwarded scheme and host.
func checkForwarded(f forwarded) error {
	f.scheme = strings.ToLower(f.scheme)
	if f.scheme != "http" && f.scheme != "https" {
		return errors.New("forwarded proto " + quoteUntrusted(f.scheme) + " is not http or https")
	}
	if !validHost(f.host) {
		return errors.New("forwarded host " + quoteUntrusted(f.host) + " is not a valid host")
	}
	return nil
}

// fwdElement is the part of a Forwarded element (RFC 7239 §4) read here.
type fwdElement struct {
	forAddr     netip.Addr // zero for "unknown", an obfuscated node or none
	proto, host string
}

// parseForwarded parses Forwarded header values (RFC 7239 §4):
// 1#forwarded-element, each element ";"-separated pairs of token "="
// (token / quoted-string). A parameter twice in an element is an error
// (§4), unknown parameters are skipped.
func parseForwarded(vals []string) ([]fwdElement, error) {
	n := 0
	for _, v := range vals {
		n += len(v)
	}
	if n > maxForwardedLen {
		return nil, errors.New("Forwarded header too long")
	}
	var elems []fwdElement
	for _, v := range vals {
		p := fwdParser{s: v}
		for {
			p.space()
			if p.done() {
				break
			}
			if p.peek() == ',' { // empty list element (RFC 9110 §5.6.1)
				p.i++
				continue
			}
			e, err := p.element()
			if err != nil {
				return nil, err
			}
			if elems = append(elems, e); len(elems) > maxForwardedHops {
				return nil, errors.New("Forwarded list too long")
			}
			p.space()
			if p.done() {
				break
			}
			if p.peek() != ',' {
				return nil, errors.New("Forwarded header malformed")
			}
			p.i++
		}
	}
	return elems, nil
}

type fwdParser struct {
	s string
	i int
}

func (p *fwdParser) done() bool { return p.i >= len(p.s) }
func (p *fwdParser) peek() byte { return p.s[p.i] }

func (p *fwdParser) space() {
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
}

func (p *fwdParser) element() (fwdElement, error) {
	var e fwdElement
	var seen [4]bool // for, by, host, proto
	for {
		p.space()
		if !p.done() && p.peek() != ',' && p.peek() != ';' {
			name := p.token()
			p.space()
			if name == "" || p.done() || p.peek() != '=' {
				return e, errors.New("Forwarded pair malformed")
			}
			p.i++
			p.space()
			value, err := p.value()
			if err != nil {
				return e, err
			}
			k := -1
			switch strings.ToLower(name) {
			case "for":
				k, e.forAddr = 0, nodeAddr(value)
			case "by":
				k = 1
			case "host":
				k, e.host = 2, value
			case "proto":
				k, e.proto = 3, value
			}
			if k >= 0 {
				if seen[k] {
					return e, errors.New("Forwarded parameter " + quoteUntrusted(name) + " twice in an element")
				}
				seen[k] = true
			}
		}
		p.space()
		if p.done() || p.peek() == ',' {
			return e, nil
		}
		if p.peek() != ';' {
			return e, errors.New("Forwarded element malformed")
		}
		p.i++
	}
}

// token reads a token (RFC 9110 §5.6.2).
func (p *fwdParser) token() string {
	start := p.i
	for !p.done() && isTokenChar(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

// value reads a token or a quoted-string (RFC 9110 §5.6.4).
func (p *fwdParser) value() (string, error) {
	if p.done() || p.peek() != '"' {
		if t := p.token(); t != "" {
			return t, nil
		}
		return "", errors.New("Forwarded value malformed")
	}
	p.i++
	var b strings.Builder
	for !p.done() {
		c := p.peek()
		p.i++
		switch {
		case c == '"':
			return b.String(), nil
		case c == '\\':
			if p.done() {
				return "", errors.New("Forwarded quoted-string unterminated")
			}
			b.WriteByte(p.peek())
			p.i++
		case c == '\t' || c >= ' ' && c != 0x7f:
			b.WriteByte(c)
		default:
			return "", errors.New("Forwarded quoted-string has a control character")
		}
	}
	return "", errors.New("Forwarded quoted-string unterminated")
}

func isTokenChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// nodeAddr returns the IP address of a node of Forwarded's for parameter
// (RFC 7239 §6: "192.0.2.43", "192.0.2.43:47011", "[2001:db8::17]:4711")
// or of an X-Forwarded-For entry; the zero Addr for "unknown", an
// obfuscated name or anything else.
func nodeAddr(node string) netip.Addr {
	if strings.HasPrefix(node, "[") {
		end := strings.IndexByte(node, ']')
		if end < 0 || end+1 < len(node) && node[end+1] != ':' {
			return netip.Addr{}
		}
		node = node[1:end]
	} else if strings.Count(node, ":") == 1 {
		node = node[:strings.IndexByte(node, ':')]
	}
	a, err := netip.ParseAddr(node)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}
	}
	return a
}

// validHost reports whether host is a URI host[:port] (RFC 3986 §3.2.2):
// a reg-name or IPv4 address of the characters those use, or an IP
// literal in brackets, with an optional port.
func validHost(host string) bool {
	if host == "" || host[0] == ':' {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~!$&'()*+,;=:[]", c) >= 0) {
			return false
		}
	}
	return true
}
