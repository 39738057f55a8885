package dpoptest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// Paths of the server's endpoints, relative to [Server.URL].
const (
	PathAuthorize        = "/authorize"
	PathToken            = "/token"
	PathPAR              = "/par"
	PathDeviceAuth       = "/device_authorization"
	PathDevice           = "/device"
	PathJWKS             = "/jwks"
	PathMetadata         = "/.well-known/oauth-authorization-server"
	PathResourceMetadata = "/.well-known/oauth-protected-resource"
	PathAPI              = "/api/"
)

// Config configures a [Server]. The zero value (or a nil *Config) gives a
// server without nonces, accepting DefaultAlgs, with DefaultClients.
type Config struct {
	// RequireNonce makes the authorization server and the resource server
	// demand a server-provided nonce (RFC 9449 §8, §9): a proof without the
	// current nonce gets a use_dpop_nonce challenge carrying it. Every
	// response of either server then carries its current DPoP-Nonce.
	RequireNonce bool

	// NonceEvery rotates each nonce after this many proofs accepted by its
	// server; 0 means never by count. By default only the current nonce is
	// accepted, so a client that ignores the DPoP-Nonce of a 2xx response
	// pays a challenge and a retry after each rotation.
	NonceEvery int

	// NonceWindow is how many of the newest nonces are accepted: the
	// current one and NonceWindow-1 before it. 0 or 1 accepts the current
	// nonce only. Real servers keep a window so that requests in flight
	// during a rotation, and their retries, still pass.
	NonceWindow int

	// Algs, MaxSkew and Now configure the [Verifier]; see its fields. Now is
	// also the server's clock for token, code and device code lifetimes.
	Algs    []string
	MaxSkew time.Duration
	Now     func() time.Time

	// TokenTTL is the access token lifetime. If zero, one hour.
	TokenTTL time.Duration

	// TokenType is the token_type the token endpoint answers. If empty,
	// "DPoP" (RFC 9449 §5). "Bearer" lets client tests see a downgrade;
	// the token is still bound to the proof's key.
	TokenType string

	// Clients are the registered clients. If nil, DefaultClients.
	Clients []Client

	// DeviceInterval is the minimum time between two polls of one device
	// code (RFC 8628 §3.5); a faster poll gets slow_down and raises the
	// minimum by 5 seconds. If zero, one second. If negative, polls are
	// never too fast. The interval advertised is rounded up to whole
	// seconds, at least 1.
	DeviceInterval time.Duration

	// DeviceCodeTTL is the lifetime of a device code. If zero, 10 minutes.
	DeviceCodeTTL time.Duration
}

// Server is a strict DPoP authorization server (RFC 9449 §5, §8, §10) and
// resource server (RFC 9449 §7, §9) listening on 127.0.0.1, started by
// [NewServer]. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL, "http://127.0.0.1:port", without a trailing
	// slash. It is also the issuer and the access tokens' audience.
	URL string

	cfg      Config
	ts       *httptest.Server
	mux      *http.ServeMux
	verifier *Verifier
	asNonce  *nonceState // authorization server nonce (§8)
	rsNonce  *nonceState // resource server nonce (§9)
	key      *ecdsa.PrivateKey
	kid      string
	signer   jose.Signer
	clients  map[string]Client

	mu      sync.Mutex // guards the fields below
	reqs    []*Request // written back when each request completes
	codes   map[string]*authCode
	pars    map[string]*parRequest
	refresh map[string]*refreshGrant
	devices map[string]*deviceGrant // by device_code
	users   map[string]string       // user_code → device_code
}

// NewServer starts a Server configured by cfg (nil means defaults) on a
// random port of 127.0.0.1. It panics if it cannot listen, as
// httptest.NewServer does. Callers should call Close when done.
func NewServer(cfg *Config) *Server {
	s := &Server{
		mux:     http.NewServeMux(),
		clients: make(map[string]Client),
		codes:   make(map[string]*authCode),
		pars:    make(map[string]*parRequest),
		refresh: make(map[string]*refreshGrant),
		devices: make(map[string]*deviceGrant),
		users:   make(map[string]string),
	}
	if cfg != nil {
		s.cfg = *cfg
	}
	if s.cfg.TokenTTL <= 0 {
		s.cfg.TokenTTL = time.Hour
	}
	if s.cfg.TokenType == "" {
		s.cfg.TokenType = "DPoP"
	}
	if s.cfg.Clients == nil {
		s.cfg.Clients = DefaultClients
	}
	if s.cfg.DeviceInterval == 0 {
		s.cfg.DeviceInterval = time.Second
	}
	if s.cfg.DeviceCodeTTL <= 0 {
		s.cfg.DeviceCodeTTL = 10 * time.Minute
	}
	for _, c := range s.cfg.Clients {
		s.clients[c.ID] = c
	}
	s.verifier = &Verifier{Algs: s.cfg.Algs, MaxSkew: s.cfg.MaxSkew, Now: s.cfg.Now}
	s.asNonce = newNonceState(s.cfg.NonceEvery, s.cfg.NonceWindow)
	s.rsNonce = newNonceState(s.cfg.NonceEvery, s.cfg.NonceWindow)

	var err error
	s.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("dpoptest: generating the token signing key: " + err.Error())
	}
	s.kid = randString(8)
	s.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", s.kid))
	if err != nil {
		panic("dpoptest: " + err.Error())
	}

	s.mux.HandleFunc(PathToken, s.serveToken)
	s.mux.HandleFunc(PathAuthorize, s.serveAuthorize)
	s.mux.HandleFunc(PathPAR, s.servePAR)
	s.mux.HandleFunc(PathDeviceAuth, s.serveDeviceAuth)
	s.mux.HandleFunc(PathDevice, s.serveDeviceVerification)
	s.mux.HandleFunc(PathJWKS, s.serveJWKS)
	s.mux.HandleFunc(PathMetadata, s.serveMetadata)
	s.mux.HandleFunc(PathResourceMetadata, s.serveResourceMetadata)
	s.mux.Handle(PathAPI, s.protect(http.HandlerFunc(serveEcho)))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("dpoptest: failed to listen on 127.0.0.1: " + err.Error())
	}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.ts.Listener.Close()
	s.ts.Listener = l
	// Set before Start: a client in another process may call at once, and
	// the handlers read s.URL (httptest derives ts.URL the same way).
	s.URL = "http://" + l.Addr().String()
	s.ts.Start()
	return s
}

// Close shuts the server down and blocks until all its requests are done.
func (s *Server) Close() { s.ts.Close() }

// Endpoint returns the server's endpoints for an [oauth2.Config], with
// client_secret_basic authentication (RFC 6749 §2.3.1).
func (s *Server) Endpoint() oauth2.Endpoint {
	return oauth2.Endpoint{
		AuthURL:       s.URL + PathAuthorize,
		TokenURL:      s.URL + PathToken,
		DeviceAuthURL: s.URL + PathDeviceAuth,
		AuthStyle:     oauth2.AuthStyleInHeader,
	}
}

// PARURL returns the pushed authorization request endpoint (RFC 9126).
func (s *Server) PARURL() string { return s.URL + PathPAR }

// Verifier returns the verifier the server checks proofs with. Its jti
// cache is shared by the authorization and resource servers.
func (s *Server) Verifier() *Verifier { return s.verifier }

// ASNonce returns the authorization server's current nonce (RFC 9449 §8).
func (s *Server) ASNonce() string { return s.asNonce.get() }

// RSNonce returns the resource server's current nonce (RFC 9449 §9).
func (s *Server) RSNonce() string { return s.rsNonce.get() }

// RotateNonces replaces both nonces now; proofs carrying the old values
// are then challenged.
func (s *Server) RotateNonces() {
	s.asNonce.rotate()
	s.rsNonce.rotate()
}

func (s *Server) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

type recKey struct{}

// serveHTTP records every request around the mux.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &Request{Time: s.now(), Method: r.Method, Path: r.URL.Path, Kind: "other"}
	slot := new(Request)
	*slot = *rec
	s.mu.Lock()
	s.reqs = append(s.reqs, slot)
	s.mu.Unlock()

	sw := &statusWriter{ResponseWriter: w}
	s.mux.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), recKey{}, rec)))
	rec.Status = sw.status
	if rec.Status == 0 {
		rec.Status = http.StatusOK
	}
	s.mu.Lock()
	*slot = *rec
	s.mu.Unlock()
}

// record returns the Request record of r, filled in by the handlers.
func record(r *http.Request) *Request {
	if rec, ok := r.Context().Value(recKey{}).(*Request); ok {
		return rec
	}
	return new(Request) // a handler used outside the Server
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush sends buffered data to the client, if the underlying writer can.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}
