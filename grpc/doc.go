// Package dpopgrpc carries DPoP ([RFC 9449]) over gRPC: a proof and a
// DPoP-bound access token on every RPC a client makes. It is a module of
// its own, so that the dpop module does not depend on gRPC.
//
// # Client
//
// [Credentials] are per-RPC credentials; with the interceptors that
// [Credentials.DialOptions] installs next to them, they learn each
// server's nonce and answer its challenges:
//
//	creds := &dpopgrpc.Credentials{Signer: signer, Source: tokenSource}
//	conn, err := grpc.NewClient("api.example.com:443",
//		append(creds.DialOptions(), grpc.WithTransportCredentials(credentials.NewTLS(nil)))...)
//
// # What a proof signs
//
// A gRPC call is an HTTP/2 POST to the path "/<service>/<method>" of the
// channel's authority (the :authority pseudo-header: the target's host, or
// the one set by grpc.WithAuthority or a per-call authority). Its proof
// names that request as RFC 9449 §4.2 names an HTTP request:
//
//	htm = "POST"
//	htu = "https://<authority>/<service>/<method>"
//
// such as "https://api.example.com/helloworld.Greeter/SayHello", with the
// port 443 left out (RFC 3986 §6.2.3). The scheme is "http" only on a
// connection without transport security, which [Credentials.InsecureLoopback]
// allows for loopback tests. This is the URL a Connect or gRPC-Web client
// posts the same call to, so a resource server checks one htu whatever the
// protocol. Some clients elsewhere sign the path alone ("/<service>/<method>");
// this package never does.
//
// The proof is in the metadata key "dpop" and the token in
// "authorization" as "DPoP <token>" (RFC 9449 §4.1, §7.1). A server
// announces its nonce (§8.2, §9) in "dpop-nonce", in the response headers
// or trailers, and refuses a call with codes.Unauthenticated, the DPoP
// challenge of §7.1 in the "www-authenticate" trailer and, when a proof's
// iat was refused, its clock in a "date" trailer (RFC 9110 §5.6.7).
//
// # Retries
//
// A unary RPC that is refused for a nonce, for a clock difference or for a
// token its source can replace is sent again once for each reason with a
// new proof (see [Credentials.UnaryClientInterceptor]). A stream is never
// sent again: its first messages are gone; its answer still teaches the
// next RPC the server's nonce. While a server's nonce is unknown, the RPCs
// that follow the first one to it wait for its answer (for at most a
// second) instead of each paying a challenge.
//
// # Connect
//
// Connect clients ([connectrpc.com/connect]) run over net/http: give them
// an http.Client whose Transport is a [dpop.Transport] and each call
// carries a proof for the URL above, with the nonce and the retries of
// that Transport. Nothing of this package is needed.
//
// [RFC 9449]: https://www.rfc-editor.org/rfc/rfc9449
// [connectrpc.com/connect]: https://pkg.go.dev/connectrpc.com/connect
package dpopgrpc
