// Package dpoptest provides a strict, in-process OAuth 2.0 authorization
// server and resource server that speak DPoP ([RFC 9449]), for tests, in the
// spirit of net/http/httptest.
//
// It is the independent verifier of the dpop module: it never imports the
// client package. Every proof is parsed and verified with go-jose, and
// thumbprints come from go-jose's RFC 7638 implementation.
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
//   - a resource server (RFC 9449 §7) at every path under "/api/" and at
//     anything registered with [Server.Handle];
//   - authorization server metadata (RFC 8414) at
//     "/.well-known/oauth-authorization-server" and protected resource
//     metadata (RFC 9728) at "/.well-known/oauth-protected-resource";
//   - server-provided nonces (RFC 9449 §8, §9) when [Config.RequireNonce] is
//     set, with separate values for the authorization server and the
//     resource server;
//   - a record of every request ([Server.Requests]) so tests can count
//     round trips and see which check failed.
//
// The endpoints' URLs come from [Server.Endpoint] and [Server.PARURL], or
// from the metadata.
//
// The server is strict on purpose: it accepts only the current nonce, a jti
// only once, a code only once, and it rejects every deviation with the error
// code the RFCs prescribe.
//
// [RFC 9449]: https://www.rfc-editor.org/rfc/rfc9449
package dpoptest
