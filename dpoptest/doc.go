// Package dpoptest provides a strict, in-process OAuth 2.0 authorization
// server and resource server that speak DPoP ([RFC 9449]), for tests, in the
// spirit of net/http/httptest.
//
// It checks DPoP proofs with the verifier of the resource server,
// [github.com/dpopkit/dpop/resource], so the repository has one proof
// verifier (the signature, the jwk and its RFC 7638 thumbprint, the claims,
// htu after the RFC 3986 normalisation of internal/htu, the iat window and
// ath). What stays its own, and independent of that verifier: the strict
// header check before it (typ exactly "dpop+jwt", alg in its list, no
// private jwk member), the FAPI 2.0 string-equal htu, the nonces and their
// window, the jti replay cache, the tokens it issues and checks, the
// client authentication and the error codes it answers. It never imports
// the client package. Independent of both the client and the resource
// server: the client's own tests, which verify its proofs with go-jose, and
// the resource package's tests, which make their proofs without the client.
//
// # Verifier
//
// [Verifier] checks one DPoP proof as RFC 9449 §4.3 prescribes and keeps a
// jti replay cache. It can be used on its own in a handler.
//
// # Server
//
// [NewServer] starts a [Server] on 127.0.0.1 with
//
//   - a token endpoint (RFC 6749, RFC 9449 §5) for the client_credentials,
//     authorization_code (with PKCE S256, RFC 7636), refresh_token and
//     device_code (RFC 8628) grants, answering DPoP-bound JWT access tokens
//     (RFC 9068 style, cnf.jkt per RFC 9449 §6);
//   - an authorization endpoint that approves the test user "alice" without
//     a browser, with dpop_jkt (RFC 9449 §10) and pushed authorization
//     requests (RFC 9126);
//   - a device authorization endpoint, approved with [Server.ApproveDevice];
//   - a token revocation endpoint (RFC 7009) for access and refresh tokens,
//     and [Server.Revoke] to revoke one without a request;
//   - a resource server (RFC 9449 §7) at every path under "/api/" and at
//     anything registered with [Server.Handle];
//   - authorization server metadata (RFC 8414) at
//     "/.well-known/oauth-authorization-server" and protected resource
//     metadata (RFC 9728) at "/.well-known/oauth-protected-resource";
//   - server-provided nonces (RFC 9449 §8, §9) when [Config.RequireNonce] is
//     set, with separate values for the authorization server and the
//     resource server, rotated by count ([Config.NonceEvery]) or time
//     ([Config.NonceTTL]), with a window of recent values
//     ([Config.NonceWindow]), announced on successes or only in challenges
//     ([Config.NoNonceOnSuccess]);
//   - a clock of its own ([Config.Now], [Config.ClockOffset]) that its Date
//     headers, its iat checks and its token lifetimes follow;
//   - a record of every request ([Server.Requests]) so tests can count
//     round trips and see which check failed.
//
// The endpoints' URLs come from [Server.Endpoint] and [Server.PARURL], or
// from the metadata.
//
// # FAPI 2.0
//
// [Config.FAPI2] adds what the OpenID Foundation's conformance suite checks
// of a FAPI 2.0 client with DPoP: PAR for every authorization request,
// private_key_jwt client authentication ([Client.PublicKey]), PS256, ES256
// or EdDSA proofs, htu string-equal to the request URL, a nonce challenge
// on every request. Clients registered with a PublicKey authenticate with
// private_key_jwt outside that mode too.
//
// The server is strict on purpose: it accepts only the current nonce, a jti
// only once, a code only once, and it rejects every deviation with the error
// code the RFCs prescribe.
//
// [RFC 9449]: https://www.rfc-editor.org/rfc/rfc9449
package dpoptest
