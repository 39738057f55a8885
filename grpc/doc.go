// Package dpopgrpc carries DPoP ([RFC 9449]) over gRPC: a proof and a
// DPoP-bound access token on every RPC a client makes, checked by the
// server before its handler runs. It is a module of its own, so that the
// dpop module does not depend on gRPC.
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
// # Server
//
// A [Server] verifies each call with a [resource.Verifier], the
// resource-server side of the dpop module (the token, the proof, the
// nonce, replays), in unary and stream interceptors that
// [Server.ServerOptions] installs; the handler reads the verified token
// with [resource.FromContext]:
//
//	api := &dpopgrpc.Server{Verifier: verifier, PublicURL: "https://api.example.com"}
//	s := grpc.NewServer(append(api.ServerOptions(), grpc.Creds(tlsCreds))...)
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
// Connect ([connectrpc.com/connect]) runs over net/http, and needs nothing
// of this package. A client gets an http.Client whose Transport is a
// [dpop.Transport]: each call carries a proof for the URL above, with the
// nonce and the retries of that Transport, whichever of the Connect, gRPC
// and gRPC-Web protocols it speaks. A server puts its handlers behind
// [resource.Verifier.Handler], which answers a refusal with a 401 and its
// challenge before connect-go sees the call; the handlers read the token
// with [resource.FromContext]. A gRPC server refuses with a status in the
// answer's trailers, which a dpop.Transport under a Connect client of the
// gRPC protocol learns a nonce from but does not retry (the HTTP status is
// 200): the next call carries the nonce.
//
// [RFC 9449]: https://www.rfc-editor.org/rfc/rfc9449
// [connectrpc.com/connect]: https://pkg.go.dev/connectrpc.com/connect
package dpopgrpc
