package dpopgrpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dpopkit/dpop"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// Credentials are gRPC per-RPC credentials ([credentials.PerRPCCredentials])
// that put a new DPoP proof (RFC 9449 §4) on every RPC, in the "dpop"
// metadata key, and the access token from Source as "authorization: DPoP
// <token>" (§7.1). The package documentation tells what the proof signs
// (htu and htm) and the part of the interceptors: without them, the
// Credentials never learn a server's nonce.
//
// The only required field is Signer. Credentials are safe for concurrent
// use by multiple goroutines, and one value serves any number of
// connections; do not copy it after first use.
type Credentials struct {
	// Signer signs the proofs. It is required.
	Signer *dpop.Signer

	// Source supplies the DPoP-bound access token. If nil, RPCs carry a
	// proof only. A token whose TokenType is Bearer (an unbound token) is
	// refused with a *[dpop.TokenTypeError] unless AllowBearer is set. A
	// Source that is a [dpop.TokenSource], as those of the dpop package
	// are, is waited for no longer than the RPC's context and replaces a
	// token a server refused (see [Credentials.UnaryClientInterceptor]);
	// another Source is called as it is.
	Source oauth2.TokenSource

	// AllowBearer sends a Source token of type Bearer (an unbound token, a
	// downgrade; see [dpop.Config.AllowBearer]) with the Bearer scheme and
	// a proof without ath, instead of failing.
	AllowBearer bool

	// InsecureLoopback lets the Credentials go over connections without
	// transport security, for tests against a server on this machine:
	// RequireTransportSecurity reports false, and on such a connection the
	// htu has the scheme http and the authority must be a loopback address
	// or "localhost", or the RPC fails. Over TLS nothing changes.
	InsecureLoopback bool

	// Trace, if set, is told of proofs, challenges, retries, nonces and
	// clock offsets as a [dpop.Transport]'s is, with the origin
	// "https://<authority>" (http with InsecureLoopback on a plain
	// connection) and the status code 401 for a gRPC Unauthenticated.
	Trace *dpop.Trace

	token   atomic.Pointer[presentedToken] // the last token seen
	servers authorityTable                 // what is known of each authority
}

var _ credentials.PerRPCCredentials = (*Credentials)(nil)

// Format prints which parts the Credentials have, and the signer's
// algorithm and thumbprint; never a token or a key, whatever the verb.
func (c *Credentials) Format(f fmt.State, verb rune) {
	src := "nil"
	if c.Source != nil {
		src = "set"
	}
	fmt.Fprintf(f, "dpopgrpc.Credentials{Signer: %v, Source: %s, AllowBearer: %t, InsecureLoopback: %t}",
		c.Signer, src, c.AllowBearer, c.InsecureLoopback)
}

// DialOptions returns the options that install c on a connection: as its
// per-RPC credentials, and as its unary and stream client interceptors
// (appended to any chain, as [grpc.WithChainUnaryInterceptor] does). Pass
// them to [grpc.NewClient] with the transport credentials.
func (c *Credentials) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithPerRPCCredentials(c),
		grpc.WithChainUnaryInterceptor(c.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(c.StreamClientInterceptor()),
	}
}

// RequireTransportSecurity reports whether c needs a secure connection:
// true unless InsecureLoopback is set. It implements
// [credentials.PerRPCCredentials].
func (c *Credentials) RequireTransportSecurity() bool { return !c.InsecureLoopback }

// GetRequestMetadata returns the metadata of one RPC: a new proof for it in
// "dpop" and, with a Source, the token in "authorization". uri is the
// audience gRPC passes, "https://<authority>/<service>"; the method comes
// from the context's [credentials.RequestInfo]. gRPC calls it for every
// attempt of every RPC, so no proof is ever sent twice (RFC 9449 §11.1).
// It implements [credentials.PerRPCCredentials].
func (c *Credentials) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	if c.Signer == nil {
		return nil, errors.New("dpop: Credentials' Signer is nil")
	}
	ri, ok := credentials.RequestInfoFromContext(ctx)
	if !ok || !strings.HasPrefix(ri.Method, "/") {
		return nil, errors.New("dpop: no gRPC method in the context: GetRequestMetadata is for gRPC to call")
	}
	if len(uri) == 0 {
		return nil, errors.New("dpop: gRPC passed no audience URI")
	}
	authority, err := authorityOf(uri[0])
	if err != nil {
		return nil, err
	}
	scheme := "https"
	if insecure(ri.AuthInfo) {
		if !c.InsecureLoopback {
			return nil, errors.New("dpop: connection without transport security") // gRPC refuses it before
		}
		if !loopback(authority) {
			return nil, fmt.Errorf("dpop: InsecureLoopback allows loopback authorities only, not %q", authority)
		}
		scheme = "http"
	}
	tok, err := c.presented(ctx)
	if err != nil {
		return nil, err
	}

	cl := callFrom(ctx)
	if cl != nil {
		cl.authority = authority
	}
	e, err := c.servers.await(ctx, authority, cl)
	if err != nil {
		return nil, status.FromContextError(err).Err()
	}
	htu := scheme + "://" + authority + ri.Method
	var token, hashed, authorization string // hashed: the token whose hash is the proof's ath
	if tok != nil {
		token, authorization = tok.token, tok.authorization
		if !tok.bearer {
			hashed = token
		}
	}
	tr := c.Trace
	var start time.Time
	if tr != nil && tr.ProofSigned != nil {
		start = time.Now()
	}
	proof, err := c.sign(htu, hashed, e.nonce, e.offset)
	if err != nil {
		return nil, err
	}
	if tr != nil && tr.ProofSigned != nil {
		tr.ProofSigned(dpop.ProofInfo{Context: ctx, Alg: c.Signer.Alg(), Method: http.MethodPost, HTU: htu,
			Nonce: e.nonce != "", ATH: hashed != "", Duration: time.Since(start)})
	}
	if cl != nil {
		cl.scheme, cl.nonce, cl.offset, cl.token = scheme, e.nonce, e.offset, token
	}
	if tok == nil {
		return map[string]string{"dpop": proof}, nil
	}
	return map[string]string{"dpop": proof, "authorization": authorization}, nil
}

// sign returns a proof of a POST to htu, with the ath of token and the
// nonce when they are set, its iat read from the clock shifted by offset.
func (c *Credentials) sign(htu, token, nonce string, offset time.Duration) (string, error) {
	opts := &dpop.ProofOptions{AccessToken: token, Nonce: nonce}
	if offset == 0 {
		return c.Signer.Proof(http.MethodPost, htu, opts)
	}
	return proofAt(c.Signer, htu, opts, time.Now().Add(offset))
}

// proofAt returns a proof of a POST to htu whose iat is at. Signer.Proof
// reads its iat from the clock; the one public way to sign with another
// time is a dpop.Transport's Now, so a Transport whose Base only keeps the
// proof it is handed signs it. It is the rare path, taken only once a
// server refused an iat (RFC 9449 §11.1) and its clock is known to differ.
func proofAt(s *dpop.Signer, htu string, opts *dpop.ProofOptions, at time.Time) (string, error) {
	req, err := http.NewRequest(http.MethodPost, htu, nil)
	if err != nil {
		return "", errors.New("dpop: proof URL is not a valid URL")
	}
	if opts.AccessToken != "" {
		req.Header.Set("Authorization", "DPoP "+opts.AccessToken)
	}
	nonces := dpop.NewNonceCache(1)
	if opts.Nonce != "" {
		nonces.Put(htu, opts.Nonce)
	}
	var proof string
	t := &dpop.Transport{Signer: s, Nonces: nonces, Now: func() time.Time { return at },
		Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			proof = r.Header.Get("DPoP")
			return &http.Response{StatusCode: http.StatusNoContent, Header: make(http.Header), Body: http.NoBody, Request: r}, nil
		})}
	resp, err := t.RoundTrip(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	return proof, nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// presentedToken is an access token with the authorization metadata value
// that presents it.
type presentedToken struct {
	token, authorization string
	bearer               bool // an unbound token, sent with AllowBearer
}

// presented returns the token an RPC presents, from Source, or nil without
// a Source.
func (c *Credentials) presented(ctx context.Context) (*presentedToken, error) {
	if c.Source == nil {
		return nil, nil
	}
	var tk *oauth2.Token
	var err error
	if s, ok := c.Source.(dpop.TokenSource); ok {
		tk, err = s.TokenContext(ctx)
	} else {
		tk, err = c.Source.Token()
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, fmt.Errorf("dpop: cannot get token: %w", err)
	}
	if tk == nil || tk.AccessToken == "" {
		return nil, errors.New("dpop: Credentials' Source returned no access token")
	}
	bearer := strings.EqualFold(tk.TokenType, "Bearer")
	if bearer && !c.AllowBearer {
		if tr := c.Trace; tr != nil && tr.DowngradeRefused != nil {
			tr.DowngradeRefused(dpop.DowngradeInfo{Context: ctx, TokenType: tk.TokenType})
		}
		return nil, &dpop.TokenTypeError{TokenType: tk.TokenType}
	}
	if p := c.token.Load(); p != nil && p.token == tk.AccessToken && p.bearer == bearer {
		return p, nil
	}
	p := &presentedToken{token: tk.AccessToken, bearer: bearer, authorization: "DPoP " + tk.AccessToken}
	if bearer {
		p.authorization = "Bearer " + tk.AccessToken
	}
	c.token.Store(p)
	return p, nil
}

// authorityOf returns the authority of gRPC's audience URI,
// "https://<authority>/<service>" (gRPC drops a port 443).
func authorityOf(uri string) (string, error) {
	rest, ok := strings.CutPrefix(uri, "https://")
	if !ok {
		return "", errors.New("dpop: gRPC's audience URI is not https://<authority>/<service>")
	}
	authority, _, _ := strings.Cut(rest, "/")
	if authority == "" || strings.ContainsAny(authority, "@?#\\ ") {
		return "", errors.New("dpop: gRPC's audience URI has no valid authority")
	}
	return authority, nil
}

// insecure reports whether a connection with this AuthInfo lacks transport
// security (privacy and integrity).
func insecure(ai credentials.AuthInfo) bool {
	return credentials.CheckSecurityLevel(ai, credentials.PrivacyAndIntegrity) != nil
}

// loopback reports whether authority names this machine: a loopback IP
// address or "localhost", with or without a port.
func loopback(authority string) bool {
	host := authority
	if h, _, err := net.SplitHostPort(authority); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
