// Package jws holds the hot-path pieces of a compact JWS (RFC 7515 §7.1)
// that package dpop builds for every proof: JSON string escaping into a
// reused buffer, unpadded base64url, and the conversion of an ASN.1 ECDSA
// signature into the fixed-width r||s form of RFC 7518 §3.4.
//
// It exists for internal use only. JWK marshaling and thumbprints come from
// go-jose; nothing here parses a JWS.
package jws

import (
	"encoding/base64"
	"errors"
	"unicode/utf8"
)

// AppendBase64 appends the unpadded base64url encoding of src to dst.
func AppendBase64(dst, src []byte) []byte {
	return base64.RawURLEncoding.AppendEncode(dst, src)
}

const hex = "0123456789abcdef"

// AppendString appends s to dst as a JSON string (RFC 8259 §7), quotes
// included. It escapes what encoding/json escapes for a string: the quote,
// the backslash, control characters, U+2028 and U+2029, and it replaces
// invalid UTF-8 with U+FFFD, so the result always parses back to the same
// text encoding/json would produce.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// ErrECDSASignature reports an ECDSA signature that is not the DER
// SEQUENCE { INTEGER r, INTEGER s } of RFC 3279 §2.2.3 for the curve size.
var ErrECDSASignature = errors.New("malformed ASN.1 ECDSA signature")

// AppendECDSA appends the ASN.1 DER ECDSA signature der to dst in the
// fixed-width r||s form of RFC 7518 §3.4: each integer big-endian and
// left-padded with zeros to size bytes, size being (bits+7)/8 for the curve.
// It allocates nothing beyond growing dst, and returns dst unchanged with
// an error.
func AppendECDSA(dst, der []byte, size int) ([]byte, error) {
	out, err := appendECDSA(dst, der, size)
	if err != nil {
		return dst, err // nothing of a half-converted signature
	}
	return out, nil
}

func appendECDSA(dst, der []byte, size int) ([]byte, error) {
	body, rest, ok := derElement(der, 0x30)
	if !ok || len(rest) != 0 {
		return dst, ErrECDSASignature
	}
	r, body, ok := derElement(body, 0x02)
	if !ok {
		return dst, ErrECDSASignature
	}
	s, body, ok := derElement(body, 0x02)
	if !ok || len(body) != 0 {
		return dst, ErrECDSASignature
	}
	for _, n := range [2][]byte{r, s} {
		// A DER INTEGER is minimal and signed: one leading zero byte at most,
		// and only in front of a byte with its high bit set.
		if len(n) == 0 || n[0]&0x80 != 0 || (len(n) > 1 && n[0] == 0 && n[1]&0x80 == 0) {
			return dst, ErrECDSASignature
		}
		if n[0] == 0 {
			n = n[1:]
		}
		if len(n) > size {
			return dst, ErrECDSASignature
		}
		for range size - len(n) {
			dst = append(dst, 0)
		}
		dst = append(dst, n...)
	}
	return dst, nil
}

// derElement splits off one DER element with the given tag, returning its
// contents and what follows it. Lengths use the short form or the long form
// with one or two length bytes, which covers every curve up to P-521.
func derElement(b []byte, tag byte) (content, rest []byte, ok bool) {
	if len(b) < 2 || b[0] != tag {
		return nil, nil, false
	}
	n, hdr := int(b[1]), 2
	switch {
	case n < 0x80:
	case n == 0x81 && len(b) >= 3 && b[2] >= 0x80:
		n, hdr = int(b[2]), 3
	case n == 0x82 && len(b) >= 4 && b[2] != 0:
		n, hdr = int(b[2])<<8|int(b[3]), 4
	default:
		return nil, nil, false
	}
	if len(b)-hdr < n {
		return nil, nil, false
	}
	return b[hdr : hdr+n], b[hdr+n:], true
}
