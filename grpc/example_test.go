package dpopgrpc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log"

	"connectrpc.com/connect"
	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	dpopgrpc "github.com/dpopkit/dpop/grpc"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// A service calls a gRPC API with DPoP-bound tokens of its own (the
// client credentials grant): every RPC on conn carries
// "authorization: DPoP <token>" and a new proof of
// POST https://api.example.com/<service>/<method>.
func ExampleCredentials() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := dpop.NewSigner(key, nil)
	if err != nil {
		log.Fatal(err)
	}
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{
			ClientID:     "backend",
			ClientSecret: "backend-secret",
			TokenURL:     "https://auth.example.com/token",
		},
		Signer: signer,
	}
	creds := &dpopgrpc.Credentials{Signer: signer, Source: cc.TokenSource(context.Background())}
	conn, err := grpc.NewClient("api.example.com:443",
		append(creds.DialOptions(), grpc.WithTransportCredentials(credentials.NewTLS(nil)))...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	// Use conn with the service's generated client.
}

// A Connect client needs nothing of this package: its http.Client comes
// from the dpop package, whose Transport signs a proof for each call (htu
// <base>/<service>/<method>, htm POST) and answers the server's nonce
// challenge. Here the server is dpoptest's, which also issues the token.
func Example_connect() {
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	srv.Handle(echoHandler()) // "/dpop.test.Echo/Echo" behind dpoptest's DPoP checks

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := dpop.NewSigner(key, nil)
	if err != nil {
		log.Fatal(err)
	}
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{ClientID: "backend", ClientSecret: "backend-secret", TokenURL: srv.Endpoint().TokenURL},
		Signer: signer,
	}
	ctx := context.Background()
	echo := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](cc.Client(ctx), srv.URL+"/dpop.test.Echo/Echo")

	resp, err := echo.CallUnary(ctx, connect.NewRequest(wrapperspb.String("hello")))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Msg.Value)
	for _, r := range srv.Requests() {
		if r.Kind == dpoptest.KindResource {
			fmt.Println(r.Status, r.Path, r.Error)
		}
	}
	// Output:
	// echo: hello as backend
	// 401 /dpop.test.Echo/Echo use_dpop_nonce
	// 200 /dpop.test.Echo/Echo
}
