package dpop

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/dpopkit/dpop/internal/jws"
)

// clientAssertionType is the client_assertion_type of a JWT client
// assertion (RFC 7523 §2.2).
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is how long a client assertion is valid: its exp is
// its iat plus assertionLifetime. Each assertion is sent once, right after
// it is signed, so a short lifetime costs nothing and bounds the use of
// one that leaks.
const assertionLifetime = 60 * time.Second

// AssertionSigner signs client assertions: the JWTs with which a
// confidential client authenticates to the authorization server by the
// private_key_jwt method (RFC 7523 §2.2 and §3, OpenID Connect Core §9),
// instead of with a shared secret. Set it as [Config.ClientAssertion] or
// [ClientCredentials.ClientAssertion]: every request that authenticates the
// client then carries a new assertion, every attempt included.
//
// The algorithm comes from the key, as for [NewSigner]. Any
// [crypto.Signer] works, including keys held by an HSM or a KMS. The key
// is the client's, registered with the server; it is a different key from
// the [Signer]'s DPoP key unless the caller chooses to use one key for
// both. An AssertionSigner is safe for concurrent use; printing it shows
// its algorithm and key ID, never the key.
type AssertionSigner struct {
	s      *Signer // the key, its alg and signature options; its DPoP header is unused
	kid    string
	header []byte // base64url(protected header) + "."
}

// NewAssertionSigner returns an AssertionSigner for key. The algorithm is
// chosen from the public key as [NewSigner] chooses it, and opts.Alg
// selects one where the key allows more than one; any other key is an
// error here, not at the first request. opts.KeyID, when set, is the kid
// header of every assertion. A nil opts means the defaults.
func NewAssertionSigner(key crypto.Signer, opts *SignerOptions) (*AssertionSigner, error) {
	var so *SignerOptions
	var kid string
	if opts != nil {
		so, kid = &SignerOptions{Alg: opts.Alg}, opts.KeyID
	}
	s, err := NewSigner(key, so)
	if err != nil {
		return nil, fmt.Errorf("dpop: NewAssertionSigner: %w", err)
	}
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid,omitempty"`
	}{s.alg, kid})
	if err != nil {
		return nil, fmt.Errorf("dpop: NewAssertionSigner: marshal header: %w", err)
	}
	return &AssertionSigner{s: s, kid: kid, header: append(jws.AppendBase64(nil, header), '.')}, nil
}

// Alg returns the JWS algorithm of the assertions, such as "PS256".
func (a *AssertionSigner) Alg() string {
	if a == nil || a.s == nil {
		return ""
	}
	return a.s.alg
}

// KeyID returns the kid of the assertions, or "".
func (a *AssertionSigner) KeyID() string {
	if a == nil {
		return ""
	}
	return a.kid
}

// Public returns the public key, the one to register for the client.
func (a *AssertionSigner) Public() crypto.PublicKey {
	if a == nil {
		return nil
	}
	return a.s.Public()
}

func (a AssertionSigner) summary() summary {
	if a.s == nil {
		return summary{name: "dpop.AssertionSigner"}
	}
	return summary{"dpop.AssertionSigner", []slog.Attr{slog.String("alg", a.s.alg), slog.String("kid", a.kid)}}
}

// Format prints the algorithm and key ID of a, never its key, whatever
// the verb.
func (a AssertionSigner) Format(f fmt.State, verb rune) { a.summary().format(f) }

// LogValue is the summary Format prints, for log/slog.
func (a AssertionSigner) LogValue() slog.Value { return a.summary().logValue() }

// MarshalJSON is the summary Format prints, as a JSON object.
func (a AssertionSigner) MarshalJSON() ([]byte, error) { return a.summary().marshalJSON() }

// Assertion returns a new client assertion (RFC 7523 §3) for clientID to
// present to the authorization server whose issuer identifier is audience:
// iss and sub are clientID, aud is audience as a single string (FAPI 2.0
// Security Profile §5.3.2.1 requires the issuer identifier there, and
// servers refuse the token endpoint URL or an array), jti is 128 random
// bits, iat is now and exp is iat + 60 seconds. Every call makes a
// new one: servers refuse an assertion they have seen (RFC 7523 §3 item 7).
//
// Most programs never call Assertion: [Config] and [ClientCredentials]
// do, for every attempt of every request. The assertion is a credential:
// do not log it.
func (a *AssertionSigner) Assertion(clientID, audience string) (string, error) {
	if a == nil || a.s == nil {
		return "", errors.New("dpop: client assertion: the AssertionSigner has no key: make it with NewAssertionSigner")
	}
	if clientID == "" {
		return "", errors.New("dpop: client assertion: client ID is empty")
	}
	if audience == "" {
		return "", errors.New("dpop: client assertion: audience (the issuer) is empty")
	}
	var jti [16]byte // 128 bits
	rand.Read(jti[:])
	now := timeNow().Unix()
	claims := make([]byte, 0, 192+2*len(clientID)+len(audience))
	claims = append(claims, `{"iss":`...)
	claims = jws.AppendString(claims, clientID)
	claims = append(claims, `,"sub":`...)
	claims = jws.AppendString(claims, clientID)
	claims = append(claims, `,"aud":`...)
	claims = jws.AppendString(claims, audience)
	claims = append(claims, `,"jti":"`...)
	claims = jws.AppendBase64(claims, jti[:])
	claims = append(claims, `","iat":`...)
	claims = strconv.AppendInt(claims, now, 10)
	claims = append(claims, `,"exp":`...)
	claims = strconv.AppendInt(claims, now+int64(assertionLifetime/time.Second), 10)
	claims = append(claims, '}')
	return signCompact(a.s, a.header, claims)
}

// signCompact returns the compact JWS of claims under the encoded header
// (with its trailing dot), signed with s's key.
func signCompact(s *Signer, header, claims []byte) (string, error) {
	out := make([]byte, 0, len(header)+len(claims)*4/3+4+len(header)/2+700)
	out = append(out, header...)
	out = jws.AppendBase64(out, claims)
	out, err := s.appendSignature(out, out)
	if err != nil {
		return "", fmt.Errorf("dpop: sign client assertion: %w", err)
	}
	return string(out), nil
}

// clientAuth is how the token requests of one grant configuration
// authenticate the client with private_key_jwt.
type clientAuth struct {
	assertion *AssertionSigner
	clientID  string
	audience  string // the issuer identifier
	fapi2     bool   // FAPI 2.0: an authorization_code grant must carry code_verifier
}

// maxTokenRequest bounds the form a token request may carry (a pushed
// authorization request with a request object is the largest).
const maxTokenRequest = 1 << 20

// clientAuthTransport adds a new client assertion to every token request
// and to every attempt of it. It sits above the DPoP [Transport] of the
// token client: it reads the form that x/oauth2 (or PAR, or revocation)
// built, adds client_assertion_type and a freshly signed client_assertion,
// and sets GetBody to sign another one each time it is called. The
// Transport's nonce retry calls GetBody, so the retry carries a new
// assertion (and a new proof): a server that checks the assertion before
// the proof has spent the first one already (RFC 7523 §3 item 7).
type clientAuthTransport struct {
	base http.RoundTripper
	auth *clientAuth
}

var _ http.RoundTripper = (*clientAuthTransport)(nil)

func (t *clientAuthTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	form, err := readTokenForm(req) // closes req.Body
	if err != nil {
		return nil, err
	}
	if err := t.auth.checkForm(req, form); err != nil {
		return nil, err
	}
	form.Set("client_id", t.auth.clientID)
	form.Set("client_assertion_type", clientAssertionType)
	prefix := form.Encode() + "&client_assertion="
	// What each attempt sends is recorded as it is made, for the
	// redaction of an error answer that echoes it: reading the body
	// again would sign another assertion, or fail to.
	sent := new(sentSecrets)
	sent.add(formSecrets(form)...)
	sign := func() ([]byte, error) {
		a, err := t.auth.assertion.Assertion(t.auth.clientID, t.auth.audience)
		if err != nil {
			return nil, err
		}
		sent.add(a)
		return append([]byte(prefix), url.QueryEscape(a)...), nil
	}
	body, err := sign()
	if err != nil {
		return nil, err
	}
	r2 := req.Clone(withSentSecrets(req.Context(), sent))
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	r2.GetBody = func() (io.ReadCloser, error) {
		b, err := sign()
		if err != nil {
			return nil, err
		}
		if len(b) != len(body) { // the request's ContentLength is fixed
			return nil, errors.New("dpop: client assertion changed length between attempts")
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return t.base.RoundTrip(r2)
}

// readTokenForm reads and closes the form body of a token request.
func readTokenForm(req *http.Request) (url.Values, error) {
	if req.Body == nil || req.Body == http.NoBody || req.Method != http.MethodPost {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("dpop: client authentication: the request is not a form POST")
	}
	defer req.Body.Close()
	if !formBody(req.Header) {
		return nil, errors.New("dpop: client authentication: the request body is not a form")
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, maxTokenRequest+1))
	if err != nil {
		return nil, fmt.Errorf("dpop: client authentication: read request body: %w", err)
	}
	if len(b) > maxTokenRequest {
		return nil, fmt.Errorf("dpop: client authentication: request body is larger than %d bytes", maxTokenRequest)
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, fmt.Errorf("dpop: client authentication: request body: %w", err)
	}
	return form, nil
}

// checkForm refuses a request that already authenticates the client
// another way (RFC 6749 §2.3: one method per request), and, in FAPI 2.0
// mode, a code exchange without a PKCE verifier.
func (a *clientAuth) checkForm(req *http.Request, form url.Values) error {
	switch {
	case req.Header.Get("Authorization") != "":
		return errors.New("dpop: client authentication: the request already has an Authorization header (RFC 6749 §2.3: one method only)")
	case form.Has("client_secret") || form.Has("client_assertion") || form.Has("client_assertion_type"):
		return errors.New("dpop: client authentication: the request already authenticates the client (RFC 6749 §2.3: one method only)")
	case form.Has("client_id") && form.Get("client_id") != a.clientID:
		return fmt.Errorf("dpop: client authentication: the request is for client_id %q, the assertion for %q", form.Get("client_id"), a.clientID)
	case a.fapi2 && form.Get("grant_type") == "authorization_code" && form.Get("code_verifier") == "":
		return errors.New("dpop: FAPI 2.0: the code exchange has no code_verifier (PKCE is required; pass oauth2.VerifierOption)")
	}
	return nil
}
