package dpopgrpc

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/dpopkit/dpop"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Metadata keys of DPoP over gRPC: the requests carry the proof and the
// token (RFC 9449 §4.1, §7.1), the responses the server's nonce (§9) and,
// on an Unauthenticated refusal, the challenge (§7.1) and the server's
// clock. gRPC metadata keys are lower case.
const (
	mdProof           = "dpop"
	mdNonce           = "dpop-nonce"
	mdWWWAuthenticate = "www-authenticate"
	mdDate            = "date"
)

// clockTolerance is how far a server's date may be from ours before the
// Credentials take it as a clock difference, as the dpop Transport does
// (a date has a resolution of one second, and an answer takes time).
const clockTolerance = 5 * time.Second

// maxClockOffset bounds the clock difference corrected: a server further
// off is broken, not merely apart.
const maxClockOffset = 24 * time.Hour

// maxNonceLen bounds the nonces stored, as the dpop package does.
const maxNonceLen = 512

// call is one RPC made through an interceptor of [Credentials]: what its
// attempts share. GetRequestMetadata finds it in the context, records the
// authority and what the attempt was signed with, and may make it the
// first RPC to an unknown authority (probe).
type call struct {
	stream    bool
	probe     chan struct{} // while this is the first RPC to its authority
	authority string        // of the last attempt; "" before the first
	scheme    string        // of its htu
	nonce     string        // the nonce the last attempt carried
	offset    time.Duration // the clock offset it was signed with
	token     string        // the access token it presented; "" for none

	nonceRetry, clockRetry, tokenRetry bool // whether those retries were made

	header, trailer metadata.MD // of the last attempt of a unary RPC
}

type callKey struct{}

// callFrom returns the call of ctx, or nil for an RPC made without the
// interceptors.
func callFrom(ctx context.Context) *call {
	cl, _ := ctx.Value(callKey{}).(*call)
	return cl
}

// UnaryClientInterceptor returns the interceptor that makes [Credentials]
// complete for unary RPCs. It learns each server's nonce (RFC 9449 §9)
// from the "dpop-nonce" of response headers and trailers, whatever the
// outcome, so that the next RPC carries it. And when an RPC ends with
// codes.Unauthenticated and a DPoP challenge in the "www-authenticate"
// trailer (§7.1), it sends the request again, each reason at most once,
// with a new proof:
//
//   - use_dpop_nonce with a "dpop-nonce" not tried yet: with that nonce;
//   - invalid_dpop_proof with a "date" (RFC 9110 §5.6.7) that shows the
//     server's clock 5 s or more from ours: with the iat on the server's
//     clock (§11.1), for every later RPC to that authority too;
//   - invalid_token, when Source is a [dpop.TokenSource] that can get
//     another token: with the new token (RFC 6750 §3.1).
//
// The request message is kept by the caller, so it can be sent again;
// other errors are returned as they are.
func (c *Credentials) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return c.interceptUnary
}

func (c *Credentials) interceptUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	cl := new(call) // one allocation for the call and its metadata
	ctx = context.WithValue(ctx, callKey{}, cl)
	defer c.servers.endProbe(cl) // on every path, a panic included
	opts = append(opts[:len(opts):len(opts)], grpc.Header(&cl.header), grpc.Trailer(&cl.trailer))
	for attempt := 2; ; attempt++ {
		cl.header, cl.trailer = nil, nil
		err := invoker(ctx, method, req, reply, cc, opts...)
		c.learn(ctx, cl, cl.header, cl.trailer)
		c.servers.endProbe(cl)
		if err == nil {
			return nil
		}
		why := c.retryReason(ctx, cl, err, cl.header, cl.trailer)
		if why == "" || ctx.Err() != nil {
			return err
		}
		if tr := c.Trace; tr != nil && tr.Retry != nil {
			tr.Retry(dpop.RetryInfo{Context: ctx, Origin: cl.origin(), Reason: why, Attempt: attempt})
		}
	}
}

// StreamClientInterceptor returns the interceptor that makes [Credentials]
// learn each server's nonce from streams too: from the "dpop-nonce" of
// the response headers and of the trailers. A stream is never sent again,
// whatever its error: its first messages are gone.
func (c *Credentials) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return c.interceptStream
}

func (c *Credentials) interceptStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cl := &call{stream: true}
	s, err := streamer(context.WithValue(ctx, callKey{}, cl), desc, cc, method, opts...)
	if err != nil {
		return nil, err
	}
	// A copy: a retry of gRPC's may write cl while the stream is read.
	first := *cl
	return &clientStream{ClientStream: s, c: c, cl: &first}, nil
}

// clientStream learns the server's nonce from the headers and the
// trailers of a stream.
type clientStream struct {
	grpc.ClientStream
	c          *Credentials
	cl         *call
	sawHeader  atomic.Bool // the headers were read
	sawTrailer atomic.Bool // the trailers were read
}

func (s *clientStream) Header() (metadata.MD, error) {
	md, err := s.ClientStream.Header()
	if err == nil && !s.sawHeader.Swap(true) {
		s.c.learn(s.Context(), s.cl, md, nil)
	}
	return md, err
}

func (s *clientStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if !s.sawHeader.Load() {
		s.Header() // does not block: a message or the end came after the headers
	}
	if err != nil && !s.sawTrailer.Swap(true) {
		s.c.learn(s.Context(), s.cl, nil, s.Trailer())
	}
	return err
}

// learn stores the nonce an answer carried for cl's authority: the
// trailer's, else the header's.
func (c *Credentials) learn(ctx context.Context, cl *call, header, trailer metadata.MD) {
	if cl.authority == "" {
		return // no attempt reached the server
	}
	n := mdNonceOf(trailer)
	if n == "" {
		n = mdNonceOf(header)
	}
	if n == "" {
		return
	}
	c.servers.setNonce(cl.authority, n)
	if tr := c.Trace; tr != nil && tr.NonceLearned != nil && n != cl.nonce {
		tr.NonceLearned(dpop.NonceInfo{Context: ctx, Origin: cl.origin(), Changed: cl.nonce != ""})
	}
}

// retryReason is the retry policy of unary RPCs: it decides whether cl
// goes again after err, and records what the next attempt needs. It
// returns the reason, or "" to return err.
func (c *Credentials) retryReason(ctx context.Context, cl *call, err error, header, trailer metadata.MD) dpop.RetryReason {
	if cl.authority == "" || status.Code(err) != codes.Unauthenticated {
		return ""
	}
	code, ok := challengeCode(trailer)
	if !ok {
		if code, ok = challengeCode(header); !ok {
			return ""
		}
	}
	if tr := c.Trace; tr != nil && tr.ChallengeReceived != nil {
		tr.ChallengeReceived(dpop.ChallengeInfo{Context: ctx, Origin: cl.origin(), StatusCode: http.StatusUnauthorized, ErrorCode: code})
	}
	switch code {
	case dpop.CodeUseNonce:
		n := mdNonceOf(trailer)
		if n == "" {
			n = mdNonceOf(header)
		}
		if n == "" || n == cl.nonce || cl.nonceRetry {
			return "" // no nonce to try, or the one just refused
		}
		cl.nonceRetry = true // learn stored n: the next attempt carries it
		return dpop.RetryNonce
	case dpop.CodeInvalidProof:
		skew, ok := serverClockSkew(trailer, time.Now().Add(cl.offset))
		if !ok || cl.clockRetry || skew < clockTolerance && skew > -clockTolerance {
			return ""
		}
		cl.clockRetry = true
		offset := min(max(cl.offset+skew.Round(time.Second), -maxClockOffset), maxClockOffset)
		c.servers.setOffset(cl.authority, offset)
		if tr := c.Trace; tr != nil && tr.ClockOffsetLearned != nil {
			tr.ClockOffsetLearned(dpop.ClockOffsetInfo{Context: ctx, Origin: cl.origin(), Offset: offset})
		}
		return dpop.RetryClock
	case dpop.CodeInvalidToken:
		src, ok := c.Source.(dpop.TokenSource)
		if !ok || cl.token == "" || cl.tokenRetry || !src.Invalidate(&oauth2.Token{AccessToken: cl.token}) {
			return ""
		}
		cl.tokenRetry = true
		return dpop.RetryInvalidToken
	}
	return ""
}

// origin returns the origin of cl's htu, for traces.
func (cl *call) origin() string { return cl.scheme + "://" + cl.authority }

// challengeCode returns the error code of the DPoP challenge in md's
// www-authenticate values, and whether there is one. The challenge is read
// by the dpop package's parser of WWW-Authenticate (RFC 9110 §11.6.1), as
// the header of a 401.
func challengeCode(md metadata.MD) (string, bool) {
	v := md[mdWWWAuthenticate]
	if len(v) == 0 {
		return "", false
	}
	resp := &http.Response{StatusCode: http.StatusUnauthorized, Header: http.Header{"Www-Authenticate": v}, Body: http.NoBody}
	ce, ok := dpop.CheckResponse(resp).(*dpop.ChallengeError)
	if !ok || ce == nil || ce.Scheme != "DPoP" {
		return "", false // none, or one for another scheme (Bearer): not a DPoP refusal to answer
	}
	return ce.ErrorCode, true
}

// mdNonceOf returns md's dpop-nonce when it has exactly one and it is a
// valid nonce: 1*NQCHAR (RFC 9449 §8.1), at most maxNonceLen bytes.
func mdNonceOf(md metadata.MD) string {
	v := md[mdNonce]
	if len(v) != 1 || len(v[0]) == 0 || len(v[0]) > maxNonceLen {
		return ""
	}
	for i := 0; i < len(v[0]); i++ {
		if c := v[0][i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			return ""
		}
	}
	return v[0]
}

// serverClockSkew returns the server's clock minus now, from the "date"
// of md (an HTTP date, RFC 9110 §5.6.7), when it has exactly one valid
// one.
func serverClockSkew(md metadata.MD, now time.Time) (time.Duration, bool) {
	v := md[mdDate]
	if len(v) != 1 {
		return 0, false
	}
	t, err := http.ParseTime(v[0])
	if err != nil {
		return 0, false
	}
	return t.Sub(now.Truncate(time.Second)), true
}
