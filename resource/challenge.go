package resource

import (
	"errors"
	"net/http"
)

// Challenge returns the answer to a request refused with err, an error of
// [Verifier.Check] or [Verifier.Verify] (RFC 9449 §7.1, RFC 6750 §3): its
// status, and the value of the WWW-Authenticate header,
//
//	DPoP error="invalid_dpop_proof", error_description="…", algs="ES256 …"
//
// with resource_metadata="…" when [Config.ResourceMetadata] is set
// (RFC 9728 §5.1), and a Bearer challenge after it when
// [Config.AllowBearer] is. A request without credentials the server
// accepts gets a challenge without error (RFC 6750 §3.1). The description
// is fixed per [Reason]: nothing the client sent is echoed. For a 503 the
// challenge is "". Any other error gets 401 and the challenge without
// error.
func (v *Verifier) Challenge(err error) (status int, wwwAuthenticate string) {
	var e *Error
	if !errors.As(err, &e) {
		return http.StatusUnauthorized, v.challenge(nil)
	}
	if status = e.Status(); status == http.StatusServiceUnavailable {
		return status, ""
	}
	return status, v.challenge(e)
}

// challenge builds the WWW-Authenticate value for the refusal e (nil:
// none).
func (v *Verifier) challenge(e *Error) string {
	c := challengeWriter{b: make([]byte, 0, 160)}
	c.scheme("DPoP")
	if e != nil && e.Code != "" && !e.bearer {
		c.param("error", string(e.Code))
		c.param("error_description", description(e.Reason))
	}
	c.param("algs", v.algsParam)
	if v.metadata != "" {
		c.param("resource_metadata", v.metadata)
	}
	if v.allowBearer {
		c.scheme("Bearer")
		if e != nil && e.Code != "" && e.bearer {
			c.param("error", string(e.Code))
			c.param("error_description", description(e.Reason))
		}
		if v.metadata != "" {
			c.param("resource_metadata", v.metadata)
		}
	}
	return string(c.b)
}

// challengeWriter writes challenges (RFC 9110 §11.6.1): auth-scheme
// [ 1*SP #auth-param ], separated by ", ".
type challengeWriter struct {
	b      []byte
	params int // params of the current challenge
}

func (c *challengeWriter) scheme(s string) {
	if len(c.b) > 0 {
		c.b = append(c.b, ", "...)
	}
	c.b = append(c.b, s...)
	c.params = 0
}

// param appends name="value", value written as a quoted-string (RFC 9110
// §5.6.4): a quote and a backslash escaped, what a quoted-string cannot
// hold made "?".
func (c *challengeWriter) param(name, value string) {
	if c.params == 0 {
		c.b = append(c.b, ' ')
	} else {
		c.b = append(c.b, ", "...)
	}
	c.params++
	c.b = append(c.b, name...)
	c.b = append(c.b, `="`...)
	for i := 0; i < len(value); i++ {
		switch ch := value[i]; {
		case ch == '"' || ch == '\\':
			c.b = append(c.b, '\\', ch)
		case ch == '\t' || ch >= ' ' && ch < 0x7f:
			c.b = append(c.b, ch)
		default:
			c.b = append(c.b, '?')
		}
	}
	c.b = append(c.b, '"')
}

// quotable reports whether s can stand in a quoted-string as it is.
func quotable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// description returns the error_description of a refusal (RFC 6750 §3):
// fixed text for each reason, for a developer reading the answer.
func description(r Reason) string {
	switch r {
	case ReasonMalformed:
		return "the Authorization or DPoP header is repeated or malformed"
	case ReasonTooLarge:
		return "a header is too large"
	case ReasonURL:
		return "the request URL is not usable"
	case ReasonForwarded:
		return "the forwarding headers are not usable"
	case ReasonMissingProof:
		return "a DPoP proof is required"
	case ReasonProofSyntax:
		return "the DPoP proof is not a well-formed JWT"
	case ReasonProofHeader:
		return "the DPoP proof header is not acceptable (typ dpop+jwt, a jwk, no crit, b64, jku, x5u or x5c)"
	case ReasonProofAlg:
		return "the DPoP proof alg is not accepted"
	case ReasonProofKey:
		return "the DPoP proof jwk is not an acceptable public key for its alg"
	case ReasonProofSignature:
		return "the DPoP proof signature does not verify"
	case ReasonJTI:
		return "the DPoP proof has no jti"
	case ReasonHTM:
		return "the DPoP proof htm does not match the request method"
	case ReasonHTU:
		return "the DPoP proof htu does not match the request URL"
	case ReasonIAT:
		return "the DPoP proof iat is missing or not recent"
	case ReasonATH:
		return "the DPoP proof ath does not match the access token"
	case ReasonNonce:
		return "the resource server requires a nonce in the DPoP proof"
	case ReasonToken:
		return "the access token is not valid"
	case ReasonUnbound:
		return "the access token is not DPoP-bound"
	case ReasonBoundBearer:
		return "a DPoP-bound access token requires the DPoP scheme"
	case ReasonJKT:
		return "the access token is bound to another key"
	case ReasonReplay:
		return "the DPoP proof was used before"
	case ReasonReplayQuota:
		return "too many DPoP proofs of this key at once"
	}
	return "the request is refused"
}
