package dpop

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
)

// VerifyAuthResponse checks the authorization response, the redirect to
// the client, and returns its authorization code, given the redirect's
// query and the state the request was sent with (RFC 6749 §4.1.2). It
// checks, in order:
//
//   - state equals state, compared in constant time (§10.12: otherwise the
//     response may be a forged redirect, cross-site request forgery);
//   - iss equals m.Issuer when present, and is present when
//     m.AuthorizationResponseISSParameterSupported (RFC 9207 §2.4: a
//     response from another server is a mix-up attack);
//   - error: an [*AuthResponseError];
//   - code is present.
//
// A parameter that appears more than once is an error (RFC 6749 §3.1).
func (m *Metadata) VerifyAuthResponse(query url.Values, state string) (code string, err error) {
	if m == nil {
		return "", errors.New("dpop: Metadata.VerifyAuthResponse: the Metadata is nil")
	}
	return verifyAuthResponse(query, state, m.Issuer, m.AuthorizationResponseISSParameterSupported)
}

// VerifyAuthResponse is [Metadata.VerifyAuthResponse] with c.Issuer as the
// issuer; iss is required when FAPI2 is set (FAPI 2.0 Security Profile
// §5.3.2.2), and must equal c.Issuer whenever it is present. A Config
// does not hold the server's metadata: outside FAPI2, use
// [Metadata.VerifyAuthResponse] to require iss from a server whose
// metadata says it sends it (RFC 9207 §3).
func (c *Config) VerifyAuthResponse(query url.Values, state string) (code string, err error) {
	return verifyAuthResponse(query, state, c.Issuer, c.FAPI2)
}

func verifyAuthResponse(query url.Values, state, issuer string, requireISS bool) (string, error) {
	if state == "" {
		return "", errors.New("dpop: authorization response: the expected state is empty")
	}
	for _, p := range [...]string{"state", "iss", "code", "error", "error_description", "error_uri"} {
		if len(query[p]) > 1 {
			return "", fmt.Errorf("dpop: authorization response has %d %s parameters (RFC 6749 §3.1)", len(query[p]), p)
		}
	}
	if subtle.ConstantTimeCompare([]byte(query.Get("state")), []byte(state)) != 1 {
		return "", errors.New("dpop: authorization response state does not match the request's (RFC 6749 §10.12)")
	}
	switch iss, ok := query["iss"]; {
	case ok && len(iss) == 0: // present without a value: made by a caller's parsing, never by url.ParseQuery
		return "", errors.New("dpop: authorization response has an iss parameter without a value (RFC 9207 §2)")
	case ok && issuer == "":
		return "", errors.New("dpop: authorization response has iss, but the expected issuer is empty (RFC 9207)")
	case ok && iss[0] != issuer:
		return "", fmt.Errorf("dpop: authorization response names issuer %s; want %s (RFC 9207 §2.4: a mix-up)", quote(iss[0]), quote(issuer))
	case !ok && requireISS:
		return "", errors.New("dpop: authorization response has no iss, which the server always sends (RFC 9207 §2.4)")
	}
	if query.Has("error") {
		return "", &AuthResponseError{ErrorCode: query.Get("error"), Description: query.Get("error_description"), URI: query.Get("error_uri")}
	}
	code := query.Get("code")
	if code == "" {
		return "", errors.New("dpop: authorization response has neither code nor error")
	}
	return code, nil
}
