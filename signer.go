package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/dpopkit/dpop/internal/jws"
	jose "github.com/go-jose/go-jose/v4"
)

// JWS algorithm names a [Signer] can use (RFC 7518 §3.1, RFC 8037 §3.1).
const (
	algES256 = "ES256" // ECDSA P-256 with SHA-256
	algES384 = "ES384" // ECDSA P-384 with SHA-384
	algES512 = "ES512" // ECDSA P-521 with SHA-512
	algEdDSA = "EdDSA" // Ed25519
	algPS256 = "PS256" // RSASSA-PSS with SHA-256, the default for RSA keys
	algRS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256, by option only
)

// minRSABits is the smallest RSA modulus NewSigner accepts (RFC 7518 §3.3
// requires 2048 bits or more).
const minRSABits = 2048

// SignerOptions are the optional settings of [NewSigner] and
// [NewAssertionSigner]. A nil *SignerOptions means the defaults.
type SignerOptions struct {
	// Alg selects the JWS algorithm where the key allows more than one:
	// for RSA keys, PS256 (the default) or RS256. For other keys it must be
	// empty or the algorithm the key implies.
	Alg string

	// KeyID is for [NewAssertionSigner] only: the kid header of every
	// client assertion, the key's ID in the JWK Set registered for the
	// client, so that the server picks the right key without trying each.
	// NewSigner refuses it: a DPoP proof carries its public key, not a kid
	// (RFC 9449 §4.2).
	KeyID string
}

// Signer makes DPoP proofs (RFC 9449 §4) with one private key. It is safe
// for concurrent use.
//
// The key's public JWK, the protected header and the RFC 7638 thumbprint are
// computed once, by [NewSigner]; each proof then costs the claims, a base64
// encoding and one signature. The key is used only through its
// crypto.Signer interface, so keys held in an HSM, a KMS or a TPM work.
type Signer struct {
	key        crypto.Signer
	alg        string
	opts       crypto.SignerOpts
	ecSize     int    // bytes in each of r and s; 0 for non-ECDSA keys
	header     []byte // base64url(protected header) + "."
	thumbprint string
}

// NewSigner returns a Signer for key, choosing the JWS algorithm from its
// public key: P-256 → ES256, P-384 → ES384, P-521 → ES512, Ed25519 → EdDSA,
// RSA of 2048 bits or more → PS256 (RS256 with [SignerOptions.Alg]).
// Any other key is an error here, never at the first request.
func NewSigner(key crypto.Signer, opts *SignerOptions) (*Signer, error) {
	if key == nil {
		return nil, errors.New("dpop: NewSigner: key is nil")
	}
	var want string
	if opts != nil {
		if opts.KeyID != "" {
			return nil, errors.New("dpop: NewSigner: KeyID is for client assertions (NewAssertionSigner); a DPoP proof carries its public key, not a kid")
		}
		want = opts.Alg
	}
	s := &Signer{key: key}
	pub := key.Public()
	if err := s.setAlg(pub, want); err != nil {
		return nil, err
	}
	if want != "" && want != s.alg {
		return nil, fmt.Errorf("dpop: NewSigner: alg %q does not fit a key that signs %s", want, s.alg)
	}

	jwk := jose.JSONWebKey{Key: pub}
	pubJWK, err := jwk.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("dpop: NewSigner: marshal JWK: %w", err)
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("dpop: NewSigner: thumbprint: %w", err)
	}
	s.thumbprint = base64.RawURLEncoding.EncodeToString(tp)

	header, err := json.Marshal(struct {
		Typ string          `json:"typ"`
		Alg string          `json:"alg"`
		JWK json.RawMessage `json:"jwk"`
	}{"dpop+jwt", s.alg, pubJWK})
	if err != nil {
		return nil, fmt.Errorf("dpop: NewSigner: marshal header: %w", err)
	}
	s.header = append(jws.AppendBase64(nil, header), '.')
	return s, nil
}

// setAlg sets s's algorithm, signing options and ECDSA size from its public
// key pub and the algorithm the caller wants, if any.
func (s *Signer) setAlg(pub crypto.PublicKey, want string) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return errors.New("dpop: NewSigner: ECDSA public key is nil")
		}
		switch k.Curve {
		case elliptic.P256():
			s.alg, s.opts = algES256, crypto.SHA256
		case elliptic.P384():
			s.alg, s.opts = algES384, crypto.SHA384
		case elliptic.P521():
			s.alg, s.opts = algES512, crypto.SHA512
		default:
			return fmt.Errorf("dpop: NewSigner: unsupported ECDSA curve %s (want P-256, P-384 or P-521)", k.Curve.Params().Name)
		}
		s.ecSize = (k.Curve.Params().BitSize + 7) / 8
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("dpop: NewSigner: Ed25519 public key is %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		s.alg, s.opts = algEdDSA, crypto.Hash(0)
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return errors.New("dpop: NewSigner: RSA public key is nil")
		}
		if bits := k.N.BitLen(); bits < minRSABits {
			return fmt.Errorf("dpop: NewSigner: RSA key is %d bits, want at least %d", bits, minRSABits)
		}
		switch want {
		case "", algPS256:
			s.alg = algPS256
			s.opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
		case algRS256:
			s.alg, s.opts = algRS256, crypto.SHA256
		default:
			return fmt.Errorf("dpop: NewSigner: alg %q does not fit an RSA key (want PS256 or RS256)", want)
		}
	default:
		return fmt.Errorf("dpop: NewSigner: unsupported public key type %T (want ECDSA P-256/P-384/P-521, Ed25519 or RSA)", pub)
	}
	return nil
}

// Alg returns the JWS algorithm of the signer's proofs, such as "ES256";
// "" for a nil Signer or one not made by [NewSigner].
func (s *Signer) Alg() string {
	if s == nil {
		return ""
	}
	return s.alg
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of the signer's public
// key, base64url-encoded without padding: the "jkt" of RFC 9449 §6.1, the
// value of the dpop_jkt authorization request parameter (§10) and of an
// access token's cnf.jkt claim; "" for a nil Signer or one not made by
// [NewSigner].
func (s *Signer) Thumbprint() string {
	if s == nil {
		return ""
	}
	return s.thumbprint
}

// Public returns the signer's public key, or nil for a Signer not made by
// [NewSigner].
func (s *Signer) Public() crypto.PublicKey {
	if s == nil || s.key == nil {
		return nil
	}
	return s.key.Public()
}

// errZeroSigner is the error of a Signer not made by NewSigner.
var errZeroSigner = errors.New("dpop: Signer has no key: make it with NewSigner")

func (s Signer) summary() summary {
	return summary{"dpop.Signer", []slog.Attr{slog.String("alg", s.alg), slog.String("jkt", s.thumbprint)}}
}

// Format prints the signer's algorithm and key thumbprint, never its key,
// whatever the verb.
func (s Signer) Format(f fmt.State, verb rune) { s.summary().format(f) }

// LogValue is the summary Format prints, for log/slog.
func (s Signer) LogValue() slog.Value { return s.summary().logValue() }

// MarshalJSON is the summary Format prints, as a JSON object.
func (s Signer) MarshalJSON() ([]byte, error) { return s.summary().marshalJSON() }

// ProofOptions are the optional inputs of [Signer.Proof]. A nil
// *ProofOptions means a proof with neither.
type ProofOptions struct {
	// AccessToken, when set, is the token the request presents; its hash
	// becomes the proof's ath claim (RFC 9449 §4.2). Leave it empty for
	// token-endpoint requests.
	AccessToken string

	// Nonce, when set, is a server-provided nonce (RFC 9449 §8, §9). It must
	// have the syntax of §8.1.
	Nonce string
}

func (o ProofOptions) summary() summary {
	return summary{"dpop.ProofOptions", []slog.Attr{slog.Any("AccessToken", part(o.AccessToken != "")), slog.String("Nonce", o.Nonce)}}
}

// Format prints whether the options carry an access token, never the
// token, and the nonce, whatever the verb.
func (o ProofOptions) Format(f fmt.State, verb rune) { o.summary().format(f) }

// LogValue is the summary Format prints, for log/slog.
func (o ProofOptions) LogValue() slog.Value { return o.summary().logValue() }

// MarshalJSON is the summary Format prints, as a JSON object: the access
// token is left out.
func (o ProofOptions) MarshalJSON() ([]byte, error) { return o.summary().marshalJSON() }

// Proof returns a new DPoP proof JWT (RFC 9449 §4.2) for a request with
// this HTTP method to rawURL, an absolute http or https URL. The htu claim
// is rawURL without its query, fragment and userinfo, with the scheme and
// host lower-cased and a default port removed. Every call draws a new jti.
//
// Most programs never call Proof: [Transport] does, for every request.
func (s *Signer) Proof(method, rawURL string, opts *ProofOptions) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// Not the url.Error itself: its text has the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("dpop: proof URL is not a valid URL: %w", err)
	}
	if err := checkURL(u, ""); err != nil {
		return "", err
	}
	if method == "" {
		return "", errors.New("dpop: proof method is empty")
	}
	var ath, nonce string
	if opts != nil {
		if opts.AccessToken != "" {
			ath = accessTokenHash(opts.AccessToken)
		}
		if opts.Nonce != "" {
			if !validNonce(opts.Nonce) {
				return "", fmt.Errorf("dpop: nonce %s is not a valid DPoP nonce (RFC 9449 §8.1)", quote(opts.Nonce))
			}
			nonce = opts.Nonce
		}
	}
	return s.proof(method, originOf(u, ""), u, ath, nonce, timeNow().Unix())
}

// timeNow is the package's one clock: the iat of proofs and client
// assertions, token expiries and the reuse source's comparisons with them,
// device polling deadlines, the server Date that CheckResponse compares,
// and the durations in traces. A Transport's Now, when set, stands in for
// it in that Transport's proofs. Tests replace it.
var timeNow = time.Now

// bufPool holds scratch buffers for proofs, so a proof allocates little
// beyond its result and the signature.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledBuf bounds the buffers kept for reuse, so one request with a huge
// path does not pin its buffer forever.
const maxPooledBuf = 16 << 10

// proof builds and signs one proof for a request to u at origin o, issued
// at iat (Unix seconds). ath is the base64url SHA-256 of the access token,
// or empty; nonce is empty or already valid.
func (s *Signer) proof(method string, o origin, u *url.URL, ath, nonce string, iat int64) (string, error) {
	if s == nil || s.key == nil {
		return "", errZeroSigner
	}
	var jti [16]byte // 128 bits (RFC 9449 §11.1 wants enough entropy to be unguessable)
	rand.Read(jti[:])

	bp := bufPool.Get().(*[]byte)
	claims := (*bp)[:0]
	claims = append(claims, `{"jti":"`...)
	claims = jws.AppendBase64(claims, jti[:])
	claims = append(claims, `","htm":`...)
	claims = jws.AppendString(claims, method)
	claims = append(claims, `,"htu":`...)
	claims = appendHTU(append(claims, '"'), o, u)
	claims = append(claims, `","iat":`...)
	claims = strconv.AppendInt(claims, iat, 10)
	if ath != "" {
		claims = append(claims, `,"ath":"`...)
		claims = append(claims, ath...) // base64url: nothing to escape
		claims = append(claims, '"')
	}
	if nonce != "" {
		claims = append(claims, `,"nonce":`...)
		claims = jws.AppendString(claims, nonce)
	}
	claims = append(claims, '}')

	// Encode header.claims after the claims in the same buffer, then the
	// signature after that; the result is copied out once, as a string.
	n := len(claims)
	out := append(claims, s.header...)
	out = jws.AppendBase64(out, claims)
	out, err := s.appendSignature(out, out[n:])
	if err != nil {
		*bp = out[:0]
		bufPool.Put(bp)
		return "", fmt.Errorf("dpop: sign proof: %w", err)
	}
	proof := string(out[n:])
	if cap(out) <= maxPooledBuf {
		*bp = out[:0]
		bufPool.Put(bp)
	}
	return proof, nil
}

// appendSignature signs msg with s's key and appends "." and the
// base64url signature to dst: for ECDSA, the fixed-width r||s of RFC 7518
// §3.4. msg may alias dst; it is read before dst grows.
func (s *Signer) appendSignature(dst, msg []byte) ([]byte, error) {
	sig, err := crypto.SignMessage(s.key, rand.Reader, msg, s.opts)
	if err != nil {
		return dst, err
	}
	if s.ecSize > 0 {
		var raw [132]byte // r||s for P-521
		if sig, err = jws.AppendECDSA(raw[:0], sig, s.ecSize); err != nil {
			return dst, err
		}
	}
	return jws.AppendBase64(append(dst, '.'), sig), nil
}

// accessTokenHash returns the ath claim for token: base64url(SHA-256) of its
// ASCII bytes (RFC 9449 §4.2).
func accessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
