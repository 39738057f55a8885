package resource

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"math/big"
	"math/bits"

	"github.com/dpopkit/dpop/internal/strictjson"
)

// algInfo is what a JWS algorithm asks of a proof's key (RFC 7518 §3,
// RFC 8037 §3.1).
type algInfo struct {
	kty, crv string
	hash     crypto.Hash // of the signing input; 0 for EdDSA, which hashes itself
	size     int         // bytes of an EC coordinate, of an Ed25519 key
	pss      bool
	curve    elliptic.Curve
}

// supportedAlgs are the algorithms a Verifier can accept: asymmetric
// signatures only (RFC 9449 §4.3 point 5). EdDSA means Ed25519; Ed25519
// is RFC 9864's fully-specified name for it, which clients such as
// oauth4webapi 3.8 put in their proofs.
var supportedAlgs = map[string]algInfo{
	"ES256":   {kty: "EC", crv: "P-256", hash: crypto.SHA256, size: 32, curve: elliptic.P256()},
	"ES384":   {kty: "EC", crv: "P-384", hash: crypto.SHA384, size: 48, curve: elliptic.P384()},
	"ES512":   {kty: "EC", crv: "P-521", hash: crypto.SHA512, size: 66, curve: elliptic.P521()},
	"EdDSA":   {kty: "OKP", crv: "Ed25519", size: ed25519.PublicKeySize},
	"Ed25519": {kty: "OKP", crv: "Ed25519", size: ed25519.PublicKeySize},
	"RS256":   {kty: "RSA", hash: crypto.SHA256},
	"RS384":   {kty: "RSA", hash: crypto.SHA384},
	"RS512":   {kty: "RSA", hash: crypto.SHA512},
	"PS256":   {kty: "RSA", hash: crypto.SHA256, pss: true},
	"PS384":   {kty: "RSA", hash: crypto.SHA384, pss: true},
	"PS512":   {kty: "RSA", hash: crypto.SHA512, pss: true},
}

// RSA modulus sizes a proof key may have: RFC 7518 §3.3 asks for 2048 bits
// or more; above 4096 a key only buys its holder the server's CPU.
const (
	minRSABits = 2048
	maxRSABits = 4096
)

// proofKey is the public key of a proof's jwk header, checked against the
// header's alg, with its RFC 7638 thumbprint. It depends on the protected
// header alone, so the Verifier caches it by the header's bytes.
type proofKey struct {
	alg  string
	info algInfo
	jkt  string // RFC 7638 SHA-256 thumbprint, unpadded base64url

	ec  *ecdsa.PublicKey
	ed  ed25519.PublicKey
	rsa *rsa.PublicKey
}

var pssOptions = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash} // RFC 7518 §3.5

// verify reports whether sig is a signature of msg, the JWS signing input,
// by k (RFC 7515 §5.2 point 8). scratch is memory it may append to, so
// that what the crypto packages keep a reference to needs no allocation.
func (k *proofKey) verify(msg, sig, scratch []byte) bool {
	switch {
	case k.ed != nil:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.ed, msg, sig)
	case k.ec != nil:
		if len(sig) != 2*k.info.size {
			return false
		}
		h := appendDigest(scratch[:0], k.info.hash, msg)
		der := appendDER(h[len(h):], sig[:k.info.size], sig[k.info.size:])
		return ecdsa.VerifyASN1(k.ec, h, der)
	case k.rsa != nil:
		if len(sig) != k.rsa.Size() {
			return false
		}
		h := appendDigest(scratch[:0], k.info.hash, msg)
		if k.info.pss {
			return rsa.VerifyPSS(k.rsa, k.info.hash, h, sig, pssOptions) == nil
		}
		return rsa.VerifyPKCS1v15(k.rsa, k.info.hash, h, sig) == nil
	}
	return false
}

// appendDigest appends the hash of msg with h (SHA-256, -384 or -512).
func appendDigest(dst []byte, h crypto.Hash, msg []byte) []byte {
	switch h {
	case crypto.SHA384:
		s := sha512.Sum384(msg)
		return append(dst, s[:]...)
	case crypto.SHA512:
		s := sha512.Sum512(msg)
		return append(dst, s[:]...)
	}
	s := sha256.Sum256(msg)
	return append(dst, s[:]...)
}

// appendDER appends the ASN.1 DER ECDSA-Sig-Value of r and s (RFC 3279
// §2.2.3), each at most 66 bytes, which ecdsa.VerifyASN1 reads.
func appendDER(dst, r, s []byte) []byte {
	r, s = trimZeros(r), trimZeros(s)
	n := derIntLen(r) + derIntLen(s)
	dst = append(dst, 0x30)
	if n >= 0x80 {
		dst = append(dst, 0x81)
	}
	dst = append(dst, byte(n))
	return appendDERInt(appendDERInt(dst, r), s)
}

func trimZeros(b []byte) []byte {
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

func derIntLen(v []byte) int { return 2 + len(v) + int(v[0]>>7) }

func appendDERInt(dst, v []byte) []byte {
	dst = append(dst, 0x02, byte(len(v)+int(v[0]>>7)))
	if v[0]&0x80 != 0 {
		dst = append(dst, 0)
	}
	return append(dst, v...)
}

// jwkMembers are the members of a proof's jwk that matter.
type jwkMembers struct {
	kty, crv, x, y, n, e []byte
	use, alg             []byte
	hasUse, hasAlg       bool
}

// parseJWK reads the jwk header parameter, raw, as the public key of a
// proof signed with alg (RFC 9449 §4.3 points 6, 7; RFC 7517, RFC 7518 §6).
// It refuses private and symmetric key members, certificate members
// (nothing is fetched or chased), a key of another type or curve than alg
// asks, EC coordinates and Ed25519 keys of the wrong size, points off the
// curve, and RSA moduli outside 2048..4096 bits.
func parseJWK(raw []byte, alg string, info algInfo) (*proofKey, *Error) {
	var buf [16]strictjson.Member
	ms, err := strictjson.ParseObject(buf[:0], raw)
	if err != nil {
		return nil, proofErr(ReasonProofSyntax, "jwk: "+err.Error())
	}
	var m jwkMembers
	for _, mb := range ms {
		var dst *[]byte
		switch string(mb.Name) {
		case "kty":
			dst = &m.kty
		case "crv":
			dst = &m.crv
		case "x":
			dst = &m.x
		case "y":
			dst = &m.y
		case "n":
			dst = &m.n
		case "e":
			dst = &m.e
		case "use":
			dst, m.hasUse = &m.use, true
		case "alg":
			dst, m.hasAlg = &m.alg, true
		case "d", "p", "q", "dp", "dq", "qi", "oth", "k":
			return nil, proofErr(ReasonProofKey, "jwk has the private or symmetric key member "+quoteUntrusted(string(mb.Name)))
		case "x5c", "x5u":
			return nil, proofErr(ReasonProofKey, "jwk has the certificate member "+quoteUntrusted(string(mb.Name)))
		default:
			continue
		}
		s, err := strictjson.String(mb.Value)
		if err != nil {
			return nil, proofErr(ReasonProofKey, "jwk member "+quoteUntrusted(string(mb.Name))+" is not a string")
		}
		*dst = s
	}
	switch {
	case string(m.kty) != info.kty:
		return nil, proofErr(ReasonProofKey, "jwk kty "+quoteUntrusted(string(m.kty))+" does not fit alg "+alg)
	case m.hasUse && string(m.use) != "sig":
		return nil, proofErr(ReasonProofKey, "jwk use "+quoteUntrusted(string(m.use))+" is not sig")
	case m.hasAlg && string(m.alg) != alg:
		return nil, proofErr(ReasonProofKey, "jwk alg "+quoteUntrusted(string(m.alg))+" is not the header's "+alg)
	case info.crv != "" && string(m.crv) != info.crv:
		return nil, proofErr(ReasonProofKey, "jwk crv "+quoteUntrusted(string(m.crv))+" does not fit alg "+alg)
	}
	k := &proofKey{alg: alg, info: info}
	var tp []byte // the RFC 7638 §3.2 members in lexicographic order
	switch info.kty {
	case "EC":
		x, okx := decodeFixed(m.x, info.size)
		y, oky := decodeFixed(m.y, info.size)
		if !okx || !oky {
			return nil, proofErr(ReasonProofKey, "jwk EC coordinates missing or not of the curve's size")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(info.curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, proofErr(ReasonProofKey, "jwk EC point is not on the curve")
		}
		k.ec = pub
		tp = append(tp, `{"crv":"`+info.crv+`","kty":"EC","x":"`...)
		tp = append(base64.RawURLEncoding.AppendEncode(tp, x), `","y":"`...)
		tp = append(base64.RawURLEncoding.AppendEncode(tp, y), `"}`...)
	case "OKP":
		x, ok := decodeFixed(m.x, info.size)
		if !ok {
			return nil, proofErr(ReasonProofKey, "jwk Ed25519 key missing or not 32 bytes")
		}
		k.ed = ed25519.PublicKey(x)
		tp = append(tp, `{"crv":"Ed25519","kty":"OKP","x":"`...)
		tp = append(base64.RawURLEncoding.AppendEncode(tp, x), `"}`...)
	case "RSA":
		pub, err := rsaKey(m.n, m.e)
		if err != nil {
			return nil, proofErr(ReasonProofKey, "jwk RSA key: "+err.Error())
		}
		k.rsa = pub
		tp = append(tp, `{"e":"`...)
		tp = append(base64.RawURLEncoding.AppendEncode(tp, big.NewInt(int64(pub.E)).Bytes()), `","kty":"RSA","n":"`...)
		tp = append(base64.RawURLEncoding.AppendEncode(tp, pub.N.Bytes()), `"}`...)
	}
	sum := sha256.Sum256(tp)
	k.jkt = base64.RawURLEncoding.EncodeToString(sum[:])
	return k, nil
}

// decodeFixed decodes s, unpadded canonical base64url, and reports whether
// it is size bytes.
func decodeFixed(s []byte, size int) ([]byte, bool) {
	if len(s) != base64.RawURLEncoding.EncodedLen(size) {
		return nil, false
	}
	b, err := b64.AppendDecode(nil, s)
	return b, err == nil && len(b) == size
}

// rsaKey reads the n and e members of an RSA JWK (RFC 7518 §6.3.1):
// Base64urlUInt values in the fewest octets, n of 2048 to 4096 bits, e odd,
// from 3 to 2^31-1. The sizes are checked before any arithmetic.
func rsaKey(n64, e64 []byte) (*rsa.PublicKey, error) {
	if len(n64) == 0 || len(e64) == 0 {
		return nil, errors.New("n or e missing")
	}
	if len(n64) > base64.RawURLEncoding.EncodedLen(maxRSABits/8) || len(e64) > 6 {
		return nil, errors.New("modulus or exponent too large")
	}
	n, err := b64.AppendDecode(nil, n64)
	if err != nil || len(n) == 0 || n[0] == 0 {
		return nil, errors.New("n is not a Base64urlUInt")
	}
	if b := 8*(len(n)-1) + bits.Len8(n[0]); b < minRSABits || b > maxRSABits {
		return nil, errors.New("modulus is not 2048 to 4096 bits")
	}
	e, err := b64.AppendDecode(nil, e64)
	if err != nil || len(e) == 0 || len(e) > 4 || e[0] == 0 {
		return nil, errors.New("e is not a Base64urlUInt of at most 4 bytes")
	}
	var ev uint64
	for _, c := range e {
		ev = ev<<8 | uint64(c)
	}
	if ev < 3 || ev > 1<<31-1 || ev%2 == 0 {
		return nil, errors.New("exponent is not odd and from 3 to 2^31-1")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev)}, nil
}

// b64 decodes the segments of a proof and the members of its jwk:
// unpadded base64url, canonical (RFC 7515 §2).
var b64 = base64.RawURLEncoding.Strict()
