package dpopgrpc_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"github.com/dpopkit/dpop/resource"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// echoHandler is the Echo procedure served by connect-go; it answers with
// the subject of the token the resource server verified.
func echoHandler() (string, http.Handler) {
	return echoMethod, connect.NewUnaryHandler(echoMethod,
		func(ctx context.Context, req *connect.Request[wrapperspb.StringValue]) (*connect.Response[wrapperspb.StringValue], error) {
			who := "nobody"
			if ti, ok := dpoptest.TokenFromContext(ctx); ok {
				who = ti.Subject
			}
			return connect.NewResponse(wrapperspb.String("echo: " + req.Msg.Value + " as " + who)), nil
		})
}

// A Connect client runs over net/http, so the dpop Transport serves it
// as it is: a proof for POST <base>/<service>/<method> on every call, the
// resource server's nonce challenge answered by the Transport (connect-go
// sets GetBody on unary requests), a token from the client credentials
// grant.
func TestConnectUnary(t *testing.T) {
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	t.Cleanup(srv.Close)
	srv.Handle(echoHandler())
	signer := newSigner(t, true)
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{ClientID: "backend", ClientSecret: "backend-secret", TokenURL: srv.Endpoint().TokenURL},
		Signer: signer,
	}
	client := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](cc.Client(t.Context()), srv.URL+echoMethod)
	for range 2 {
		resp, err := client.CallUnary(t.Context(), connect.NewRequest(wrapperspb.String("hi")))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := resp.Msg.Value, "echo: hi as backend"; got != want {
			t.Errorf("Echo = %q; want %q", got, want)
		}
	}
	var got []string
	for _, r := range srv.Requests() {
		if r.Kind != dpoptest.KindResource {
			continue
		}
		got = append(got, r.Method+" "+r.Path+" "+r.Error)
		if r.Proof != nil && r.Proof.HTU != srv.URL+echoMethod {
			t.Errorf("htu = %q; want %q", r.Proof.HTU, srv.URL+echoMethod)
		}
	}
	want := []string{"POST " + echoMethod + " use_dpop_nonce", "POST " + echoMethod + " ", "POST " + echoMethod + " "}
	if !slices.Equal(got, want) {
		t.Errorf("resource requests: %q; want %q", got, want)
	}
}

// A Connect client speaking the gRPC protocol (HTTP/2) through the dpop
// Transport reaches a grpc-go server with the proof dpopgrpc.Credentials
// would make: one htu for a call, whatever the client. A gRPC refusal is
// an HTTP 200 with the status in (trailers-only) headers, so the
// Transport does not send it again, but learns the nonce from it: the
// next call carries it.
func TestConnectGRPCProtocol(t *testing.T) {
	srv, clientTLS := newTestServer(t, serverOptions{requireNonce: true})
	signer := newSigner(t, false)
	base := &http.Transport{TLSClientConfig: clientTLS.Clone(), ForceAttemptHTTP2: true}
	t.Cleanup(base.CloseIdleConnections)
	httpClient := &http.Client{Transport: &dpop.Transport{Base: base, Signer: signer, Source: &tokenSource{srv: srv, signer: signer}}}
	client := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](httpClient, "https://"+srv.addr+echoMethod, connect.WithGRPC())

	_, err := client.CallUnary(t.Context(), connect.NewRequest(wrapperspb.String("hi")))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("first call: err = %v; want unauthenticated (nonce)", err)
	}
	resp, err := client.CallUnary(t.Context(), connect.NewRequest(wrapperspb.String("hi")))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.Msg.Value, "echo: hi"; got != want {
		t.Errorf("Echo = %q; want %q", got, want)
	}
	if got, want := srv.outcomes(), []string{"use_dpop_nonce", "ok"}; !slices.Equal(got, want) {
		t.Errorf("server saw %v; want %v", got, want)
	}
	proof, _ := srv.lastProof()
	if got, want := claims(t, proof)["htu"], "https://"+srv.addr+echoMethod; got != want {
		t.Errorf("htu = %v; want %v", got, want)
	}
}

// whoamiHandler is the Whoami procedure served by connect-go: it answers
// the subject and the jkt of the token in its context
// (resource.FromContext).
func whoamiHandler() (string, http.Handler) {
	return whoamiMethod, connect.NewUnaryHandler(whoamiMethod,
		func(ctx context.Context, _ *connect.Request[wrapperspb.StringValue]) (*connect.Response[wrapperspb.StringValue], error) {
			return connect.NewResponse(wrapperspb.String(whoami(ctx))), nil
		})
}

// fence is a RoundTripper that cuts a request's body off from the
// transport under it once the answer is a 401, the answer a dpop.Transport
// may retry. It works around a race the dpop Transport does not guard
// against yet: net/http's HTTP/2 transport may still read the first
// attempt's body after RoundTrip returned (the server answered before
// reading it), and connect-go's GetBody hands back that same reader,
// rewound, instead of a new copy; the late read then drains it, and the
// retry goes out empty ("request declared a Content-Length of 9 but only
// wrote 0 bytes" on the server, in about one run of TestConnectServer in
// two for the gRPC and gRPC-Web protocols without the fence).
type fence struct{ base http.RoundTripper }

func (f fence) RoundTrip(r *http.Request) (*http.Response, error) {
	var fb *fencedBody
	if r.Body != nil && r.Body != http.NoBody {
		fb = &fencedBody{body: r.Body}
		r2 := *r
		r2.Body = fb
		r = &r2
	}
	resp, err := f.base.RoundTrip(r)
	if fb != nil && resp != nil && resp.StatusCode == http.StatusUnauthorized {
		fb.cut()
	}
	return resp, err
}

// fencedBody reads from body until cut, then fails every read.
type fencedBody struct {
	mu   sync.Mutex // guards the fields below; held during a Read
	body io.ReadCloser
	done bool // cut
}

func (b *fencedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return 0, errors.New("request body cut off: the request is being retried")
	}
	return b.body.Read(p)
}

func (b *fencedBody) Close() error { return b.body.Close() }

// cut waits for a Read under way, and fails every later one.
func (b *fencedBody) cut() {
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
}

// Connect's server side needs nothing of this package either: connect-go
// handlers are net/http handlers, here behind the resource package's
// middleware (Verifier.Handler), which requires nonces; the handler finds
// the token with resource.FromContext. Clients of the three protocols
// connect-go speaks reach it through the dpop Transport, each paying one
// nonce challenge (a 401 from the middleware, whatever the protocol).
func TestConnectServer(t *testing.T) {
	tokens := mapTokens{}
	nonces, err := resource.NewNonceIssuer([]byte(rand.Text()+rand.Text()), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var verified, challenged atomic.Int32
	v, err := resource.NewVerifier(resource.Config{Tokens: tokens, Nonces: nonces, Trace: &resource.Trace{
		Verified:        func(resource.VerifiedInfo) { verified.Add(1) },
		NonceChallenged: func(resource.NonceChallengeInfo) { challenged.Add(1) },
	}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(whoamiHandler())
	ts := httptest.NewUnstartedServer(v.Handler(mux))
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)

	signer := newSigner(t, true)
	tokens["tok"] = signer.Thumbprint()
	want := "alice " + signer.Thumbprint()
	for _, proto := range []struct {
		name string
		opts []connect.ClientOption
	}{
		{"connect", nil},
		{"grpc", []connect.ClientOption{connect.WithGRPC()}},
		{"grpc-web", []connect.ClientOption{connect.WithGRPCWeb()}},
	} {
		t.Run(proto.name, func(t *testing.T) {
			httpClient := &http.Client{Transport: &dpop.Transport{
				Base: fence{ts.Client().Transport}, // see fence

				Signer: signer,
				Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: "DPoP"}),
			}}
			client := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](httpClient, ts.URL+whoamiMethod, proto.opts...)
			for range 2 {
				resp, err := client.CallUnary(t.Context(), connect.NewRequest(wrapperspb.String("hi")))
				if err != nil {
					t.Fatal(err)
				}
				if resp.Msg.Value != want {
					t.Errorf("Whoami = %q; want %q", resp.Msg.Value, want)
				}
			}
		})
	}
	if v, c := verified.Load(), challenged.Load(); v != 6 || c != 3 {
		t.Errorf("%d calls verified, %d nonce challenges; want 6 and 3 (one per client)", v, c)
	}
}
