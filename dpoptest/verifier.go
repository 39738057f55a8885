package dpoptest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dpopkit/dpop/internal/proofcheck"
	_ "github.com/dpopkit/dpop/resource" // fills proofcheck.New
	"github.com/go-jose/go-jose/v4"
)

// defaultAlgs are the JWS algorithms a [Verifier] accepts when its Algs
// field is nil, in the order the servers advertise them (RFC 9449 §5.1
// dpop_signing_alg_values_supported, §7.1 algs).
var defaultAlgs = []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256"}

const (
	proofType      = "dpop+jwt"
	defaultMaxSkew = 60 * time.Second
	maxProofLen    = 16 << 10
)

// Verifier checks DPoP proofs as RFC 9449 §4.3 prescribes: its header
// strictly, then the signature and the claims with the checks of the
// resource server (package resource).
// It keeps a bounded cache of the jti values of accepted proofs and rejects
// a proof whose jti it has seen before (RFC 9449 §11.1).
//
// The zero value is ready to use with the defaults documented on each field.
// The fields must not be changed after the first call to [Verifier.Verify].
// A Verifier is safe for concurrent use.
type Verifier struct {
	// Algs are the accepted JWS "alg" values. If nil: ES256, ES384, ES512,
	// EdDSA, PS256 and RS256.
	// "none" and the symmetric HS* algorithms are never accepted
	// (RFC 9449 §4.3 point 5), even when listed. An algorithm package
	// resource does not verify makes Verify refuse every proof.
	Algs []string

	// MaxSkew bounds |iat - now| (RFC 9449 §4.3 point 11, §11.1).
	// If zero, 60 seconds is used.
	MaxSkew time.Duration

	// Now returns the current time. If nil, time.Now is used.
	Now func() time.Time

	mu    sync.Mutex // guards seen
	seen  jtiCache
	setup sync.Once
	algs  []jose.SignatureAlgorithm // allowed algs, without none and HS*

	checker    proofcheck.Checker // package resource's proof checks
	checkerErr error              // why there is no checker: an alg package resource does not verify
}

// Proof is a DPoP proof that passed [Verifier.Verify] (RFC 9449 §4.2).
type Proof struct {
	Raw        string          // the compact JWS as received
	Alg        string          // the JWS "alg" header
	JWK        jose.JSONWebKey // the public key from the "jwk" header
	Thumbprint string          // RFC 7638 SHA-256 thumbprint of JWK, base64url without padding (the jkt)
	JTI        string          // "jti" claim
	HTM        string          // "htm" claim
	HTU        string          // "htu" claim, as sent
	ATH        string          // "ath" claim, "" when absent
	Nonce      string          // "nonce" claim, "" when absent
	IAT        time.Time       // "iat" claim
}

// ProofError reports which RFC 9449 §4.3 check a DPoP proof failed.
// Check is one of "header", "typ", "alg", "jwk", "jws", "signature",
// "claims", "jti", "htm", "htu", "iat" or "ath".
type ProofError struct {
	Check string
	Err   error
}

// Error returns "dpoptest: invalid DPoP proof: <check>: <reason>".
func (e *ProofError) Error() string {
	return "dpoptest: invalid DPoP proof: " + e.Check + ": " + e.Err.Error()
}

// Unwrap returns the underlying cause.
func (e *ProofError) Unwrap() error { return e.Err }

func proofErr(check, format string, args ...any) *ProofError {
	return &ProofError{Check: check, Err: fmt.Errorf(format, args...)}
}

// AllowedAlgs returns a new slice of the algorithms the Verifier accepts:
// Algs (or its default) without "none" and HS*. Servers advertise this
// list.
func (v *Verifier) AllowedAlgs() []string {
	v.init()
	out := make([]string, len(v.algs))
	for i, a := range v.algs {
		out[i] = string(a)
	}
	return out
}

func (v *Verifier) init() {
	v.setup.Do(func() {
		algs := v.Algs
		if algs == nil {
			algs = defaultAlgs
		}
		for _, a := range algs {
			if forbiddenAlg(a) {
				continue
			}
			v.algs = append(v.algs, jose.SignatureAlgorithm(a))
		}
		names := make([]string, len(v.algs))
		for i, a := range v.algs {
			names[i] = string(a)
		}
		// The iat window is symmetric here: MaxSkew both ways.
		v.checker, v.checkerErr = proofcheck.New(proofcheck.Config{Algs: names, MaxAge: v.maxSkew(), MaxFuture: v.maxSkew(), Now: v.now})
	})
}

func forbiddenAlg(a string) bool {
	return a == "" || strings.EqualFold(a, "none") || strings.HasPrefix(strings.ToUpper(a), "HS")
}

func (v *Verifier) maxSkew() time.Duration {
	if v.MaxSkew > 0 {
		return v.MaxSkew
	}
	return defaultMaxSkew
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Verify checks one DPoP proof for a request with this method and URL
// (RFC 9449 §4.3). The htu claim is compared with url after normalising both
// (RFC 9449 §4.3 point 9, RFC 3986 §6): scheme and host lower case, default
// port dropped, query and fragment ignored, the path as sent on the wire.
//
// accessToken is the access token presented with the request, or "" when
// none is: then the proof must not carry "ath"; otherwise "ath" must equal
// base64url(SHA-256(accessToken)) (RFC 9449 §4.3 point 12, §7).
//
// Verify does not check the "nonce" claim; the caller compares Proof.Nonce
// with the nonce it issued (RFC 9449 §8, §9). A proof that passes every check
// has its jti recorded; a later proof with the same jti is rejected.
// Every failure is a *[ProofError].
//
// The header is checked here first, strictly (typ exactly "dpop+jwt", no
// private jwk member); the signature and the claims are checked by the
// resource server's verifier (package resource), the one verifier of the
// repository.
func (v *Verifier) Verify(proof, method, url, accessToken string) (*Proof, error) {
	v.init()
	if v.checkerErr != nil {
		return nil, &ProofError{Check: "alg", Err: v.checkerErr}
	}
	if proof == "" {
		return nil, proofErr("header", "empty proof")
	}
	if len(proof) > maxProofLen {
		return nil, proofErr("header", "proof longer than %d bytes", maxProofLen)
	}
	if strings.Count(proof, ".") != 2 {
		return nil, proofErr("jws", "not a compact JWS")
	}
	if _, err := precheckHeader(proof[:strings.IndexByte(proof, '.')], v.algs); err != nil {
		return nil, err
	}
	checked, fail := v.checker.Check(proof, method, url, accessToken)
	if fail != nil {
		return nil, &ProofError{Check: checkOf(fail, proof), Err: fail.Err}
	}
	p, err := proofOf(proof, checked)
	if err != nil {
		return nil, err
	}
	now := v.now()
	v.mu.Lock()
	fresh := v.seen.add(p.JTI, now, now.Add(2*v.maxSkew()))
	v.mu.Unlock()
	if !fresh {
		return nil, proofErr("jti", "jti %q replayed", p.JTI)
	}
	return p, nil
}

// checkOf names the check of a refusal of package resource, by its reason.
func checkOf(f *proofcheck.Failure, proof string) string {
	switch f.Reason {
	case "too_large":
		return "header"
	case "proof_syntax":
		if strings.HasPrefix(f.Err.Error(), "claim") {
			return "claims"
		}
		return "jws"
	case "proof_header":
		return "header"
	case "proof_alg":
		return "alg"
	case "proof_key":
		return "jwk"
	case "proof_signature":
		return "signature"
	case "jti", "htm", "htu", "ath":
		return f.Reason
	case "iat":
		// An iat that is there but not a number is a malformed claim set.
		if c, err := payloadClaims(proof); err == nil && c.IAT != nil && (c.IAT[0] < '0' || c.IAT[0] > '9') {
			return "claims"
		}
		return "iat"
	}
	return "jws"
}

// proofClaims are the claims of a proof (RFC 9449 §4.2), pointers so that
// absent and empty differ.
type proofClaims struct {
	JTI   *string         `json:"jti"`
	HTM   *string         `json:"htm"`
	HTU   *string         `json:"htu"`
	IAT   json.RawMessage `json:"iat"`
	ATH   *string         `json:"ath"`
	Nonce *string         `json:"nonce"`
}

// payloadClaims decodes the claims of a compact JWS, without checking it.
func payloadClaims(proof string) (*proofClaims, error) {
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var c proofClaims
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&c); err != nil || dec.More() {
		return nil, fmt.Errorf("payload is not one JSON object of the DPoP claims (%v)", err)
	}
	return &c, nil
}

// proofOf fills the Proof of a proof package resource verified.
func proofOf(raw string, checked *proofcheck.Proof) (*Proof, error) {
	c, err := payloadClaims(raw)
	if err != nil {
		return nil, &ProofError{Check: "claims", Err: err}
	}
	f, err := strconv.ParseFloat(string(c.IAT), 64)
	if err != nil {
		return nil, proofErr("claims", "iat %s is not a NumericDate", c.IAT)
	}
	sec, frac := math.Modf(f)
	return &Proof{
		Raw:        raw,
		Alg:        checked.Alg,
		JWK:        jose.JSONWebKey{Key: checked.Key, Algorithm: checked.Alg},
		Thumbprint: checked.JKT,
		JTI:        deref(c.JTI),
		HTM:        deref(c.HTM),
		HTU:        deref(c.HTU),
		ATH:        deref(c.ATH),
		Nonce:      deref(c.Nonce),
		IAT:        time.Unix(int64(sec), int64(frac*1e9)),
	}, nil
}

// precheckHeader decodes the protected header itself so that the typ, alg
// and jwk failures carry their own check name (RFC 9449 §4.3 points 4–7).
func precheckHeader(b64 string, allowed []jose.SignatureAlgorithm) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return "", proofErr("header", "protected header is not base64url: %v", err)
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", proofErr("header", "protected header is not a JSON object: %v", err)
	}
	var typ, alg string
	if json.Unmarshal(h["typ"], &typ) != nil || typ != proofType {
		return "", proofErr("typ", "typ %s, want %q", orMissing(h["typ"]), proofType)
	}
	if json.Unmarshal(h["alg"], &alg) != nil || forbiddenAlg(alg) {
		return "", proofErr("alg", "alg %s not allowed", orMissing(h["alg"]))
	}
	ok := false
	for _, a := range allowed {
		ok = ok || string(a) == alg
	}
	if !ok {
		return "", proofErr("alg", "alg %q not in %v", alg, allowed)
	}
	var jwk map[string]json.RawMessage
	if h["jwk"] == nil || json.Unmarshal(h["jwk"], &jwk) != nil {
		return "", proofErr("jwk", "jwk header missing or not an object")
	}
	for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
		if _, ok := jwk[m]; ok {
			return "", proofErr("jwk", "jwk carries private or symmetric member %q", m)
		}
	}
	return alg, nil
}

// athOf returns the "ath" value for an access token: base64url (no padding)
// of its SHA-256 hash (RFC 9449 §4.2).
func athOf(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func orMissing(r json.RawMessage) string {
	if r == nil {
		return "missing"
	}
	return string(r)
}
