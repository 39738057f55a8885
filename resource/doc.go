// Package resource is the resource-server side of DPoP ([RFC 9449] §7):
// it lets a Go API accept DPoP-bound access tokens and refuse everything
// else, on one instance or many.
//
// A [Verifier] checks each request: the access token (through a
// [TokenVerifier]: JWT access tokens or introspection), the DPoP proof
// (RFC 9449 §4.3), the binding between them (§6, §7), the server nonce when
// one is required (§9) and replays (§11.1, through a [ReplayStore] that
// claims each proof atomically). Its Handler method is net/http middleware;
// other transports (gRPC) call Verify with the parts of their request.
//
// [RFC 9449]: https://www.rfc-editor.org/rfc/rfc9449
package resource
