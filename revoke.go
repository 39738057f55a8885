package dpop

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
)

// Revoke asks the authorization server to revoke token at
// [Config.RevocationURL] (RFC 7009 §2.1), as on logout. hint is the
// token_type_hint of §2.1: "refresh_token", "access_token" or "" (the
// server then finds out).
// Revoking a refresh token revokes the access tokens of the same grant
// where the server supports that (§2.1); a server that issues self-contained
// (JWT) access tokens may be unable to revoke them at all.
//
// The request is authenticated as the token requests are, and carries a
// DPoP proof without a token (RFC 9449 §4): servers that ignore DPoP at
// this endpoint ignore it, and one that demands a nonce gets it, answered
// once as at the token endpoint.
//
// A 200 answer is success, also for a token that was already invalid
// (§2.2), whatever its body, which is not read (the client ignores its
// content); so is any other 2xx, such as 204. Any other answer is a
// [*TokenError] with Op "revocation", such as unsupported_token_type for a
// token the server cannot revoke; a 503 with Retry-After (in the Header of
// its [oauth2.RetrieveError]) means try again later (§2.2.1). The token
// never appears in errors.
func (c *Config) Revoke(ctx context.Context, token, hint string) error {
	if err := c.check(); err != nil {
		return err
	}
	switch {
	case c.RevocationURL == "":
		return errors.New("dpop: Config's RevocationURL is empty")
	case token == "":
		return errors.New("dpop: revocation: the token is empty")
	}
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	resp, err := sendForm(ctx, c.oauth2(), c.parts(), c.RevocationURL, form)
	if err != nil {
		return requestError("revocation", err)
	}
	return revocationResult(resp)
}

// revocationResult returns the outcome of a revocation answer (RFC 7009
// §2.2) and closes its body. A 2xx is a success, its body unread: large or
// slow, it changes nothing. Any other answer is the server's error, from
// as much of its body as arrives within the token response bound: a
// truncated body loses the error code, not the status and Retry-After.
func revocationResult(resp *http.Response) error {
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	body, _ := io.ReadAll(resp.Body) // bounded by the token-request transport
	return requestError("revocation", retrieveError(resp, body))
}
