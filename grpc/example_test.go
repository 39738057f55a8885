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
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

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
