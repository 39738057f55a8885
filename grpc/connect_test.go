package dpopgrpc_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"connectrpc.com/connect"
	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
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
