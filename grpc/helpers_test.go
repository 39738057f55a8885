package dpopgrpc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	dpopgrpc "github.com/dpopkit/dpop/grpc"
	"github.com/dpopkit/dpop/resource"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The test service, "dpop.test.Echo", written by hand (no protoc): Echo
// is unary, Count streams n messages for the request "n"; Whoami and
// WhoamiStream answer the subject and the jkt of the token in their
// context (resource.FromContext), or "nobody".
const (
	echoService        = "dpop.test.Echo"
	echoMethod         = "/" + echoService + "/Echo"
	countMethod        = "/" + echoService + "/Count"
	whoamiMethod       = "/" + echoService + "/Whoami"
	whoamiStreamMethod = "/" + echoService + "/WhoamiStream"
)

// whoami describes the token a handler finds in its context.
func whoami(ctx context.Context) string {
	if at, ok := resource.FromContext(ctx); ok {
		return at.Subject + " " + at.JKT
	}
	return "nobody"
}

var echoDesc = grpc.ServiceDesc{
	ServiceName: echoService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Echo", Handler: unaryHandler(echoMethod, func(ctx context.Context, req string) string { return "echo: " + req })},
		{MethodName: "Whoami", Handler: unaryHandler(whoamiMethod, func(ctx context.Context, _ string) string { return whoami(ctx) })},
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Count",
		ServerStreams: true,
		Handler: func(_ any, ss grpc.ServerStream) error {
			req := new(wrapperspb.StringValue)
			if err := ss.RecvMsg(req); err != nil {
				return err
			}
			n, _ := strconv.Atoi(req.Value)
			for i := 1; i <= n; i++ {
				if err := ss.SendMsg(wrapperspb.String(strconv.Itoa(i))); err != nil {
					return err
				}
			}
			return nil
		},
	}, {
		StreamName:    "WhoamiStream",
		ServerStreams: true,
		Handler: func(_ any, ss grpc.ServerStream) error {
			if err := ss.RecvMsg(new(wrapperspb.StringValue)); err != nil {
				return err
			}
			return ss.SendMsg(wrapperspb.String(whoami(ss.Context())))
		},
	}},
}

// unaryHandler returns the handler of the unary method named full, which
// answers f of the request.
func unaryHandler(full string, f func(context.Context, string) string) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	return func(_ any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
		req := new(wrapperspb.StringValue)
		if err := dec(req); err != nil {
			return nil, err
		}
		h := func(ctx context.Context, req any) (any, error) {
			return wrapperspb.String(f(ctx, req.(*wrapperspb.StringValue).Value)), nil
		}
		if in == nil {
			return h(ctx, req)
		}
		return in(ctx, req, &grpc.UnaryServerInfo{FullMethod: full}, h)
	}
}

// echo calls Echo on conn.
func echo(ctx context.Context, conn *grpc.ClientConn, msg string) (string, error) {
	out := new(wrapperspb.StringValue)
	err := conn.Invoke(ctx, echoMethod, wrapperspb.String(msg), out)
	return out.GetValue(), err
}

// count calls Count on conn and returns the messages it streamed.
func count(ctx context.Context, conn *grpc.ClientConn, n int) ([]string, error) {
	s, err := conn.NewStream(ctx, &echoDesc.Streams[0], countMethod)
	if err != nil {
		return nil, err
	}
	if err := s.SendMsg(wrapperspb.String(strconv.Itoa(n))); err != nil {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	var got []string
	for {
		m := new(wrapperspb.StringValue)
		if err := s.RecvMsg(m); err != nil {
			if err.Error() == "EOF" {
				return got, nil
			}
			return got, err
		}
		got = append(got, m.Value)
	}
}

// testTLS returns a server certificate for 127.0.0.1 and localhost,
// self-signed, made now, and a client config that trusts it.
func testTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	server, client, err := selfSigned()
	if err != nil {
		t.Fatal(err)
	}
	return server, client
}

// exampleTLS returns testTLS's configurations as gRPC transport
// credentials, for examples.
func exampleTLS() (server, client credentials.TransportCredentials) {
	s, c, err := selfSigned()
	if err != nil {
		log.Fatal(err)
	}
	return credentials.NewTLS(s), credentials.NewTLS(c)
}

// selfSigned returns a server certificate for 127.0.0.1 and localhost,
// self-signed, made now, and a client config that trusts it.
func selfSigned() (server, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "dpopgrpc test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	return server, &tls.Config{RootCAs: pool}, nil
}

// newSigner returns a signer for a new key: Ed25519, or ECDSA P-256 when
// ec is set.
func newSigner(t testing.TB, ec bool) *dpop.Signer {
	t.Helper()
	var s *dpop.Signer
	var err error
	if ec {
		k, kerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if kerr != nil {
			t.Fatal(kerr)
		}
		s, err = dpop.NewSigner(k, nil)
	} else {
		_, k, kerr := ed25519.GenerateKey(rand.Reader)
		if kerr != nil {
			t.Fatal(kerr)
		}
		s, err = dpop.NewSigner(k, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testServer is a gRPC resource server on 127.0.0.1 that checks DPoP
// with this package's [dpopgrpc.Server] on a resource.Verifier or, with
// the option dpoptest, in a test interceptor with dpoptest's Verifier
// (go-jose), the independent verifier of this repository: the proof
// (RFC 9449 §4.3) for a POST to base + "/<service>/<method>", the token
// against the tokens it issued (their key binding, §7.1), the nonce when
// required (§9). It refuses with codes.Unauthenticated, the challenge in
// the www-authenticate trailer, its nonce in dpop-nonce and its clock in
// date. It records the proofs it receives and the outcome of each call.
type testServer struct {
	addr string // host:port
	base string // the URL its htu must start with: https://127.0.0.1:port

	verifier dpoptest.Verifier     // with the option dpoptest
	server   *dpopgrpc.Server      // otherwise
	nonces   *resource.NonceIssuer // of server, with requireNonce
	grpc     *grpc.Server

	mu           sync.Mutex // guards the fields below
	requireNonce bool       // a nonce is required
	nonce        string     // the current nonce
	prevNonce    string     // the one before, accepted with acceptPrevious
	opts         serverOptions
	nonceSeq     int               // for new nonces
	proofOnly    bool              // a proof without a token is accepted
	clockOffset  time.Duration     // the server's clock minus ours
	noDate       bool              // refusals of an iat go without the server's date
	refuseTokens bool              // every token is refused
	tokens       map[string]string // token → the jkt it is bound to
	revoked      map[string]bool   // tokens refused
	proofs       []string          // every proof received, in order
	auths        []string          // the authorization of each
	codes        []string          // the outcome of each: "" for success, else the error code
}

type serverOptions struct {
	requireNonce   bool   // a nonce is required (RFC 9449 §9)
	acceptPrevious bool   // after a rotation, the nonce before the current one is accepted too
	noCheck        bool   // nothing is checked (benchmarks)
	insecure       bool   // no TLS
	base           string // if set, instead of the listener's URL

	// dpoptest checks the calls with dpoptest's verifier in a test
	// interceptor; the options below need it.
	dpoptest        bool
	alwaysChallenge bool // every call is refused with use_dpop_nonce and a new nonce
	proofOnly       bool // a call without a token is accepted
	bearerOnly      bool // refusals challenge for Bearer, as a server that does not speak DPoP does
}

// bothServers runs f against a testServer of this package (resource) and
// one of dpoptest's verifier, each in a subtest.
func bothServers(t *testing.T, f func(t *testing.T, dpoptest bool)) {
	t.Run("resource", func(t *testing.T) { f(t, false) })
	t.Run("dpoptest", func(t *testing.T) { f(t, true) })
}

// newTestServer starts a testServer; the test stops it.
func newTestServer(t testing.TB, opts serverOptions) (*testServer, *tls.Config) {
	t.Helper()
	s := &testServer{
		opts:         opts,
		requireNonce: opts.requireNonce || opts.alwaysChallenge,
		proofOnly:    opts.proofOnly,
		tokens:       make(map[string]string),
		revoked:      make(map[string]bool),
	}
	if (opts.alwaysChallenge || opts.proofOnly || opts.bearerOnly) && !opts.dpoptest {
		t.Fatal("test server: alwaysChallenge, proofOnly and bearerOnly need dpoptest")
	}
	s.verifier.Now = s.now
	s.rotate()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	var clientTLS *tls.Config
	var serverOpts []grpc.ServerOption
	if opts.dpoptest || opts.noCheck {
		serverOpts = []grpc.ServerOption{
			grpc.ChainUnaryInterceptor(s.unary),
			grpc.ChainStreamInterceptor(s.stream),
		}
	} else {
		cfg := resource.Config{
			Tokens: testTokens{s},
			Now:    s.now,
			Trace: &resource.Trace{
				Verified: func(resource.VerifiedInfo) { s.outcome("") },
				Refused: func(ri resource.RefusedInfo) {
					if ri.Code == "" {
						s.outcome("refused " + string(ri.Reason))
					} else {
						s.outcome(string(ri.Code))
					}
				},
			},
		}
		if opts.requireNonce {
			s.nonces, err = resource.NewNonceIssuer([]byte(rand.Text()+rand.Text()), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Nonces = s.nonces
		}
		v, err := resource.NewVerifier(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.server = &dpopgrpc.Server{Verifier: v, PublicURL: opts.base, Now: s.now}
		serverOpts = append([]grpc.ServerOption{
			grpc.ChainUnaryInterceptor(s.recordUnary),
			grpc.ChainStreamInterceptor(s.recordStream),
		}, s.server.ServerOptions()...)
	}
	if opts.insecure {
		s.base = "http://" + s.addr
	} else {
		var serverTLS *tls.Config
		serverTLS, clientTLS = testTLS(t)
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(serverTLS)))
		s.base = "https://" + s.addr
	}
	if opts.base != "" {
		s.base = opts.base
	}
	s.grpc = grpc.NewServer(serverOpts...)
	s.grpc.RegisterService(&echoDesc, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.grpc.Serve(l)
	}()
	t.Cleanup(func() {
		s.grpc.Stop()
		<-done
	})
	return s, clientTLS
}

func (s *testServer) now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Add(s.clockOffset)
}

// setBase sets the URL the server's htu must start with.
func (s *testServer) setBase(base string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.base = base
}

// rotate makes a new current nonce; the old one is refused from now on,
// unless acceptPrevious is set.
func (s *testServer) rotate() {
	if s.nonces != nil {
		s.nonces.Rotate([]byte(rand.Text() + rand.Text()))
		if !s.opts.acceptPrevious {
			s.nonces.Rotate([]byte(rand.Text() + rand.Text()))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nonceSeq++
	s.prevNonce = s.nonce
	s.nonce = fmt.Sprintf("nonce-%d-%s", s.nonceSeq, rand.Text()[:8])
}

// currentNonce returns the nonce the server announces now.
func (s *testServer) currentNonce() string {
	if s.server != nil {
		return s.server.Verifier.Nonce()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nonce
}

// issue returns a new token bound to the key of signer.
func (s *testServer) issue(signer *dpop.Signer) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := "tok-" + rand.Text()
	s.tokens[tok] = signer.Thumbprint()
	return tok
}

// revoke makes the server refuse tok.
func (s *testServer) revoke(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[tok] = true
}

// outcomes returns the outcome of every request so far: "ok" or the error
// code of its refusal.
func (s *testServer) outcomes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.codes))
	for i, c := range s.codes {
		out[i] = c
		if c == "" {
			out[i] = "ok"
		}
	}
	return out
}

// lastProof returns the last proof received and its authorization value.
func (s *testServer) lastProof() (proof, auth string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.proofs) == 0 {
		return "", ""
	}
	return s.proofs[len(s.proofs)-1], s.auths[len(s.auths)-1]
}

// count returns how many requests had the outcome code ("ok" for
// success).
func (s *testServer) count(code string) int {
	n := 0
	for _, c := range s.outcomes() {
		if c == code {
			n++
		}
	}
	return n
}

// refusal is a DPoP refusal of the test server.
type refusal struct {
	code, desc string
	date       bool // whether the server's clock goes with it
}

// record records the DPoP metadata of a call.
func (s *testServer) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := md["dpop"]; len(p) == 1 {
		s.proofs = append(s.proofs, p[0])
		s.auths = append(s.auths, strings.Join(md["authorization"], ","))
	}
}

// outcome records the outcome of a call: "" for success.
func (s *testServer) outcome(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes = append(s.codes, code)
}

func (s *testServer) recordUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	s.record(ctx)
	return h(ctx, req)
}

func (s *testServer) recordStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	s.record(ss.Context())
	return h(srv, ss)
}

// testTokens is the TokenVerifier of a testServer: the tokens it issued,
// as long as they are not revoked, for the subject "alice".
type testTokens struct{ s *testServer }

func (tt testTokens) VerifyToken(_ context.Context, token string) (*resource.AccessToken, error) {
	s := tt.s
	s.mu.Lock()
	defer s.mu.Unlock()
	jkt, ok := s.tokens[token]
	if !ok || s.revoked[token] || s.refuseTokens {
		return nil, errors.New("dpop test server: unknown or revoked token")
	}
	return &resource.AccessToken{Subject: "alice", JKT: jkt, Scopes: []string{"echo"}}, nil
}

func (s *testServer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	hdr, trl, err := s.check(ctx, info.FullMethod)
	if hdr != nil {
		grpc.SetHeader(ctx, hdr)
	}
	if err != nil {
		grpc.SetTrailer(ctx, trl)
		return nil, err
	}
	return h(ctx, req)
}

func (s *testServer) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	hdr, trl, err := s.check(ss.Context(), info.FullMethod)
	if hdr != nil {
		ss.SetHeader(hdr)
	}
	if err != nil {
		ss.SetTrailer(trl)
		return err
	}
	return h(srv, ss)
}

// check checks the DPoP credentials of a call of method, and returns the
// header and trailer of the answer and its error.
func (s *testServer) check(ctx context.Context, method string) (header, trailer metadata.MD, err error) {
	if s.opts.noCheck {
		return nil, nil, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	ref := s.refusal(md, method)
	if s.opts.alwaysChallenge {
		s.rotate()
		ref = &refusal{code: "use_dpop_nonce", desc: "a new nonce, every time"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := md["dpop"]; len(p) == 1 {
		s.proofs = append(s.proofs, p[0])
		s.auths = append(s.auths, strings.Join(md["authorization"], ","))
	}
	header = metadata.MD{}
	if s.requireNonce {
		header.Set("dpop-nonce", s.nonce)
	}
	if ref == nil {
		s.codes = append(s.codes, "")
		return header, nil, nil
	}
	s.codes = append(s.codes, ref.code)
	trailer = metadata.Pairs("www-authenticate",
		fmt.Sprintf(`DPoP error=%q, error_description=%q, algs="ES256 EdDSA"`, ref.code, ref.desc))
	if s.opts.bearerOnly {
		trailer.Set("www-authenticate", fmt.Sprintf(`Bearer error=%q, error_description=%q`, ref.code, ref.desc))
	}
	if s.requireNonce {
		trailer.Set("dpop-nonce", s.nonce)
	}
	if ref.date && !s.noDate {
		trailer.Set("date", time.Now().Add(s.clockOffset).UTC().Format(http.TimeFormat))
	}
	return header, trailer, status.Error(codes.Unauthenticated, "dpop test server: "+ref.code)
}

// refusal returns why the server refuses a call of method with metadata
// md, or nil.
func (s *testServer) refusal(md metadata.MD, method string) *refusal {
	s.mu.Lock()
	base, proofOnly, requireNonce, nonce, prev := s.base, s.proofOnly, s.requireNonce, s.nonce, s.prevNonce
	s.mu.Unlock()
	var token string
	switch auth := md["authorization"]; {
	case len(auth) == 0 && proofOnly:
	case len(auth) != 1 || !strings.HasPrefix(auth[0], "DPoP "):
		return &refusal{code: "invalid_token", desc: "want one DPoP token"}
	default:
		token = strings.TrimPrefix(auth[0], "DPoP ")
	}
	proofs := md["dpop"]
	if len(proofs) != 1 {
		return &refusal{code: "invalid_dpop_proof", desc: "want one proof"}
	}
	p, err := s.verifier.Verify(proofs[0], "POST", base+method, token)
	if err != nil {
		var pe *dpoptest.ProofError
		iat := errors.As(err, &pe) && pe.Check == "iat"
		return &refusal{code: "invalid_dpop_proof", desc: err.Error(), date: iat}
	}
	if requireNonce && p.Nonce != nonce && !(s.opts.acceptPrevious && p.Nonce == prev && prev != "") {
		return &refusal{code: "use_dpop_nonce", desc: "nonce required"}
	}
	if token == "" {
		return nil
	}
	s.mu.Lock()
	jkt, issued := s.tokens[token]
	revoked := s.revoked[token] || s.refuseTokens
	s.mu.Unlock()
	switch {
	case !issued || revoked:
		return &refusal{code: "invalid_token", desc: "unknown or revoked token"}
	case jkt != p.Thumbprint:
		return &refusal{code: "invalid_token", desc: "token bound to another key"}
	}
	return nil
}

// dial connects to s with creds' dial options.
func dial(t testing.TB, s *testServer, clientTLS *tls.Config, creds *dpopgrpc.Credentials, extra ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts := append(creds.DialOptions(), extra...)
	if clientTLS != nil {
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	conn, err := grpc.NewClient(s.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dialRaw connects to s over TLS with opts only.
func dialRaw(t testing.TB, s *testServer, clientTLS *tls.Config, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(s.addr, append(opts, grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// tokenSource is a dpop.TokenSource whose tokens the test server issues,
// bound to signer's key; Invalidate replaces the token at the next call.
type tokenSource struct {
	srv    *testServer
	signer *dpop.Signer

	mu      sync.Mutex // guards the fields below
	tok     string
	fetches int
}

var _ dpop.TokenSource = (*tokenSource)(nil)

func (s *tokenSource) Token() (*oauth2.Token, error) { return s.TokenContext(context.Background()) }

func (s *tokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == "" {
		s.tok = s.srv.issue(s.signer)
		s.fetches++
	}
	return &oauth2.Token{AccessToken: s.tok, TokenType: "DPoP"}, nil
}

func (s *tokenSource) Invalidate(tok *oauth2.Token) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok.AccessToken == s.tok {
		s.tok = ""
	}
	return true
}

func (s *tokenSource) fetched() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// claims returns the claims of a proof, read without a check (the test
// server checked it).
func claims(t testing.TB, proof string) map[string]any {
	t.Helper()
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Fatalf("proof %q is not a compact JWS", proof)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// staticCreds are per-RPC credentials with fixed metadata: a replayed
// proof, or a bearer token.
type staticCreds map[string]string

func (c staticCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return c, nil
}

func (c staticCreds) RequireTransportSecurity() bool { return true }
