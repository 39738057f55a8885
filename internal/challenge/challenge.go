// Package challenge parses the WWW-Authenticate response header field of
// RFC 9110 §11.6.1: a list of challenges, each an auth-scheme followed by a
// token68 or by comma-separated auth-params.
//
// It exists for internal use only.
package challenge

import (
	"errors"
	"fmt"
	"strings"
)

// Challenge is one challenge of a WWW-Authenticate field.
type Challenge struct {
	Scheme  string            // as sent; compare with strings.EqualFold
	Token68 string            // the token68 form, when used instead of params
	Params  map[string]string // names lower-cased, values unquoted
}

// maxChallenges bounds how many challenges and params one field may carry,
// so a hostile header costs a bounded amount of work beyond its length.
const maxItems = 64

// Parse parses the values of one or more WWW-Authenticate header fields.
// Auth-param names are lower-cased (they are case-insensitive, RFC 9110
// §11.2); a name repeated within one challenge is an error.
func Parse(values []string) ([]Challenge, error) {
	var out []Challenge
	items := 0
	for _, v := range values {
		p := parser{s: v}
		for {
			p.skipListSeparators()
			if p.done() {
				break
			}
			c, err := p.challenge(&items)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// Find returns the first challenge whose scheme equals scheme,
// case-insensitively (RFC 9110 §11.1).
func Find(cs []Challenge, scheme string) (Challenge, bool) {
	for _, c := range cs {
		if strings.EqualFold(c.Scheme, scheme) {
			return c, true
		}
	}
	return Challenge{}, false
}

// FindScheme returns the first challenge with the given scheme in the
// values of WWW-Authenticate fields. A value that does not parse as a whole
// is searched for a challenge of that scheme that parses where it starts,
// so that a malformed challenge of another scheme in the same field does
// not hide it.
func FindScheme(values []string, scheme string) (Challenge, bool) {
	for _, v := range values {
		if cs, err := Parse([]string{v}); err == nil {
			if c, ok := Find(cs, scheme); ok {
				return c, true
			}
			continue
		}
		for i := 0; i+len(scheme) <= len(v); i++ {
			if !strings.EqualFold(v[i:i+len(scheme)], scheme) || !elementStart(v[:i]) {
				continue
			}
			items := 0
			p := parser{s: v[i:]}
			if c, err := p.challenge(&items); err == nil && strings.EqualFold(c.Scheme, scheme) {
				return c, true
			}
		}
	}
	return Challenge{}, false
}

// elementStart reports whether a list element may begin after prefix: at
// the start of the field, or after a comma and optional white space.
func elementStart(prefix string) bool {
	prefix = strings.TrimRight(prefix, " \t")
	return prefix == "" || strings.HasSuffix(prefix, ",")
}

type parser struct {
	s   string
	pos int
}

func (p *parser) done() bool { return p.pos >= len(p.s) }

func (p *parser) skipSpace() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

func (p *parser) skipListSeparators() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t' || p.s[p.pos] == ',') {
		p.pos++
	}
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("WWW-Authenticate at byte %d: "+format, append([]any{p.pos}, args...)...)
}

func (p *parser) token() string {
	start := p.pos
	for p.pos < len(p.s) && isTchar(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

func (p *parser) challenge(items *int) (Challenge, error) {
	c := Challenge{Scheme: p.token()}
	if c.Scheme == "" {
		return c, p.errorf("want an auth-scheme, found %q", p.s[p.pos])
	}
	if *items++; *items > maxItems {
		return c, errTooMany
	}
	if p.done() || p.s[p.pos] == ',' {
		return c, nil
	}
	if p.s[p.pos] != ' ' && p.s[p.pos] != '\t' {
		return c, p.errorf("want a space after auth-scheme %q", c.Scheme)
	}
	p.skipSpace()
	if t, ok := p.token68(); ok {
		c.Token68 = t
		return c, nil
	}
	// An empty list element may follow the scheme ("Bearer , DPoP ..."):
	// then what comes after the comma is a param of this challenge if it
	// has an "=", else the next challenge (RFC 9110 §5.6.1, §11.6.1).
	first := !p.done() && p.s[p.pos] != ','
	for ; ; first = false {
		mark := p.pos
		if !first {
			p.skipListSeparators()
		}
		if p.done() {
			return c, nil
		}
		name := p.token()
		if name == "" {
			return c, p.errorf("want an auth-param name, found %q", p.s[p.pos])
		}
		p.skipSpace()
		if p.done() || p.s[p.pos] != '=' {
			if first {
				return c, p.errorf("auth-param %q has no value", name)
			}
			p.pos = mark // the next challenge's scheme
			return c, nil
		}
		p.pos++ // '='
		p.skipSpace()
		value, err := p.value()
		if err != nil {
			return c, err
		}
		if *items++; *items > maxItems {
			return c, errTooMany
		}
		name = strings.ToLower(name)
		if c.Params == nil {
			c.Params = make(map[string]string)
		}
		if _, dup := c.Params[name]; dup {
			return c, p.errorf("auth-param %q repeated", name)
		}
		c.Params[name] = value
		p.skipSpace()
		if !p.done() && p.s[p.pos] != ',' {
			return c, p.errorf("want a comma after auth-param %q", name)
		}
	}
}

var errTooMany = errors.New("WWW-Authenticate has too many challenges or parameters")

// token68 consumes a token68 (RFC 9110 §11.2) when one stands alone before
// the end of the field or a comma.
func (p *parser) token68() (string, bool) {
	i := p.pos
	for i < len(p.s) && isToken68(p.s[i]) {
		i++
	}
	if i == p.pos {
		return "", false
	}
	for i < len(p.s) && p.s[i] == '=' {
		i++
	}
	j := i
	for j < len(p.s) && (p.s[j] == ' ' || p.s[j] == '\t') {
		j++
	}
	if j < len(p.s) && p.s[j] != ',' {
		return "", false
	}
	t := p.s[p.pos:i]
	p.pos = i
	return t, true
}

func (p *parser) value() (string, error) {
	if p.done() {
		return "", p.errorf("auth-param value missing")
	}
	if p.s[p.pos] != '"' {
		t := p.token()
		if t == "" {
			return "", p.errorf("want a token or quoted-string, found %q", p.s[p.pos])
		}
		return t, nil
	}
	p.pos++
	var b strings.Builder
	for start := p.pos; p.pos < len(p.s); p.pos++ {
		switch ch := p.s[p.pos]; {
		case ch == '"':
			if b.Len() == 0 {
				v := p.s[start:p.pos]
				p.pos++
				return v, nil
			}
			b.WriteString(p.s[start:p.pos])
			p.pos++
			return b.String(), nil
		case ch == '\\':
			if p.pos+1 >= len(p.s) || !isQuotedPairChar(p.s[p.pos+1]) {
				return "", p.errorf("bad quoted-pair")
			}
			b.WriteString(p.s[start:p.pos])
			b.WriteByte(p.s[p.pos+1])
			p.pos++
			start = p.pos + 1
		case !isQdtext(ch):
			return "", p.errorf("control character %#x in quoted-string", ch)
		}
	}
	return "", p.errorf("unterminated quoted-string")
}

// isTchar reports whether c is a tchar of RFC 9110 §5.6.2.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken68(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
}

// isQdtext reports whether c may stand unescaped in a quoted-string.
func isQdtext(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || (0x23 <= c && c <= 0x5b) || (0x5d <= c && c <= 0x7e) || c >= 0x80
}

func isQuotedPairChar(c byte) bool {
	return c == '\t' || (0x20 <= c && c <= 0x7e) || c >= 0x80
}
