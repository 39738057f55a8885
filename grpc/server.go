package dpopgrpc

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/dpopkit/dpop/resource"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Server is the resource-server side of DPoP over gRPC: its interceptors
// verify each call a gRPC server receives with a [resource.Verifier]
// (RFC 9449 §4.3, §7, §9, §11.1) before the handler runs, and hand the
// handler the verified token: [resource.FromContext] of the handler's
// context (the stream's, for a stream) returns it.
//
// A call is the request the package documentation describes: a POST to
// PublicURL + "/<service>/<method>", with the token in the
// "authorization" metadata and the proof in "dpop" (every value of each
// goes to the Verifier, which refuses more than one). A refused call (a
// 400 or a 401 over HTTP) ends with codes.Unauthenticated, the challenge
// of [resource.Verifier.Challenge] in the "www-authenticate" trailer and
// the server's clock in "date" (RFC 9110 §5.6.7), and a status message
// that names the error code and the [resource.Reason], never what the
// client sent; one the Verifier could not decide (its token verifier or
// replay store unreachable: a 503 over HTTP) ends with codes.Unavailable
// and no challenge. With nonces ([resource.Config.Nonces]), every answer
// carries the current one in the "dpop-nonce" header, and a refusal in its
// trailer too (§8.2, §9); [resource.Config.RequireNonce] sees a request
// whose path is "/<service>/<method>", for a policy per method.
//
// The only required field is Verifier. A Server is safe for concurrent
// use; do not change its fields once it serves.
type Server struct {
	// Verifier checks each call. It is required.
	Verifier *resource.Verifier

	// PublicURL is the URL clients reach the server at, such as
	// "https://api.example.com": a proof's htu must name PublicURL +
	// "/<service>/<method>". If the Verifier has public URLs of its own
	// ([resource.Config.PublicURLs]), they are the ones that count and
	// PublicURL may be empty. If both are empty, the URL is
	// "https://<authority>" of the call (its :authority; "http" on a
	// connection without transport security), which, as for net/http, is
	// right only when nothing stands in front of the server and it
	// answers for its own names only.
	PublicURL string

	// AllowPathHTU also accepts a proof whose htu is the bare procedure
	// path "/<service>/<method>", as some gRPC clients sign it (see
	// [resource.Request.PathHTU]). Off by default: this package's
	// Credentials sign the full URL.
	AllowPathHTU bool

	// Now is the clock of the date trailer, which lets a client whose
	// clock is off correct its proofs' iat; give it the Verifier's
	// [resource.Config.Now] when that is set. If nil, time.Now is used.
	Now func() time.Time
}

// ServerOptions returns the options that install s's interceptors on a
// gRPC server, appended to any chain as [grpc.ChainUnaryInterceptor]
// does. Pass them to [grpc.NewServer] with the transport credentials.
func (s *Server) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(s.StreamServerInterceptor()),
	}
}

// UnaryServerInterceptor returns the interceptor that verifies each unary
// call before its handler runs, as the [Server] documentation says.
func (s *Server) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return s.interceptUnary
}

func (s *Server) interceptUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	at, header, trailer, err := s.verify(ctx, info.FullMethod)
	if header != nil {
		grpc.SetHeader(ctx, header)
	}
	if err != nil {
		grpc.SetTrailer(ctx, trailer)
		return nil, err
	}
	return handler(resource.NewContext(ctx, at), req)
}

// StreamServerInterceptor returns the interceptor that verifies each
// stream before its handler runs, as the [Server] documentation says.
func (s *Server) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return s.interceptStream
}

func (s *Server) interceptStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	at, header, trailer, err := s.verify(ctx, info.FullMethod)
	if header != nil {
		ss.SetHeader(header)
	}
	if err != nil {
		ss.SetTrailer(trailer)
		return err
	}
	return handler(srv, &serverStream{ServerStream: ss, ctx: resource.NewContext(ctx, at)})
}

// serverStream is a stream whose context carries the verified token.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }

// verify checks the call of method whose context is ctx. It returns the
// token, the header to send, and, for a refusal, the trailer and the
// status error.
func (s *Server) verify(ctx context.Context, method string) (at *resource.AccessToken, header, trailer metadata.MD, err error) {
	v := s.Verifier
	if v == nil {
		return nil, nil, nil, status.Error(codes.Internal, "dpop: Server's Verifier is nil")
	}
	nonce := v.Nonce()
	if nonce != "" {
		header = metadata.MD{mdNonce: {nonce}}
	}
	at, err = v.Verify(ctx, &resource.Request{
		Method:        http.MethodPost,
		URL:           s.url(ctx, method),
		Authorization: metadata.ValueFromIncomingContext(ctx, "authorization"),
		DPoP:          metadata.ValueFromIncomingContext(ctx, mdProof),
		PathHTU:       s.AllowPathHTU,
	})
	if err == nil {
		return at, header, nil, nil
	}
	code, challenge := v.Challenge(err)
	trailer = metadata.MD{mdDate: {s.now().UTC().Format(http.TimeFormat)}}
	if nonce != "" {
		trailer[mdNonce] = []string{nonce}
	}
	if code == http.StatusServiceUnavailable {
		return nil, header, trailer, status.Error(codes.Unavailable, "dpop: the request cannot be verified now")
	}
	if challenge != "" {
		trailer[mdWWWAuthenticate] = []string{challenge}
	}
	// The code and the reason are fixed sets: nothing the client sent.
	msg := "dpop: request refused"
	var e *resource.Error
	if errors.As(err, &e) {
		if e.Code != "" {
			msg += ": " + string(e.Code)
		}
		msg += " (" + string(e.Reason) + ")"
	}
	return nil, header, trailer, status.Error(codes.Unauthenticated, msg)
}

// url returns the URL of a call of method: PublicURL, or the call's own
// scheme and authority, followed by the method's path.
func (s *Server) url(ctx context.Context, method string) string {
	if s.PublicURL != "" {
		return strings.TrimSuffix(s.PublicURL, "/") + method
	}
	scheme := "https"
	if p, ok := peer.FromContext(ctx); !ok || insecure(p.AuthInfo) {
		scheme = "http"
	}
	authority := ""
	if a := metadata.ValueFromIncomingContext(ctx, ":authority"); len(a) == 1 {
		authority = a[0]
	}
	return scheme + "://" + authority + method
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
