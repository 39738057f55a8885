package dpopgrpc_test

import (
	"context"
	"testing"

	"github.com/dpopkit/dpop"
	dpopgrpc "github.com/dpopkit/dpop/grpc"
	"github.com/dpopkit/dpop/resource"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// bearerCreds are the static bearer credentials DPoP is measured against:
// what grpc's credentials/oauth.TokenSource does per RPC (a token from an
// oauth2.TokenSource, a new metadata map).
type bearerCreds struct{ src oauth2.TokenSource }

func (c bearerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	tok, err := c.src.Token()
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": tok.Type() + " " + tok.AccessToken}, nil
}

func (bearerCreds) RequireTransportSecurity() bool { return true }

// BenchmarkUnary measures one unary RPC over TLS on 127.0.0.1 with a
// static bearer credential, and with DPoP (a new proof per RPC, the
// interceptors installed), against the same server. The server checks
// nothing, so the difference is what the client pays; "Server" adds the
// server's check by this package's Server on a resource.Verifier (tokens
// from a map, replays in memory, no nonces), and "dpoptest" the check by
// dpoptest's verifier (go-jose) instead, for scale. Besides the time,
// cpu-µs/op is the CPU time of the process (client and server) per RPC,
// which other load on the machine changes less.
func BenchmarkUnary(b *testing.B) {
	for _, bc := range []struct {
		name string
		ec   bool // ES256, else EdDSA
		dpop bool
		opts serverOptions
	}{
		{name: "Bearer", opts: serverOptions{noCheck: true}},
		{name: "DPoP/EdDSA", dpop: true, opts: serverOptions{noCheck: true}},
		{name: "DPoP/ES256", dpop: true, ec: true, opts: serverOptions{noCheck: true}},
		{name: "DPoP/EdDSA/Server", dpop: true},
		{name: "DPoP/ES256/Server", dpop: true, ec: true},
		{name: "DPoP/EdDSA/dpoptest", dpop: true, opts: serverOptions{dpoptest: true}},
		{name: "DPoP/ES256/dpoptest", dpop: true, ec: true, opts: serverOptions{dpoptest: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv, clientTLS := newTestServer(b, bc.opts)
			signer := newSigner(b, bc.ec)
			token := srv.issue(signer)
			src := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token, TokenType: "DPoP"})
			var conn *grpc.ClientConn
			if bc.dpop {
				conn = dial(b, srv, clientTLS, &dpopgrpc.Credentials{Signer: signer, Source: src})
			} else {
				conn = dialRaw(b, srv, clientTLS, grpc.WithPerRPCCredentials(bearerCreds{oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token})}))
			}
			ctx := context.Background()
			if _, err := echo(ctx, conn, "hi"); err != nil { // connect, learn
				b.Fatal(err)
			}
			b.ReportAllocs()
			start := cpuTime(b)
			for b.Loop() {
				if _, err := echo(ctx, conn, "hi"); err != nil {
					b.Fatal(err)
				}
			}
			if cpu := cpuTime(b) - start; cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
			}
		})
	}
}

// BenchmarkGetRequestMetadata measures the client's work for one RPC's
// metadata against its floor, the proof alone (Signer.Proof with the same
// token and nonce), in the same run.
func BenchmarkGetRequestMetadata(b *testing.B) {
	for _, ec := range []bool{false, true} {
		alg := "EdDSA"
		if ec {
			alg = "ES256"
		}
		signer := newSigner(b, ec)
		src := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "an-access-token-of-some-length-0123456789", TokenType: "DPoP"})
		b.Run(alg+"/Proof", func(b *testing.B) {
			opts := &dpop.ProofOptions{AccessToken: "an-access-token-of-some-length-0123456789"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := signer.Proof("POST", "https://api.example.com"+echoMethod, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/GetRequestMetadata", func(b *testing.B) {
			creds := &dpopgrpc.Credentials{Signer: signer, Source: src}
			ctx := credentials.NewContextWithRequestInfo(context.Background(), credentials.RequestInfo{Method: echoMethod, AuthInfo: tlsInfo})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := creds.GetRequestMetadata(ctx, "https://api.example.com/"+echoService); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkServerInterceptor measures the unary server interceptor on a
// call (no network: a context with the call's metadata) against its
// floor, resource.Verifier.Verify of the same request alone, in the same
// run; each iteration has a proof of its own, signed before the timer
// starts.
func BenchmarkServerInterceptor(b *testing.B) {
	for _, ec := range []bool{false, true} {
		alg := "EdDSA"
		if ec {
			alg = "ES256"
		}
		signer := newSigner(b, ec)
		tokens := mapTokens{"tok": signer.Thumbprint()}
		v, err := resource.NewVerifier(resource.Config{Tokens: tokens, Replay: &resource.MemoryStore{MaxEntries: 1 << 22, MaxPerKey: 1 << 22}})
		if err != nil {
			b.Fatal(err)
		}
		const url = "https://api.example.com" + echoMethod
		proofs := func(b *testing.B) []string {
			ps := make([]string, b.N)
			for i := range ps {
				if ps[i], err = signer.Proof("POST", url, &dpop.ProofOptions{AccessToken: "tok"}); err != nil {
					b.Fatal(err)
				}
			}
			return ps
		}
		b.Run(alg+"/Verify", func(b *testing.B) {
			ps := proofs(b)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := v.Verify(ctx, &resource.Request{Method: "POST", URL: url, Authorization: []string{"DPoP tok"}, DPoP: ps[i : i+1]}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/Interceptor", func(b *testing.B) {
			ps := proofs(b)
			intercept := (&dpopgrpc.Server{Verifier: v}).UnaryServerInterceptor()
			ctx := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: tlsInfo})
			info := &grpc.UnaryServerInfo{FullMethod: echoMethod}
			handler := func(ctx context.Context, req any) (any, error) { return req, nil }
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				md := metadata.MD{":authority": {"api.example.com"}, "authorization": {"DPoP tok"}, "dpop": ps[i : i+1]}
				if _, err := intercept(metadata.NewIncomingContext(ctx, md), nil, info, handler); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
