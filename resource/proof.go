package resource

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dpopkit/dpop/internal/strictjson"
)

// Bounds on a proof, checked before anything of it is decoded.
const (
	maxProofLen  = 8 << 10 // bytes of a DPoP header
	maxHeaderLen = 2 << 10 // base64url characters of its protected header: an RSA-4096 jwk takes 1000
)

// proofType is the typ of a DPoP proof (RFC 9449 §4.2), which RFC 7515
// §4.1.9 lets a sender also write with "application/" and in any case.
const proofType = "dpop+jwt"

// checkedProof is a proof that passed every check of RFC 9449 §4.3 that
// needs only the request: what remains is the token's binding and the
// replay check.
type checkedProof struct {
	key    *proofKey
	header string    // the protected header segment
	cached bool      // key came from the Verifier's cache
	jti    string    // unpadded base64url SHA-256 of the jti claim: the replay key
	until  time.Time // until when the proof could be accepted: how long to record it
	nonce  bool      // whether it carried a valid server nonce
}

// proofClaims are the claims of a proof (RFC 9449 §4.2): decoded texts, and
// the raw iat number; nil when absent.
type proofClaims struct {
	jti, htm, htu, iat, ath, nonce []byte
}

// scratch holds the bytes of one proof and what is decoded of it, so that
// a proof costs no allocation for them.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// checkProof checks raw, the value of the DPoP header of a request with
// this method to the public URL tgt, presenting token, at now (RFC 9449
// §4.3). requireNonce says whether the route needs a server nonce.
func (v *Verifier) checkProof(ctx context.Context, raw, method string, tgt *target, token string, now time.Time, requireNonce bool) (*checkedProof, *Error) {
	if len(raw) > maxProofLen {
		return nil, proofErr(ReasonTooLarge, "DPoP header longer than "+strconv.Itoa(maxProofLen)+" bytes")
	}
	i := strings.IndexByte(raw, '.')
	j := strings.LastIndexByte(raw, '.')
	// Base64 decoding skips CR and LF: refuse them here, one reading.
	if i <= 0 || i == j || strings.IndexByte(raw[i+1:j], '.') >= 0 || strings.IndexByte(raw, '\n') >= 0 || strings.IndexByte(raw, '\r') >= 0 {
		return nil, proofErr(ReasonProofSyntax, "not a compact JWS of three parts")
	}
	if i > maxHeaderLen {
		return nil, proofErr(ReasonTooLarge, "protected header longer than "+strconv.Itoa(maxHeaderLen)+" characters")
	}
	p := &checkedProof{header: raw[:i]}
	if p.key = v.keys.get(p.header); p.key != nil {
		p.cached = true
	} else {
		var e *Error
		if p.key, e = v.parseHeader(p.header); e != nil {
			return nil, e
		}
	}

	bp := scratch.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 4*maxProofLen {
			scratch.Put(bp)
		}
	}()
	// buf: the proof, the token, the decoded payload, the decoded signature.
	buf := append((*bp)[:0], raw...)
	buf = append(buf, token...)
	n := len(buf)
	buf, err := b64.AppendDecode(buf, buf[i+1:j])
	if err != nil {
		return nil, proofErr(ReasonProofSyntax, "payload is not base64url")
	}
	m := len(buf)
	buf, err = b64.AppendDecode(buf, buf[j+1:len(raw)])
	*bp = buf[:0]
	if err != nil {
		return nil, proofErr(ReasonProofSyntax, "signature is not base64url")
	}
	c, e := parseClaims(buf[n:m])
	if e != nil {
		return nil, e
	}
	if !p.key.verify(buf[:j], buf[m:], buf[len(buf):]) {
		return nil, proofErr(ReasonProofSignature, "signature does not verify with the jwk")
	}

	// The claims, in the order of RFC 9449 §4.3, the nonce and iat last so
	// that a use_dpop_nonce challenge goes only to a proof otherwise good.
	if len(c.jti) == 0 {
		return nil, proofErr(ReasonJTI, "jti missing or empty")
	}
	if c.htm == nil || string(c.htm) != method {
		return nil, proofErr(ReasonHTM, "htm "+quoteBytes(c.htm)+" is not the request method "+quoteUntrusted(method))
	}
	if c.htu == nil || !tgt.match(c.htu) {
		return nil, proofErr(ReasonHTU, "htu "+quoteBytes(c.htu)+" does not name "+quoteUntrusted(tgt.String()))
	}
	var ath [43]byte
	sum := sha256.Sum256(buf[len(raw):n])
	base64.RawURLEncoding.Encode(ath[:], sum[:])
	switch {
	case token == "": // a request without a token, such as dpoptest's token endpoint (internal/proofcheck)
		if c.ath != nil {
			return nil, proofErr(ReasonATH, "ath present but no access token presented")
		}
	case c.ath == nil || subtle.ConstantTimeCompare(c.ath, ath[:]) != 1:
		return nil, proofErr(ReasonATH, "ath missing or not the hash of the access token")
	}
	if e := v.checkFreshness(ctx, p, &c, now, requireNonce); e != nil {
		return nil, e
	}
	sum = sha256.Sum256(c.jti)
	var jti [43]byte
	base64.RawURLEncoding.Encode(jti[:], sum[:])
	p.jti = string(jti[:])
	return p, nil
}

// checkFreshness checks the nonce and iat claims (RFC 9449 §4.3 points 10
// and 11, §11.1): iat within [now-MaxAge, now+MaxFuture]; a nonce this
// server issued stands in for MaxAge as far back as the nonce was
// accepted, never further, so a proof older than its nonce is refused.
// It sets p.until, until when the proof could be accepted, plus MaxFuture
// for instances whose clocks differ by that much.
func (v *Verifier) checkFreshness(ctx context.Context, p *checkedProof, c *proofClaims, now time.Time, requireNonce bool) *Error {
	iat, ok := parseIAT(c.iat)
	if !ok {
		return proofErr(ReasonIAT, "iat missing or not a NumericDate")
	}
	if t := v.trace; t != nil && t.IATOffset != nil {
		t.IATOffset(IATOffsetInfo{Context: ctx, Offset: iat.Sub(now)})
	}
	var nonceUntil time.Time
	if c.nonce != nil && v.nonces != nil {
		nonceUntil, p.nonce = v.nonces.check(c.nonce, now)
	}
	lo := now.Add(-v.maxAge)
	if p.nonce {
		// The nonce stands in for MaxAge, as far back as it was
		// accepted: one step before its own (NonceIssuer.at); never
		// further, so an iat older than the nonce is still refused.
		if from := nonceUntil.Add(-3 * v.nonces.step); from.Before(lo) {
			lo = from
		}
	}
	iatOK := !iat.Before(lo) && !iat.After(now.Add(v.maxFuture))
	switch {
	case requireNonce && !p.nonce:
		if c.nonce == nil {
			return refuse(ErrorUseNonce, ReasonNonce, errNonceMissing)
		}
		e := refuse(ErrorUseNonce, ReasonNonce, errNonceStale)
		e.staleNonce = true
		return e
	case !iatOK:
		d := iat.Sub(now).Round(time.Second)
		e := proofErr(ReasonIAT, "iat is "+d.String()+" from now, outside [-"+now.Sub(lo).Round(time.Second).String()+", +"+v.maxFuture.String()+"]")
		if v.nonces != nil && !p.nonce {
			e.Code = ErrorUseNonce // a nonce lets a client whose clock is off through
			e.staleNonce = c.nonce != nil
		}
		return e
	}
	if iatOK {
		p.until = iat.Add(v.maxAge)
	}
	if p.nonce && nonceUntil.After(p.until) {
		p.until = nonceUntil
	}
	p.until = p.until.Add(v.maxFuture)
	return nil
}

// parseIAT reads a NumericDate (RFC 7519 §2): a non-negative JSON number
// of seconds, below 10^12.
func parseIAT(raw []byte) (time.Time, bool) {
	if len(raw) == 0 || raw[0] == '-' || raw[0] == '"' {
		return time.Time{}, false
	}
	if len(raw) <= 12 {
		var sec int64
		ok := true
		for _, c := range raw {
			if c < '0' || c > '9' {
				ok = false
				break
			}
			sec = sec*10 + int64(c-'0')
		}
		if ok {
			return time.Unix(sec, 0), true
		}
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f >= 1e12 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// parseHeader reads a protected header segment (RFC 9449 §4.3 points 4–7,
// RFC 7515 §4.1) into the proof key, or says why not.
func (v *Verifier) parseHeader(seg string) (*proofKey, *Error) {
	raw, err := b64.DecodeString(seg)
	if err != nil {
		return nil, proofErr(ReasonProofSyntax, "protected header is not base64url")
	}
	var buf [16]strictjson.Member
	ms, err := strictjson.ParseObject(buf[:0], raw)
	if err != nil {
		return nil, proofErr(ReasonProofSyntax, "protected header: "+err.Error())
	}
	var typ, alg, jwk []byte
	for _, mb := range ms {
		switch name := string(mb.Name); name {
		case "typ", "alg":
			s, err := strictjson.String(mb.Value)
			if err != nil {
				return nil, proofErr(ReasonProofHeader, name+" is not a string")
			}
			if name == "typ" {
				typ = s
			} else {
				alg = s
			}
		case "jwk":
			if mb.Value[0] != '{' {
				return nil, proofErr(ReasonProofHeader, "jwk is not an object")
			}
			jwk = mb.Value
		case "crit", "b64": // RFC 7515 §4.1.11, RFC 7797: nothing is understood beyond RFC 7515
			return nil, proofErr(ReasonProofHeader, "header parameter "+name+" not accepted")
		case "jku", "x5u", "x5c": // never fetched: the key is the jwk (RFC 9449 §4.2)
			return nil, proofErr(ReasonProofHeader, "header parameter "+name+" not accepted")
		case "enc", "zip": // a JWE, or compressed (RFC 7516 §4.1.2, §4.1.3)
			return nil, proofErr(ReasonProofHeader, "header parameter "+name+" not accepted")
		}
	}
	if t := string(typ); !strings.EqualFold(t, proofType) && !strings.EqualFold(t, "application/"+proofType) {
		return nil, proofErr(ReasonProofHeader, "typ "+quoteBytes(typ)+" is not "+proofType)
	}
	info, ok := v.alg(string(alg))
	if !ok {
		return nil, proofErr(ReasonProofAlg, "alg "+quoteBytes(alg)+" not accepted")
	}
	if jwk == nil {
		return nil, proofErr(ReasonProofHeader, "no jwk header parameter")
	}
	return parseJWK(jwk, string(alg), info)
}

// parseClaims reads the claims of a proof (RFC 9449 §4.2).
func parseClaims(payload []byte) (proofClaims, *Error) {
	var c proofClaims
	var buf [16]strictjson.Member
	ms, err := strictjson.ParseObject(buf[:0], payload)
	if err != nil {
		return c, proofErr(ReasonProofSyntax, "claims: "+err.Error())
	}
	for _, mb := range ms {
		var dst *[]byte
		switch string(mb.Name) {
		case "jti":
			dst = &c.jti
		case "htm":
			dst = &c.htm
		case "htu":
			dst = &c.htu
		case "ath":
			dst = &c.ath
		case "nonce":
			dst = &c.nonce
		case "iat":
			if b := mb.Value[0]; b != '-' && (b < '0' || b > '9') {
				return c, proofErr(ReasonIAT, "iat is not a number")
			}
			c.iat = mb.Value
			continue
		default:
			continue
		}
		s, err := strictjson.String(mb.Value)
		if err != nil {
			return c, proofErr(ReasonProofSyntax, "claim "+string(mb.Name)+" is not a string")
		}
		if s == nil {
			s = []byte{} // present and empty
		}
		*dst = s
	}
	return c, nil
}

// quoteBytes is quoteUntrusted for bytes, "missing" for nil.
func quoteBytes(b []byte) string {
	if b == nil {
		return "missing"
	}
	return quoteUntrusted(string(b))
}
