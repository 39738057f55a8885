package jws

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendBase64(t *testing.T) {
	for _, src := range []string{"", "f", "fo", "foo", "foob", "\xfb\xff\xfe", "\x00\x00\x00\x00"} {
		got := string(AppendBase64([]byte("x."), []byte(src)))
		want := "x." + base64.RawURLEncoding.EncodeToString([]byte(src))
		if got != want {
			t.Errorf("AppendBase64(%q, %q) = %q; want %q", "x.", src, got, want)
		}
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", `""`},
		{"plain", "abc", `"abc"`},
		{"quote", `a"b`, `"a\"b"`},
		{"backslash", `a\b`, `"a\\b"`},
		{"newline", "a\nb", `"a\nb"`},
		{"carriage return", "a\rb", `"a\rb"`},
		{"tab", "a\tb", `"a\tb"`},
		{"nul", "\x00", `"\u0000"`},
		{"unit separator", "\x1f", `"\u001f"`},
		{"backspace and form feed", "\b\f", `"\u0008\u000c"`},
		{"escape char", "\x1b[0m", `"\u001b[0m"`},
		{"space is not escaped", " ", `" "`},
		{"del is not escaped", "\x7f", "\"\x7f\""},
		{"html is not escaped", "<a href='x'>&</a>", `"<a href='x'>&</a>"`},
		{"line separator", "a\u2028b", `"a\u2028b"`},
		{"paragraph separator", "a\u2029b", `"a\u2029b"`},
		{"neighbours of U+2028 pass", "\u2027\u202a", "\"\u2027\u202a\""},
		{"two byte", "é", `"é"`},
		{"three byte", "€", `"€"`},
		{"four byte", "𝄞", `"𝄞"`},
		{"valid U+FFFD passes", "\uFFFD", "\"\uFFFD\""},
		{"invalid byte", "a\xffb", `"a\ufffdb"`},
		{"lone continuation", "\x80", `"\ufffd"`},
		{"truncated sequence", "\xe2\x82", `"\ufffd\ufffd"`},
		{"truncated at end", "ab\xf0\x9f\x98", `"ab\ufffd\ufffd\ufffd"`},
		{"overlong slash", "\xc0\xaf", `"\ufffd\ufffd"`},
		{"surrogate half", "\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`},
		{"beyond U+10FFFF", "\xf4\x90\x80\x80", `"\ufffd\ufffd\ufffd\ufffd"`},
		{"mixed", "\"\\\x00é\u2028\xff/", `"\"\\\u0000é\u2028\ufffd/"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendString(nil, tt.in)); got != tt.want {
				t.Errorf("AppendString(nil, %q) = %q; want %q", tt.in, got, tt.want)
			}
			prefix := `{"k":`
			if got, want := string(AppendString([]byte(prefix), tt.in)), prefix+tt.want; got != want {
				t.Errorf("AppendString(%q, %q) = %q; want %q", prefix, tt.in, got, want)
			}
			checkJSONString(t, tt.in)
		})
	}
}

// trickyPieces are fragments that random strings are assembled from, so that
// escapes, invalid UTF-8 and multibyte runes sit next to each other and at
// both ends of the string.
var trickyPieces = []string{
	"", "a", "Z", " ", "~", "/", "<", ">", "&", "'", `"`, `\`, `\u0041`, `\"`,
	"\x00", "\x01", "\x08", "\x0c", "\x1f", "\x7f", "\n", "\r", "\t",
	"é", "€", "𝄞", "\u2028", "\u2029", "\u2027", "\u202a", "\ufeff", "\uFFFD",
	"\x80", "\xbf", "\xc0", "\xc2", "\xe2\x80", "\xe2\x80\xa8"[:2], "\xed\xa0\x80",
	"\xf0\x9f\x98", "\xf4\x90\x80\x80", "\xff", "\xfe", "htm", "https://rs.example/x?q=1",
}

func randomString(r *mrand.Rand) string {
	var b strings.Builder
	for range r.IntN(12) {
		if r.IntN(4) == 0 {
			b.WriteByte(byte(r.IntN(256)))
		} else {
			b.WriteString(trickyPieces[r.IntN(len(trickyPieces))])
		}
	}
	return b.String()
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	for _, s := range trickyPieces {
		checkJSONString(t, s)
	}
	for range 20000 {
		checkJSONString(t, randomString(r))
	}
	// Every single byte and every two-byte string.
	for i := range 256 {
		checkJSONString(t, string([]byte{byte(i)}))
		for j := range 256 {
			checkJSONString(t, string([]byte{byte(i), byte(j)}))
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range trickyPieces {
		f.Add(s)
	}
	f.Add("a\"b\\c\x00\x1f\x7f\n\r\t\u2028\u2029\xffé𝄞")
	f.Fuzz(func(t *testing.T, s string) {
		checkJSONString(t, s)
	})
}

// checkJSONString checks that AppendString(s) is a single valid JSON string
// that decodes to what encoding/json's own encoding of s decodes to, and
// that it holds nothing a JSON or JavaScript parser could trip on.
func checkJSONString(t *testing.T, s string) {
	t.Helper()
	prefix := []byte("p:")
	out := AppendString(prefix, s)
	if !bytes.HasPrefix(out, []byte("p:")) {
		t.Fatalf("AppendString(%q, %q) = %q; lost the prefix", "p:", s, out)
	}
	enc := out[len(prefix):]
	if !utf8.Valid(enc) {
		t.Errorf("AppendString(nil, %q) = %q; not valid UTF-8", s, enc)
	}
	for i, c := range string(enc) {
		if c < 0x20 || c == '\u2028' || c == '\u2029' {
			t.Errorf("AppendString(nil, %q) = %q; raw %U at byte %d", s, enc, c, i)
		}
	}
	var got string
	if err := json.Unmarshal(enc, &got); err != nil {
		t.Fatalf("json.Unmarshal(AppendString(nil, %q) = %q): %v", s, enc, err)
	}
	ref, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("json.Marshal(%q): %v", s, err)
	}
	var want string
	if err := json.Unmarshal(ref, &want); err != nil {
		t.Fatalf("json.Unmarshal(%q): %v", ref, err)
	}
	if got != want {
		t.Errorf("json.Unmarshal(AppendString(nil, %q)) = %q; want %q", s, got, want)
	}
	if utf8.ValidString(s) && got != s {
		t.Errorf("json.Unmarshal(AppendString(nil, %q)) = %q; want the input back", s, got)
	}
}

// curves lists the NIST curves with the hash JWS pairs them with
// (RFC 7518 §3.4) and their r||s half width.
var curves = []struct {
	name  string
	curve elliptic.Curve
	hash  func([]byte) []byte
	size  int
}{
	{"P-256", elliptic.P256(), func(b []byte) []byte { h := sha256.Sum256(b); return h[:] }, 32},
	{"P-384", elliptic.P384(), func(b []byte) []byte { h := sha512.Sum384(b); return h[:] }, 48},
	{"P-521", elliptic.P521(), func(b []byte) []byte { h := sha512.Sum512(b); return h[:] }, 66},
}

func TestAppendECDSASignatures(t *testing.T) {
	for _, c := range curves {
		t.Run(c.name, func(t *testing.T) {
			if want := (c.curve.Params().BitSize + 7) / 8; c.size != want {
				t.Fatalf("size = %d; want %d", c.size, want)
			}
			key, err := ecdsa.GenerateKey(c.curve, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			n := 200
			if testing.Short() {
				n = 30
			}
			short := 0
			for i := range n {
				msg := fmt.Appendf(nil, "proof %d", i)
				hash := c.hash(msg)
				der, err := ecdsa.SignASN1(rand.Reader, key, hash)
				if err != nil {
					t.Fatal(err)
				}
				prefix := []byte("header.payload.")
				out, err := AppendECDSA(bytes.Clone(prefix), der, c.size)
				if err != nil {
					t.Fatalf("AppendECDSA(%x) error: %v", der, err)
				}
				if !bytes.HasPrefix(out, prefix) {
					t.Fatalf("AppendECDSA(%q, %x) = %x; lost the prefix", prefix, der, out)
				}
				raw := out[len(prefix):]
				if got, want := len(raw), 2*c.size; got != want {
					t.Fatalf("len(AppendECDSA(%x)) = %d; want %d", der, got, want)
				}
				r := new(big.Int).SetBytes(raw[:c.size])
				s := new(big.Int).SetBytes(raw[c.size:])
				if !ecdsa.Verify(&key.PublicKey, hash, r, s) {
					t.Fatalf("ecdsa.Verify(r||s = %x from %x) = false; want true", raw, der)
				}
				if raw[0] == 0 || raw[c.size] == 0 {
					short++
				}
				checkAgainstASN1(t, der, c.size, raw)
			}
			t.Logf("%d of %d signatures had a short r or s", short, n)
		})
	}
}

// checkAgainstASN1 checks raw against encoding/asn1's reading of der.
func checkAgainstASN1(t *testing.T, der []byte, size int, raw []byte) {
	t.Helper()
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil || len(rest) != 0 {
		t.Fatalf("asn1.Unmarshal(%x) = rest %x, %v", der, rest, err)
	}
	want := make([]byte, 2*size)
	sig.R.FillBytes(want[:size])
	sig.S.FillBytes(want[size:])
	if !bytes.Equal(raw, want) {
		t.Fatalf("AppendECDSA(nil, %x, %d) = %x; want %x", der, size, raw, want)
	}
}

// derLen encodes a DER length.
func derLen(n int) []byte {
	switch {
	case n < 0x80:
		return []byte{byte(n)}
	case n < 0x100:
		return []byte{0x81, byte(n)}
	default:
		return []byte{0x82, byte(n >> 8), byte(n)}
	}
}

// derInt encodes the non-negative big-endian magnitude m as a minimal DER
// INTEGER.
func derInt(m []byte) []byte {
	for len(m) > 1 && m[0] == 0 {
		m = m[1:]
	}
	if len(m) == 0 {
		m = []byte{0}
	}
	if m[0]&0x80 != 0 {
		m = append([]byte{0}, m...)
	}
	return append(append([]byte{0x02}, derLen(len(m))...), m...)
}

// derSeq wraps elems in a DER SEQUENCE.
func derSeq(elems ...[]byte) []byte {
	body := bytes.Join(elems, nil)
	return append(append([]byte{0x30}, derLen(len(body))...), body...)
}

func TestAppendECDSAPadding(t *testing.T) {
	ones := func(n int) []byte { return bytes.Repeat([]byte{0xff}, n) }
	pad := func(size int, m ...byte) []byte {
		return append(make([]byte, size-len(m)), m...)
	}
	tests := []struct {
		name string
		der  []byte
		size int
		want []byte
	}{
		{"r = 1, s = 1", derSeq(derInt([]byte{1}), derInt([]byte{1})), 32,
			append(pad(32, 1), pad(32, 1)...)},
		{"r short, s full", derSeq(derInt([]byte{0x7f, 0xff}), derInt(ones(32))), 32,
			append(pad(32, 0x7f, 0xff), ones(32)...)},
		{"r full, s short", derSeq(derInt(ones(48)), derInt([]byte{0x80})), 48,
			append(ones(48), pad(48, 0x80)...)},
		{"high bit needs a zero byte", derSeq(derInt(ones(32)), derInt(ones(32))), 32,
			ones(64)},
		{"P-521 maximum", derSeq(derInt(ones(66)), derInt(ones(66))), 66,
			ones(132)},
		{"P-521 top byte 0x01", derSeq(derInt(append([]byte{1}, ones(65)...)), derInt([]byte{2})), 66,
			append(append([]byte{1}, ones(65)...), pad(66, 2)...)},
		{"two byte long form lengths", derSeq(derInt(ones(130)), derInt(ones(130))), 130,
			ones(260)},
		{"one byte long form integer", derSeq(derInt(ones(127)), derInt([]byte{3})), 127,
			append(ones(127), pad(127, 3)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendECDSA(nil, tt.der, tt.size)
			if err != nil {
				t.Fatalf("AppendECDSA(nil, %x, %d) error: %v", tt.der, tt.size, err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("AppendECDSA(nil, %x, %d) = %x; want %x", tt.der, tt.size, got, tt.want)
			}
			checkAgainstASN1(t, tt.der, tt.size, got)

			prefix := []byte{0xde, 0xad}
			got, err = AppendECDSA(prefix[:2:2], tt.der, tt.size)
			if err != nil {
				t.Fatalf("AppendECDSA(%x, %x, %d) error: %v", prefix, tt.der, tt.size, err)
			}
			if want := append(bytes.Clone(prefix), tt.want...); !bytes.Equal(got, want) {
				t.Errorf("AppendECDSA(%x, %x, %d) = %x; want %x", prefix, tt.der, tt.size, got, want)
			}
		})
	}
}

// TestAppendECDSAErrorKeepsDst: a valid r followed by a bad s must not
// leave r's bytes behind.
func TestAppendECDSAErrorKeepsDst(t *testing.T) {
	der := []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x80}
	got, err := AppendECDSA([]byte("p"), der, 4)
	if err == nil || string(got) != "p" {
		t.Errorf("AppendECDSA(bad s) = %x, %v; want the prefix alone and an error", got, err)
	}
}

func TestAppendECDSAMalformed(t *testing.T) {
	one := derInt([]byte{1})
	good := derSeq(one, one)
	tests := []struct {
		name string
		der  []byte
		size int
	}{
		{"nil", nil, 32},
		{"empty sequence", []byte{0x30, 0x00}, 32},
		{"tag only", []byte{0x30}, 32},
		{"set instead of sequence", append([]byte{0x31}, good[1:]...), 32},
		{"bare integers", append(bytes.Clone(one), one...), 32},
		{"r is a bit string", derSeq([]byte{0x03, 0x01, 0x01}, one), 32},
		{"s is an octet string", derSeq(one, []byte{0x04, 0x01, 0x01}), 32},
		{"r has a context tag", derSeq([]byte{0xa0, 0x01, 0x01}, one), 32},
		{"only r", derSeq(one), 32},
		{"three integers", derSeq(one, one, one), 32},
		{"trailing zero inside", derSeq(one, one, []byte{0x00}), 32},
		{"trailing bytes", append(bytes.Clone(good), 0x00), 32},
		{"trailing sequence", append(bytes.Clone(good), good...), 32},
		{"empty r", derSeq([]byte{0x02, 0x00}, one), 32},
		{"empty s", derSeq(one, []byte{0x02, 0x00}), 32},
		{"negative r", derSeq([]byte{0x02, 0x01, 0x80}, one), 32},
		{"negative s", derSeq(one, []byte{0x02, 0x01, 0xff}), 32},
		{"negative r, two bytes", derSeq([]byte{0x02, 0x02, 0xff, 0x01}, one), 32},
		{"non-minimal r 00 01", derSeq([]byte{0x02, 0x02, 0x00, 0x01}, one), 32},
		{"non-minimal s 00 00", derSeq(one, []byte{0x02, 0x02, 0x00, 0x00}), 32},
		{"non-minimal r 00 00 ff", derSeq([]byte{0x02, 0x03, 0x00, 0x00, 0xff}, one), 32},
		{"non-minimal r ff ff", derSeq([]byte{0x02, 0x02, 0xff, 0xff}, one), 32},
		{"r longer than size", derSeq(derInt(append([]byte{1}, make([]byte, 32)...)), one), 32},
		{"s longer than size", derSeq(one, derInt(append([]byte{1}, make([]byte, 32)...))), 32},
		{"s high bit longer than size", derSeq(one, derInt(bytes.Repeat([]byte{0x80}, 33))), 32},
		{"P-521 r of 67 bytes", derSeq(derInt(append([]byte{1}, make([]byte, 66)...)), one), 66},
		{"size 0", good, 0},
		{"negative size", good, -1},
		{"sequence length too long", []byte{0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, 32},
		{"sequence length too short", []byte{0x30, 0x05, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, 32},
		{"r length past end", []byte{0x30, 0x06, 0x02, 0x05, 0x01, 0x02, 0x01, 0x01}, 32},
		{"s length past end", []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x02, 0x01}, 32},
		{"indefinite length", []byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00, 0x00}, 32},
		{"long form for a short length", append([]byte{0x30, 0x81, 0x06}, good[2:]...), 32},
		{"long form with no length byte", []byte{0x30, 0x81}, 32},
		{"two byte long form, leading zero", append([]byte{0x30, 0x82, 0x00, 0x06}, good[2:]...), 32},
		{"two byte long form, one byte", []byte{0x30, 0x82, 0x01}, 32},
		{"three byte long form", append([]byte{0x30, 0x83, 0x00, 0x00, 0x06}, good[2:]...), 32},
		{"four byte long form", append([]byte{0x30, 0x84, 0x00, 0x00, 0x00, 0x06}, good[2:]...), 32},
		{"long form on r", derSeq([]byte{0x02, 0x81, 0x01, 0x01}, one), 32},
		{"long form past end", []byte{0x30, 0x81, 0x80, 0x02}, 66},
		{"0xff length", []byte{0x30, 0xff, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRejected(t, tt.der, tt.size)
		})
	}
}

func TestAppendECDSATruncated(t *testing.T) {
	for _, c := range curves {
		t.Run(c.name, func(t *testing.T) {
			key, err := ecdsa.GenerateKey(c.curve, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			der, err := ecdsa.SignASN1(rand.Reader, key, c.hash([]byte("x")))
			if err != nil {
				t.Fatal(err)
			}
			for i := range len(der) {
				checkRejected(t, der[:i], c.size)
				// Lying about the length in the header is no better.
				if i >= 2 && der[1] < 0x80 {
					bad := bytes.Clone(der[:i])
					bad[1] = byte(i - 2)
					checkRejected(t, bad, c.size)
				}
			}
			checkRejected(t, append(bytes.Clone(der), 0), c.size)
			// One byte too small a size must fail, unless r and s both
			// happen to fit in it (for P-521 about one signature in four).
			var sig struct{ R, S *big.Int }
			if _, err := asn1.Unmarshal(der, &sig); err != nil {
				t.Fatal(err)
			}
			if max(sig.R.BitLen(), sig.S.BitLen()) > (c.size-1)*8 {
				checkRejected(t, der, c.size-1)
			}
		})
	}
}

func checkRejected(t *testing.T, der []byte, size int) {
	t.Helper()
	prefix := []byte("keep")
	got, err := AppendECDSA(bytes.Clone(prefix), der, size)
	if !errors.Is(err, ErrECDSASignature) {
		t.Errorf("AppendECDSA(%q, %x, %d) = %x, %v; want error %v", prefix, der, size, got, err, ErrECDSASignature)
	}
	if !bytes.HasPrefix(got, prefix) {
		t.Errorf("AppendECDSA(%q, %x, %d) = %x on error; lost the prefix", prefix, der, size, got)
	}
}

func FuzzAppendECDSA(f *testing.F) {
	for _, c := range curves {
		key, err := ecdsa.GenerateKey(c.curve, rand.Reader)
		if err != nil {
			f.Fatal(err)
		}
		der, err := ecdsa.SignASN1(rand.Reader, key, c.hash([]byte("seed")))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der, uint8(c.size))
		f.Add(der[:len(der)-1], uint8(c.size))
	}
	one := derInt([]byte{1})
	f.Add(derSeq(one, one), uint8(32))
	f.Add(derSeq(derInt(bytes.Repeat([]byte{0xff}, 130)), one), uint8(130))
	f.Add([]byte{0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, uint8(32))
	f.Add([]byte{0x30, 0x82, 0x00, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, uint8(32))
	f.Fuzz(func(t *testing.T, der []byte, size uint8) {
		prefix := []byte("hdr.pld.")
		out, err := AppendECDSA(bytes.Clone(prefix), der, int(size))
		if !bytes.HasPrefix(out, prefix) {
			t.Fatalf("AppendECDSA(%q, %x, %d) = %x; lost the prefix", prefix, der, size, out)
		}
		// encoding/asn1 is the reference: it must read der as a SEQUENCE
		// of two non-negative INTEGERs that re-encodes to der byte for
		// byte (so der is DER, with nothing trailing inside or after) and
		// whose values fit in size bytes.
		var sig struct{ R, S *big.Int }
		rest, aerr := asn1.Unmarshal(der, &sig)
		valid := aerr == nil && len(rest) == 0 &&
			sig.R.Sign() >= 0 && sig.S.Sign() >= 0 &&
			(sig.R.BitLen()+7)/8 <= int(size) && (sig.S.BitLen()+7)/8 <= int(size)
		if valid {
			re, merr := asn1.Marshal(sig)
			valid = merr == nil && bytes.Equal(re, der)
		}
		if err != nil {
			if !errors.Is(err, ErrECDSASignature) {
				t.Fatalf("AppendECDSA(%x, %d) error = %v; want %v", der, size, err, ErrECDSASignature)
			}
			// Lengths past 0xffff need a form AppendECDSA does not read.
			if valid && len(der) <= 0xffff {
				t.Fatalf("AppendECDSA(%x, %d) error = %v; want r = %x, s = %x", der, size, err, sig.R, sig.S)
			}
			return
		}
		if got, want := len(out), len(prefix)+2*int(size); got != want {
			t.Fatalf("len(AppendECDSA(%q, %x, %d)) = %d; want %d", prefix, der, size, got, want)
		}
		if !valid {
			t.Fatalf("AppendECDSA(%x, %d) = %x; want an error (asn1: %v, rest %x)", der, size, out, aerr, rest)
		}
		checkAgainstASN1(t, der, int(size), out[len(prefix):])
	})
}

func TestAppendAllocs(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ecdsa.SignASN1(rand.Reader, key, make([]byte, 64))
	if err != nil {
		t.Fatal(err)
	}
	short := derSeq(derInt([]byte{1}), derInt([]byte{1}))
	s := "https://rs.example/\"q\"\\\x00\n\u2028\xffé" + strings.Repeat("x", 100)
	src := bytes.Repeat([]byte{0xfb}, 100)
	buf := make([]byte, 0, 1024)

	tests := []struct {
		name string
		f    func()
	}{
		{"AppendECDSA", func() {
			var err error
			if buf, err = AppendECDSA(buf[:0], der, 66); err != nil {
				t.Fatal(err)
			}
		}},
		{"AppendECDSA padded", func() {
			var err error
			if buf, err = AppendECDSA(buf[:0], short, 66); err != nil {
				t.Fatal(err)
			}
		}},
		{"AppendECDSA error", func() {
			var err error
			if buf, err = AppendECDSA(buf[:0], short[:5], 66); err == nil {
				t.Fatal("no error")
			}
		}},
		{"AppendString", func() { buf = AppendString(buf[:0], s) }},
		{"AppendBase64", func() { buf = AppendBase64(buf[:0], src) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, tt.f); got != 0 {
				t.Errorf("%s allocs = %v; want 0", tt.name, got)
			}
		})
	}
}
