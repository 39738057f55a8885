package dpopgrpc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log"
	"net"
	"time"

	"connectrpc.com/connect"
	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	dpopgrpc "github.com/dpopkit/dpop/grpc"
	"github.com/dpopkit/dpop/resource"
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

// A gRPC API verifies each call with a resource.Verifier (JWT access
// tokens of its issuer, server nonces) through a Server's interceptors; a
// client of this package calls it over TLS with tokens of the client
// credentials grant, meets the nonce once, and the handler finds the
// verified token in its context. The issuer here is dpoptest's.
func ExampleServer() {
	ctx := context.Background()
	issuer := dpoptest.NewServer(nil)
	defer issuer.Close()

	// The API.
	tokens, err := resource.NewJWTVerifier(ctx, issuer.URL, issuer.URL, nil)
	if err != nil {
		log.Fatal(err)
	}
	nonceKey := make([]byte, 32) // shared by the API's instances, kept secret
	rand.Read(nonceKey)
	nonces, err := resource.NewNonceIssuer(nonceKey, time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	verifier, err := resource.NewVerifier(resource.Config{
		Tokens: tokens,
		Nonces: nonces,
		Trace: &resource.Trace{
			NonceChallenged: func(resource.NonceChallengeInfo) { fmt.Println("server: use_dpop_nonce") },
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	api := &dpopgrpc.Server{Verifier: verifier} // PublicURL: "https://api.example.com" behind a proxy
	serverTLS, clientTLS := exampleTLS()        // a self-signed certificate for 127.0.0.1
	gs := grpc.NewServer(append(api.ServerOptions(), grpc.Creds(serverTLS))...)
	gs.RegisterService(&echoDesc, nil) // Whoami answers who resource.FromContext says called
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go gs.Serve(l)
	defer gs.Stop()

	// The client.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := dpop.NewSigner(key, nil)
	if err != nil {
		log.Fatal(err)
	}
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{ClientID: "backend", ClientSecret: "backend-secret", TokenURL: issuer.Endpoint().TokenURL},
		Signer: signer,
	}
	creds := &dpopgrpc.Credentials{Signer: signer, Source: cc.TokenSource(ctx)}
	conn, err := grpc.NewClient(l.Addr().String(), append(creds.DialOptions(), grpc.WithTransportCredentials(clientTLS))...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	for range 2 {
		out := new(wrapperspb.StringValue)
		if err := conn.Invoke(ctx, "/dpop.test.Echo/Whoami", wrapperspb.String(""), out); err != nil {
			log.Fatal(err)
		}
		fmt.Println("client:", out.Value == "backend "+signer.Thumbprint())
	}
	// Output:
	// server: use_dpop_nonce
	// client: true
	// client: true
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
