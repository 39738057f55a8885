package dpopgrpc_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	dpopgrpc "github.com/dpopkit/dpop/grpc"
	"github.com/dpopkit/dpop/resource"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// serve starts a gRPC server on 127.0.0.1 with the options serverOpts
// returns for its port, over TLS unless plain is set; the test stops it.
// It returns the address and the client's TLS configuration (nil when
// plain).
func serve(t testing.TB, plain bool, serverOpts func(port string) []grpc.ServerOption) (addr string, clientTLS *tls.Config) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	opts := serverOpts(port)
	if !plain {
		var serverTLS *tls.Config
		serverTLS, clientTLS = testTLS(t)
		opts = append(opts, grpc.Creds(credentials.NewTLS(serverTLS)))
	}
	s := grpc.NewServer(opts...)
	s.RegisterService(&echoDesc, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(l)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
	return l.Addr().String(), clientTLS
}

// The handler finds the verified token in its context, for unary calls
// and streams.
func TestServerContext(t *testing.T) {
	srv, clientTLS := newTestServer(t, serverOptions{requireNonce: true})
	signer := newSigner(t, true)
	conn := dial(t, srv, clientTLS, &dpopgrpc.Credentials{Signer: signer, Source: &tokenSource{srv: srv, signer: signer}})
	want := "alice " + signer.Thumbprint()

	out := new(wrapperspb.StringValue)
	var header metadata.MD
	if err := conn.Invoke(t.Context(), whoamiMethod, wrapperspb.String(""), out, grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	if out.Value != want {
		t.Errorf("Whoami = %q; want %q", out.Value, want)
	}
	if got := header.Get("dpop-nonce"); len(got) != 1 || got[0] != srv.currentNonce() {
		t.Errorf("dpop-nonce header = %q; want the current nonce %q", got, srv.currentNonce())
	}

	s, err := conn.NewStream(t.Context(), &echoDesc.Streams[1], whoamiStreamMethod)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendMsg(wrapperspb.String("")); err != nil {
		t.Fatal(err)
	}
	s.CloseSend()
	if err := s.RecvMsg(out); err != nil {
		t.Fatal(err)
	}
	if out.Value != want {
		t.Errorf("WhoamiStream = %q; want %q", out.Value, want)
	}
}

// A refusal is codes.Unauthenticated with the challenge in the
// www-authenticate trailer (no token or proof echoed), the server's date,
// and its nonce in the header and the trailer.
func TestServerRefusals(t *testing.T) {
	srv, clientTLS := newTestServer(t, serverOptions{requireNonce: true})
	signer := newSigner(t, false)
	token := srv.issue(signer)
	ecKey, ecToken := goJoseKey(t, srv)
	conn := dialRaw(t, srv, clientTLS)
	url := "https://" + srv.addr + echoMethod
	proofFor := func(url, token string, nonce bool) string {
		t.Helper()
		opts := &dpop.ProofOptions{AccessToken: token}
		if nonce {
			opts.Nonce = srv.currentNonce()
		}
		p, err := signer.Proof("POST", url, opts)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	proof := func(url string, nonce bool) string { return proofFor(url, token, nonce) }
	for _, tt := range []struct {
		name string
		md   []string // key, value pairs of the request's metadata
		want string   // the challenge's error code; "" for a challenge without error
	}{
		{"no credentials", nil, ""},
		{"Basic", []string{"authorization", "Basic YTpi"}, ""},
		{"no proof", []string{"authorization", "DPoP " + token}, "invalid_dpop_proof"},
		{"no nonce", []string{"authorization", "DPoP " + token, "dpop", proof(url, false)}, "use_dpop_nonce"},
		{"another method", []string{"authorization", "DPoP " + token, "dpop", proof("https://"+srv.addr+whoamiMethod, true)}, "invalid_dpop_proof"},
		{"another server", []string{"authorization", "DPoP " + token, "dpop", proof("https://api.example.com"+echoMethod, true)}, "invalid_dpop_proof"},
		{"path-only htu", []string{"authorization", "DPoP " + ecToken, "dpop", proofPath(t, ecKey, echoMethod, ecToken, srv.currentNonce())}, "invalid_dpop_proof"},
		{"two proofs", []string{"authorization", "DPoP " + token, "dpop", proof(url, true), "dpop", proof(url, true)}, "invalid_request"},
		{"unknown token", []string{"authorization", "DPoP not-a-token", "dpop", proofFor(url, "not-a-token", true)}, "invalid_token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var header, trailer metadata.MD
			ctx := metadata.AppendToOutgoingContext(t.Context(), tt.md...)
			err := conn.Invoke(ctx, echoMethod, wrapperspb.String("hi"), new(wrapperspb.StringValue), grpc.Header(&header), grpc.Trailer(&trailer))
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("err = %v; want Unauthenticated", err)
			}
			if tt.want != "" && !strings.Contains(status.Convert(err).Message(), tt.want) {
				t.Errorf("message %q does not name %s", status.Convert(err).Message(), tt.want)
			}
			wa := trailer.Get("www-authenticate")
			if len(wa) != 1 || !strings.HasPrefix(wa[0], "DPoP ") || !strings.Contains(wa[0], `algs="`) {
				t.Fatalf("www-authenticate = %q; want one DPoP challenge with algs", wa)
			}
			if hasErr := strings.Contains(wa[0], "error="); tt.want == "" && hasErr || tt.want != "" && !strings.Contains(wa[0], `error="`+tt.want+`"`) {
				t.Errorf("www-authenticate = %q; want error %q", wa[0], tt.want)
			}
			if strings.Contains(wa[0], token) || strings.Contains(wa[0], "eyJ") {
				t.Errorf("www-authenticate %q echoes the token or a proof", wa[0])
			}
			n := srv.currentNonce()
			if got := trailer.Get("dpop-nonce"); len(got) != 1 || got[0] != n {
				t.Errorf("dpop-nonce trailer = %q; want %q", got, n)
			}
			if d := trailer.Get("date"); len(d) != 1 {
				t.Errorf("date trailer = %q; want one", d)
			} else if at, err := http.ParseTime(d[0]); err != nil || time.Since(at) > time.Minute || time.Until(at) > time.Minute {
				t.Errorf("date trailer = %q (%v); want now", d[0], err)
			}
		})
	}
}

// proofPath returns a proof whose htu is path alone, as some clients send
// it, made with go-jose (Signer.Proof signs absolute URLs only), by key.
func proofPath(t *testing.T, key *ecdsa.PrivateKey, path, token, nonce string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(token))
	claims, _ := json.Marshal(map[string]any{
		"jti": rand.Text(), "htm": "POST", "htu": path, "iat": time.Now().Unix(),
		"ath": base64.RawURLEncoding.EncodeToString(sum[:]), "nonce": nonce,
	})
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A verifier that cannot decide (its token verifier unreachable) answers
// codes.Unavailable without a challenge: the client keeps its token.
func TestServerUnavailable(t *testing.T) {
	v, err := resource.NewVerifier(resource.Config{Tokens: unavailableTokens{}})
	if err != nil {
		t.Fatal(err)
	}
	addr, clientTLS := serve(t, false, func(string) []grpc.ServerOption { return (&dpopgrpc.Server{Verifier: v}).ServerOptions() })
	creds := &dpopgrpc.Credentials{Signer: newSigner(t, false), Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok"})}
	conn, err := grpc.NewClient(addr, append(creds.DialOptions(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var trailer metadata.MD
	err = conn.Invoke(t.Context(), echoMethod, wrapperspb.String("hi"), new(wrapperspb.StringValue), grpc.Trailer(&trailer))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("err = %v; want Unavailable", err)
	}
	if wa := trailer.Get("www-authenticate"); len(wa) != 0 {
		t.Errorf("www-authenticate = %q; want none", wa)
	}
}

type unavailableTokens struct{}

func (unavailableTokens) VerifyToken(context.Context, string) (*resource.AccessToken, error) {
	return nil, errors.Join(resource.ErrUnavailable, errors.New("the key set is unreachable"))
}

// PublicURL is the base of the htu the server accepts, whatever the
// client's authority; without it, the call's own authority is.
func TestServerPublicURL(t *testing.T) {
	for _, tt := range []struct {
		name, publicURL, authority string // "PORT" stands for the server's port
		ok                         bool
	}{
		{"own authority", "", "", true},
		{"localhost authority", "", "localhost:PORT", true},
		{"public URL", "https://localhost:PORT", "localhost:PORT", true},
		{"public URL, another authority", "https://localhost:PORT", "", false},
		{"public URL with a slash", "https://localhost:PORT/", "localhost:PORT", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tokens := mapTokens{}
			v, err := resource.NewVerifier(resource.Config{Tokens: tokens})
			if err != nil {
				t.Fatal(err)
			}
			addr, clientTLS := serve(t, false, func(port string) []grpc.ServerOption {
				return (&dpopgrpc.Server{Verifier: v, PublicURL: strings.ReplaceAll(tt.publicURL, "PORT", port)}).ServerOptions()
			})
			_, port, _ := net.SplitHostPort(addr)

			signer := newSigner(t, false)
			tokens["tok"] = signer.Thumbprint()
			creds := &dpopgrpc.Credentials{Signer: signer, Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok"})}
			opts := append(creds.DialOptions(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))
			if tt.authority != "" {
				opts = append(opts, grpc.WithAuthority(strings.ReplaceAll(tt.authority, "PORT", port)))
			}
			conn, err := grpc.NewClient(addr, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_, err = echo(t.Context(), conn, "hi")
			if tt.ok && err != nil || !tt.ok && !strings.Contains(fmt.Sprint(err), "invalid_dpop_proof (htu)") {
				t.Errorf("err = %v; want ok %t (else an htu refusal)", err, tt.ok)
			}
		})
	}
}

// On a connection without transport security, the URL has the scheme
// http.
func TestServerPlain(t *testing.T) {
	tokens := mapTokens{}
	v, err := resource.NewVerifier(resource.Config{Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, true, func(string) []grpc.ServerOption { return (&dpopgrpc.Server{Verifier: v}).ServerOptions() })
	signer := newSigner(t, false)
	tokens["tok"] = signer.Thumbprint()
	creds := &dpopgrpc.Credentials{Signer: signer, Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok"}), InsecureLoopback: true}
	conn, err := grpc.NewClient(addr, append(creds.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got, err := echo(t.Context(), conn, "hi"); err != nil || got != "echo: hi" {
		t.Errorf("Echo = %q, %v; want echo: hi", got, err)
	}
}

// A Server without a Verifier refuses every call with codes.Internal.
func TestServerNoVerifier(t *testing.T) {
	addr, clientTLS := serve(t, false, func(string) []grpc.ServerOption { return (&dpopgrpc.Server{}).ServerOptions() })
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := echo(t.Context(), conn, "hi"); status.Code(err) != codes.Internal {
		t.Errorf("err = %v; want Internal", err)
	}
	if _, err := count(t.Context(), conn, 1); status.Code(err) != codes.Internal {
		t.Errorf("stream: err = %v; want Internal", err)
	}
}

// mapTokens is a TokenVerifier of the tokens it maps to the jkt they are
// bound to, for the subject alice.
type mapTokens map[string]string

func (m mapTokens) VerifyToken(_ context.Context, token string) (*resource.AccessToken, error) {
	jkt, ok := m[token]
	if !ok {
		return nil, errors.New("unknown token")
	}
	return &resource.AccessToken{Subject: "alice", JKT: jkt}, nil
}

// goJoseKey returns a new P-256 key and a token the test server issued
// bound to it (its RFC 7638 thumbprint, by go-jose).
func goJoseKey(t *testing.T, srv *testServer) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	tok := "tok-" + rand.Text()
	srv.tokens[tok] = base64.RawURLEncoding.EncodeToString(tp)
	return key, tok
}
