package dpoptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// Paths of the server's endpoints, relative to [Server.URL]. Users reach
// them through [Server.Endpoint], [Server.PARURL] and the metadata.
const (
	pathAuthorize        = "/authorize"
	pathToken            = "/token"
	pathPAR              = "/par"
	pathDeviceAuth       = "/device_authorization"
	pathDevice           = "/device"
	pathJWKS             = "/jwks"
	pathMetadata         = "/.well-known/oauth-authorization-server" // RFC 8414 §3
	pathResourceMetadata = "/.well-known/oauth-protected-resource"   // RFC 9728 §3
	pathAPI              = "/api/"
)

// Server is a strict DPoP authorization server (RFC 9449 §5, §8, §10) and
// resource server (RFC 9449 §7, §9) listening on 127.0.0.1, started by
// [NewServer]. Its methods are safe for concurrent use.
//
// The resource server answers every path under "/api/" (see [Server.Handle]
// for what it answers); the authorization server metadata is at the RFC 8414
// well-known URI of URL.
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

	revokedAT     map[string]time.Time // jti of revoked access tokens → expiry
	assertionJTIs jtiCache             // "client_id jti" of client assertions (RFC 7523 §3)
}

// NewServer starts a Server configured by cfg (nil means defaults) on a
// random port of 127.0.0.1. It panics if it cannot listen, as
// httptest.NewServer does. Callers should call Close when done.
func NewServer(cfg *Config) *Server {
	s := &Server{
		cfg:     withDefaults(cfg),
		mux:     http.NewServeMux(),
		clients: make(map[string]Client),
		codes:   make(map[string]*authCode),
		pars:    make(map[string]*parRequest),
		refresh: make(map[string]*refreshGrant),
		devices: make(map[string]*deviceGrant),
		users:   make(map[string]string),

		revokedAT: make(map[string]time.Time),
	}
	for _, c := range s.cfg.Clients {
		s.clients[c.ID] = c
	}
	s.verifier = &Verifier{Algs: s.cfg.Algs, MaxSkew: s.cfg.MaxSkew, Now: s.now}
	s.asNonce = newNonceState(&s.cfg, s.now)
	s.rsNonce = newNonceState(&s.cfg, s.now)

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
	s.routes()

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

func (s *Server) routes() {
	s.mux.HandleFunc(pathToken, s.serveToken)
	s.mux.HandleFunc(pathAuthorize, s.serveAuthorize)
	s.mux.HandleFunc(pathPAR, s.servePAR)
	s.mux.HandleFunc(pathRevoke, s.serveRevoke)
	s.mux.HandleFunc(pathDeviceAuth, s.serveDeviceAuth)
	s.mux.HandleFunc(pathDevice, s.serveDeviceVerification)
	s.mux.HandleFunc(pathJWKS, s.serveJWKS)
	s.mux.HandleFunc(pathMetadata, s.serveMetadata)
	s.mux.HandleFunc(pathResourceMetadata, s.serveResourceMetadata)
	s.mux.Handle(pathAPI, s.protect(http.HandlerFunc(serveEcho)))
}

// Close shuts the server down and blocks until all its requests are done.
func (s *Server) Close() { s.ts.Close() }

// Endpoint returns the server's endpoints for an [oauth2.Config], with
// client_secret_basic authentication (RFC 6749 §2.3.1).
func (s *Server) Endpoint() oauth2.Endpoint {
	return oauth2.Endpoint{
		AuthURL:       s.URL + pathAuthorize,
		TokenURL:      s.URL + pathToken,
		DeviceAuthURL: s.URL + pathDeviceAuth,
		AuthStyle:     oauth2.AuthStyleInHeader,
	}
}

// PARURL returns the pushed authorization request endpoint (RFC 9126).
func (s *Server) PARURL() string { return s.URL + pathPAR }

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

// now is the server's clock: Config.Now shifted by Config.ClockOffset.
func (s *Server) now() time.Time {
	now := time.Now
	if s.cfg.Now != nil {
		now = s.cfg.Now
	}
	return now().Add(s.cfg.ClockOffset)
}

// randString returns n random bytes, base64url without padding: a valid
// 1*NQCHAR nonce (RFC 9449 §8.1), jti, code or token.
func randString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
