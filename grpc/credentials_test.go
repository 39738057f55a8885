package dpopgrpc_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/dpopkit/dpop"
	dpopgrpc "github.com/dpopkit/dpop/grpc"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// A unary RPC over TLS carries a proof for POST https://<authority>/<service>/<method>
// with the token's ath, and the token as "DPoP <token>".
func TestCredentialsUnary(t *testing.T) {
	bothServers(t, func(t *testing.T, dt bool) {
		srv, clientTLS := newTestServer(t, serverOptions{dpoptest: dt})
		signer := newSigner(t, true)
		src := &tokenSource{srv: srv, signer: signer}
		conn := dial(t, srv, clientTLS, &dpopgrpc.Credentials{Signer: signer, Source: src})

		got, err := echo(t.Context(), conn, "hi")
		if err != nil {
			t.Fatal(err)
		}
		if got != "echo: hi" {
			t.Errorf("Echo = %q; want %q", got, "echo: hi")
		}
		proof, auth := srv.lastProof()
		tok, _ := src.Token()
		if want := "DPoP " + tok.AccessToken; auth != want {
			t.Errorf("authorization = %q; want %q", auth, want)
		}
		c := claims(t, proof)
		sum := sha256.Sum256([]byte(tok.AccessToken))
		for name, want := range map[string]any{
			"htm": "POST",
			"htu": "https://" + srv.addr + echoMethod,
			"ath": base64.RawURLEncoding.EncodeToString(sum[:]),
		} {
			if c[name] != want {
				t.Errorf("proof %s = %v; want %v", name, c[name], want)
			}
		}
		if _, ok := c["nonce"]; ok {
			t.Errorf("proof has a nonce %v; the server asked for none", c["nonce"])
		}
		if o := srv.outcomes(); len(o) != 1 || o[0] != "ok" {
			t.Errorf("server saw %v; want [ok]", o)
		}
	})
}

// The htu names the authority the call goes to: the one set with
// grpc.WithAuthority, and a per-call one, not the dialed address.
func TestCredentialsAuthority(t *testing.T) {
	srv, clientTLS := newTestServer(t, serverOptions{proofOnly: true, dpoptest: true})
	_, port, _ := strings.Cut(srv.addr, ":")
	srv.setBase("https://localhost:" + port) // the server's public URL
	signer := newSigner(t, false)
	creds := &dpopgrpc.Credentials{Signer: signer}
	conn := dial(t, srv, clientTLS, creds, grpc.WithAuthority("localhost:"+port))
	if _, err := echo(t.Context(), conn, "hi"); err != nil {
		t.Fatal(err)
	}
	proof, _ := srv.lastProof()
	if got, want := claims(t, proof)["htu"], "https://localhost:"+port+echoMethod; got != want {
		t.Errorf("htu = %v; want %v", got, want)
	}

	// Per call: gRPC checks the authority against the certificate, which
	// names 127.0.0.1 and localhost.
	srv.setBase("https://127.0.0.1:" + port)
	out := new(wrapperspb.StringValue)
	if err := conn.Invoke(t.Context(), echoMethod, wrapperspb.String("hi"), out, grpc.CallAuthority("127.0.0.1:"+port)); err != nil {
		t.Fatal(err)
	}
	proof, _ = srv.lastProof()
	if got, want := claims(t, proof)["htu"], "https://127.0.0.1:"+port+echoMethod; got != want {
		t.Errorf("htu with CallAuthority = %v; want %v", got, want)
	}
}

// Without a Source an RPC carries a proof only: no authorization, no ath.
func TestCredentialsProofOnly(t *testing.T) {
	srv, clientTLS := newTestServer(t, serverOptions{proofOnly: true, dpoptest: true})
	conn := dial(t, srv, clientTLS, &dpopgrpc.Credentials{Signer: newSigner(t, false)})
	if _, err := echo(t.Context(), conn, "hi"); err != nil {
		t.Fatal(err)
	}
	proof, auth := srv.lastProof()
	if auth != "" {
		t.Errorf("authorization = %q; want none", auth)
	}
	if ath, ok := claims(t, proof)["ath"]; ok {
		t.Errorf("proof has ath %v without a token", ath)
	}
}

// Without InsecureLoopback, gRPC refuses the Credentials on a plain
// connection; with it, a loopback server is reached with an http htu, and
// any other authority is refused before anything is sent.
func TestCredentialsInsecureLoopback(t *testing.T) {
	srv, _ := newTestServer(t, serverOptions{insecure: true, proofOnly: true, dpoptest: true})
	signer := newSigner(t, false)

	conn, err := grpc.NewClient(srv.addr, append((&dpopgrpc.Credentials{Signer: signer}).DialOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err == nil {
		_, err = echo(t.Context(), conn, "hi")
		conn.Close()
	}
	if err == nil {
		t.Fatal("a plain connection was accepted without InsecureLoopback")
	}

	creds := &dpopgrpc.Credentials{Signer: signer, InsecureLoopback: true}
	if creds.RequireTransportSecurity() {
		t.Error("RequireTransportSecurity() = true with InsecureLoopback")
	}
	conn = dial(t, srv, nil, creds)
	if _, err := echo(t.Context(), conn, "hi"); err != nil {
		t.Fatal(err)
	}
	proof, _ := srv.lastProof()
	if got, want := claims(t, proof)["htu"], "http://"+srv.addr+echoMethod; got != want {
		t.Errorf("htu = %v; want %v", got, want)
	}

	before := len(srv.outcomes())
	conn = dial(t, srv, nil, creds, grpc.WithAuthority("api.example.com"))
	_, err = echo(t.Context(), conn, "hi")
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("plain RPC to api.example.com: err = %v; want a refusal naming loopback", err)
	}
	if after := len(srv.outcomes()); after != before {
		t.Errorf("the server saw %d requests; want none", after-before)
	}
}

// A Bearer token from the Source is a downgrade: the RPC fails and no
// request is sent, unless AllowBearer is set: then the token goes with the
// Bearer scheme and a proof without ath.
func TestCredentialsBearer(t *testing.T) {
	srv, clientTLS := newTestServer(t, serverOptions{})
	var downgrades int
	creds := &dpopgrpc.Credentials{
		Signer: newSigner(t, false),
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "unbound", TokenType: "bearer"}),
		Trace:  &dpop.Trace{DowngradeRefused: func(dpop.DowngradeInfo) { downgrades++ }},
	}
	conn := dial(t, srv, clientTLS, creds)
	_, err := echo(t.Context(), conn, "hi")
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "Bearer token where a DPoP-bound token was expected") {
		t.Errorf("err = %v; want Unauthenticated naming the token_type", err)
	}
	if strings.Contains(fmt.Sprint(err), "unbound") {
		t.Errorf("error %q shows the token", err)
	}
	if len(srv.outcomes()) != 0 || downgrades != 1 {
		t.Errorf("server saw %d requests, %d downgrades traced; want 0 and 1", len(srv.outcomes()), downgrades)
	}

	creds = &dpopgrpc.Credentials{Signer: creds.Signer, Source: creds.Source, AllowBearer: true}
	md, err := creds.GetRequestMetadata(credentials.NewContextWithRequestInfo(t.Context(),
		credentials.RequestInfo{Method: echoMethod, AuthInfo: tlsInfo}), "https://api.example.com/"+echoService)
	if err != nil {
		t.Fatal(err)
	}
	if got := md["authorization"]; got != "Bearer unbound" {
		t.Errorf("authorization = %q with AllowBearer; want %q", got, "Bearer unbound")
	}
	if ath, ok := claims(t, md["dpop"])["ath"]; ok {
		t.Errorf("proof has ath %v for a Bearer token", ath)
	}
}

// GetRequestMetadata without a Signer, without gRPC's request info or
// audience is an error, never a panic.
func TestCredentialsErrors(t *testing.T) {
	ctx := credentials.NewContextWithRequestInfo(context.Background(), credentials.RequestInfo{Method: echoMethod, AuthInfo: tlsInfo})
	for _, tt := range []struct {
		name  string
		creds *dpopgrpc.Credentials
		ctx   context.Context
		uri   []string
	}{
		{"no signer", &dpopgrpc.Credentials{}, ctx, []string{"https://api.example.com/" + echoService}},
		{"no request info", &dpopgrpc.Credentials{Signer: newSigner(t, false)}, context.Background(), []string{"https://api.example.com/" + echoService}},
		{"no uri", &dpopgrpc.Credentials{Signer: newSigner(t, false)}, ctx, nil},
		{"http uri", &dpopgrpc.Credentials{Signer: newSigner(t, false)}, ctx, []string{"http://api.example.com/" + echoService}},
		{"no transport security", &dpopgrpc.Credentials{Signer: newSigner(t, false)},
			credentials.NewContextWithRequestInfo(context.Background(), credentials.RequestInfo{Method: echoMethod}),
			[]string{"https://api.example.com/" + echoService}},
		{"userinfo", &dpopgrpc.Credentials{Signer: newSigner(t, false)}, ctx, []string{"https://a@api.example.com/" + echoService}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			md, err := tt.creds.GetRequestMetadata(tt.ctx, tt.uri...)
			if err == nil || !strings.HasPrefix(err.Error(), "dpop: ") {
				t.Errorf("GetRequestMetadata = %v, %v; want a dpop: error", md, err)
			}
		})
	}
}

// tlsInfo is what gRPC's TLS credentials tell of a connection.
var tlsInfo = credentials.TLSInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}

// GetRequestMetadata, called as gRPC calls it, signs a new proof each time.
func TestCredentialsNewProofEachCall(t *testing.T) {
	creds := &dpopgrpc.Credentials{Signer: newSigner(t, false)}
	ctx := credentials.NewContextWithRequestInfo(context.Background(), credentials.RequestInfo{Method: echoMethod, AuthInfo: tlsInfo})
	seen := map[string]bool{}
	for range 3 {
		md, err := creds.GetRequestMetadata(ctx, "https://api.example.com/"+echoService)
		if err != nil {
			t.Fatal(err)
		}
		c := claims(t, md["dpop"])
		if got, want := c["htu"], "https://api.example.com"+echoMethod; got != want {
			t.Errorf("htu = %v; want %v", got, want)
		}
		if jti := c["jti"].(string); seen[jti] {
			t.Errorf("jti %q used twice", jti)
		} else {
			seen[jti] = true
		}
		if _, ok := md["authorization"]; ok {
			t.Error("authorization set without a Source")
		}
	}
}

// Printing Credentials shows no token and no key.
func TestCredentialsFormat(t *testing.T) {
	signer := newSigner(t, false)
	creds := &dpopgrpc.Credentials{Signer: signer, Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "secret-token"})}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, creds)
		if strings.Contains(out, "secret-token") || !strings.Contains(out, signer.Thumbprint()) {
			t.Errorf("%s of Credentials = %q; want the thumbprint and no token", verb, out)
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("creds", "creds", creds)
	if b, err := json.Marshal(creds); err != nil || strings.Contains(string(b)+buf.String(), "secret-token") {
		t.Errorf("JSON of Credentials = %s, %v; slog: %s; want no token", b, err, buf.String())
	}
}

// An error of GetRequestMetadata reaches the caller as a gRPC status.
func TestCredentialsSourceError(t *testing.T) {
	srv, clientTLS := newTestServer(t, serverOptions{})
	creds := &dpopgrpc.Credentials{Signer: newSigner(t, false), Source: failingSource{}}
	conn := dial(t, srv, clientTLS, creds)
	_, err := echo(t.Context(), conn, "hi")
	if st, _ := status.FromError(err); st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), "dpop: cannot get token: no token today") {
		t.Errorf("err = %v; want Unauthenticated with the source's error", err)
	}
}

type failingSource struct{}

func (failingSource) Token() (*oauth2.Token, error) { return nil, errors.New("no token today") }
