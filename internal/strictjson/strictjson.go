// Package strictjson reads a JSON object the way a security check must:
// once, with bounded work. A document whose reading could differ between
// two parsers is refused (RFC 7515 §5.2 point 4, RFC 8259 §4): duplicate
// member names at any depth, after their escapes are decoded as
// encoding/json decodes them. Nesting depth and member counts are bounded.
//
// It exists for internal use only: the resource server's proof verifier
// reads the protected header, the JWK and the claims of DPoP proofs with
// it, without allocating for what it skips.
package strictjson

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// Limits of a document. A DPoP proof's header and claims are a handful of
// members two levels deep.
const (
	MaxDepth         = 16  // objects and arrays nested in one another
	MaxMembers       = 256 // members and array elements in all
	MaxObjectMembers = 64  // members of one object
)

// Member is a member of an object: its name, decoded, and its value, the
// raw JSON text without surrounding white space.
type Member struct {
	Name  []byte
	Value []byte
}

// SyntaxError is a document ParseObject refuses.
type SyntaxError struct {
	Offset int    // the byte where reading stopped
	msg    string // what was wrong there
}

func (e *SyntaxError) Error() string { return e.msg }

// ParseObject checks that data is one JSON object (RFC 8259) within the
// limits of this package, with no member name twice in any of its objects,
// and appends its members to dst in order. Names and values alias data,
// except names with escapes, which are decoded into new memory. Every
// failure is a *SyntaxError.
func ParseObject(dst []Member, data []byte) ([]Member, error) {
	p := parser{data: data}
	p.space()
	if p.pos >= len(data) || data[p.pos] != '{' {
		return dst, p.fail("not a JSON object")
	}
	dst, err := p.object(dst, true)
	if err != nil {
		return dst, err
	}
	p.space()
	if p.pos != len(data) {
		return dst, p.fail("data after the object")
	}
	return dst, nil
}

type parser struct {
	data    []byte
	pos     int
	depth   int
	members int
}

func (p *parser) fail(msg string) error { return &SyntaxError{Offset: p.pos, msg: msg} }

func (p *parser) space() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// object reads an object at p.pos ('{'). When top is set its members are
// appended to dst.
func (p *parser) object(dst []Member, top bool) ([]Member, error) {
	if p.depth++; p.depth > MaxDepth {
		return dst, p.fail("JSON nested too deep")
	}
	p.pos++ // '{'
	var local [16][]byte
	names := local[:0]
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		p.depth--
		return dst, nil
	}
	for {
		if p.members++; p.members > MaxMembers || len(names) >= MaxObjectMembers {
			return dst, p.fail("too many JSON members")
		}
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return dst, p.fail("expected a member name")
		}
		start := p.pos
		simple, err := p.str()
		if err != nil {
			return dst, err
		}
		name := p.data[start+1 : p.pos-1]
		if !simple {
			name, _ = Unquote(p.data[start:p.pos])
		}
		for _, n := range names {
			if string(n) == string(name) {
				return dst, p.fail("duplicate JSON member name")
			}
		}
		names = append(names, name)
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return dst, p.fail("expected ':'")
		}
		p.pos++
		p.space()
		vstart := p.pos
		if err := p.value(); err != nil {
			return dst, err
		}
		if top {
			dst = append(dst, Member{Name: name, Value: p.data[vstart:p.pos]})
		}
		p.space()
		if p.pos >= len(p.data) {
			return dst, p.fail("unterminated object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			p.depth--
			return dst, nil
		default:
			return dst, p.fail("expected ',' or '}'")
		}
	}
}

func (p *parser) array() error {
	if p.depth++; p.depth > MaxDepth {
		return p.fail("JSON nested too deep")
	}
	p.pos++ // '['
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		p.depth--
		return nil
	}
	for {
		if p.members++; p.members > MaxMembers {
			return p.fail("too many JSON members")
		}
		p.space()
		if err := p.value(); err != nil {
			return err
		}
		p.space()
		if p.pos >= len(p.data) {
			return p.fail("unterminated array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			p.depth--
			return nil
		default:
			return p.fail("expected ',' or ']'")
		}
	}
}

func (p *parser) value() error {
	if p.pos >= len(p.data) {
		return p.fail("expected a value")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		_, err := p.object(nil, false)
		return err
	case c == '[':
		return p.array()
	case c == '"':
		_, err := p.str()
		return err
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	}
	return p.fail("invalid value")
}

func (p *parser) literal(lit string) error {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return p.fail("invalid literal")
	}
	p.pos += len(lit)
	return nil
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (p *parser) number() error {
	d := p.data
	if d[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(d) && d[p.pos] == '0':
		p.pos++
	case p.pos < len(d) && '1' <= d[p.pos] && d[p.pos] <= '9':
		p.digits()
	default:
		return p.fail("invalid number")
	}
	if p.pos < len(d) && d[p.pos] == '.' {
		p.pos++
		if p.digits() == 0 {
			return p.fail("invalid number")
		}
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		if p.digits() == 0 {
			return p.fail("invalid number")
		}
	}
	return nil
}

func (p *parser) digits() int {
	start := p.pos
	for p.pos < len(p.data) && '0' <= p.data[p.pos] && p.data[p.pos] <= '9' {
		p.pos++
	}
	return p.pos - start
}

// str reads a string at p.pos ('"') and reports whether it is simple: no
// escape and valid UTF-8, so that its text is its bytes.
func (p *parser) str() (simple bool, err error) {
	d := p.data
	p.pos++
	simple = true
	for p.pos < len(d) {
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			return simple, nil
		case c == '\\':
			simple = false
			if p.pos+1 >= len(d) {
				return false, p.fail("unterminated string")
			}
			switch d[p.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.pos += 2
			case 'u':
				if len(d)-p.pos < 6 || getu4(d[p.pos:]) < 0 {
					return false, p.fail("invalid \\u escape")
				}
				p.pos += 6
			default:
				return false, p.fail("invalid escape")
			}
		case c < 0x20:
			return false, p.fail("control character in string")
		case c < utf8.RuneSelf:
			p.pos++
		default:
			r, size := utf8.DecodeRune(d[p.pos:])
			if r == utf8.RuneError && size == 1 {
				simple = false // decoded as U+FFFD
			}
			p.pos += size
		}
	}
	return false, p.fail("unterminated string")
}

// Unquote returns the text of the JSON string s, quotes included, decoded
// as encoding/json decodes it: escapes resolved, a surrogate pair joined,
// a lone surrogate escape and each byte of invalid UTF-8 made U+FFFD. When
// s has no escape and is valid UTF-8 the result aliases s. It reports
// false when s is not a valid JSON string.
func Unquote(s []byte) ([]byte, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return nil, false
	}
	p := parser{data: s}
	simple, err := p.str()
	if err != nil || p.pos != len(s) {
		return nil, false
	}
	s = s[1 : len(s)-1]
	if simple {
		return s, true
	}
	b := make([]byte, 0, len(s)+2*utf8.UTFMax)
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			switch s[r+1] {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				rr := getu4(s[r:])
				r += 6
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, getu4(s[r:])); dec != utf8.RuneError {
						b = utf8.AppendRune(b, dec)
						r += 6
						continue
					}
					rr = utf8.RuneError
				}
				b = utf8.AppendRune(b, rr)
				continue
			default: // '"', '\\', '/'
				b = append(b, s[r+1])
			}
			r += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			if rr == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, s[r:r+size]...)
			}
			r += size
		}
	}
	return b, true
}

// getu4 decodes the \uXXXX escape at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// ErrNotString is returned by String for a value that is not a string.
var ErrNotString = errors.New("not a JSON string")

// String returns the text of the raw JSON value v, which must be a string,
// as Unquote does.
func String(v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != '"' {
		return nil, ErrNotString
	}
	s, ok := Unquote(v)
	if !ok {
		return nil, ErrNotString
	}
	return s, nil
}
