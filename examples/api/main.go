// Command api is a runnable resource server protected by DPoP (RFC 9449 §7):
// it accepts JWT access tokens (RFC 9068) of one authorization server,
// bound to the client's key, with a proof of that key on every request.
//
//	go run ./examples/api -addr 127.0.0.1:0 -issuer URL -audience AUD [-public-url URL] [-require-nonce] [-redis ADDR]
//
// It prints "listening on http://HOST:PORT" as the first line of its
// standard output, answers GET and POST on every path under /api/ with a
// JSON document of what the token grants (sub, client_id, scope, jkt), and
// serves its protected resource metadata (RFC 9728) at
// /.well-known/oauth-protected-resource. It logs with log/slog to standard
// error and stops on SIGINT or SIGTERM. See README.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dpopkit/dpop/redisstore"
	"github.com/dpopkit/dpop/resource"
)

// config is what the command line says.
type config struct {
	addr, issuer, audience, publicURL string
	requireNonce                      bool
	nonceKeyFile                      string
	redisAddr                         string
	redisTimeout                      time.Duration
	verbose                           bool
}

func main() {
	var c config
	fs := flag.NewFlagSet("api", flag.ExitOnError)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "`address` to listen on (host:port; port 0 picks a free one)")
	fs.StringVar(&c.issuer, "issuer", "", "issuer `URL` of the authorization server (RFC 8414), required")
	fs.StringVar(&c.audience, "audience", "", "this API's identifier, the `aud` of its access tokens (RFC 9068), required")
	fs.StringVar(&c.publicURL, "public-url", "", "`URL` at which clients reach the API (default: http://ADDR as listened on)")
	fs.BoolVar(&c.requireNonce, "require-nonce", false, "require a server nonce in every proof (RFC 9449 §9)")
	fs.StringVar(&c.nonceKeyFile, "nonce-key-file", "", "`file` holding the nonce key (hex or base64, at least 32 bytes), shared by every instance; else $DPOP_NONCE_KEY, else a random key")
	fs.StringVar(&c.redisAddr, "redis", "", "Redis `address` (host:port) keeping the accepted proofs, shared by every instance (default: in memory)")
	fs.DurationVar(&c.redisTimeout, "redis-timeout", 0, "bound on each claim in Redis, after which the request gets 503 (default: redisstore.DefaultTimeout)")
	fs.BoolVar(&c.verbose, "v", false, "log accepted requests too (slog Debug)")
	fs.Parse(os.Args[1:])

	level := slog.LevelInfo
	if c.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, logger, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends, then shuts the server down.
func run(ctx context.Context, c config, logger *slog.Logger, stdout *os.File) error {
	if c.issuer == "" || c.audience == "" {
		return errors.New("-issuer and -audience are required")
	}
	nonceKey, err := loadNonceKey(c.nonceKeyFile, os.Getenv("DPOP_NONCE_KEY"))
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	public := c.publicURL
	if public == "" {
		public = "http://" + ln.Addr().String()
	}
	public = strings.TrimSuffix(public, "/")

	initCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	tokens, err := resource.NewJWTVerifier(initCtx, c.issuer, c.audience, nil)
	cancel()
	if err != nil {
		return err
	}

	meta := &resource.ProtectedResourceMetadata{
		Resource:                      public,
		AuthorizationServers:          []string{c.issuer},
		BearerMethodsSupported:        []string{"header"},
		DPoPBoundAccessTokensRequired: true,
	}
	metaURL, err := meta.WellKnownURL()
	if err != nil {
		return fmt.Errorf("-public-url: %w", err)
	}

	rc := resource.Config{
		Tokens:           tokens,
		PublicURLs:       []string{public},
		ResourceMetadata: metaURL.String(),
		// The package's defaults, and Ed25519: RFC 9864's name for EdDSA on
		// Ed25519, which some clients (oauth4webapi) sign with.
		Algs:  []string{"ES256", "ES384", "ES512", "EdDSA", "Ed25519", "PS256", "RS256"},
		Trace: resource.NewLogTrace(logger),
	}
	if c.requireNonce {
		if nonceKey == nil {
			nonceKey = make([]byte, 32)
			rand.Read(nonceKey)
		}
		if rc.Nonces, err = resource.NewNonceIssuer(nonceKey, 0); err != nil {
			return err
		}
	}
	if c.redisAddr != "" {
		rdb := redis.NewClient(&redis.Options{
			Addr:                  c.redisAddr,
			ContextTimeoutEnabled: true,
		})
		defer rdb.Close()
		rc.Replay = &redisstore.Store{
			Client:  rdb,
			Timeout: c.redisTimeout,
			OnUnavailable: func(ctx context.Context, err *redisstore.UnavailableError) {
				logger.ErrorContext(ctx, "replay store unavailable", "err", err)
			},
		}
	}
	v, err := resource.NewVerifier(rc)
	if err != nil {
		return err
	}
	meta.DPoPSigningAlgValuesSupported = algs(v)

	mux := http.NewServeMux()
	mux.Handle("GET "+metaURL.Path, meta)
	api := v.Handler(http.HandlerFunc(serveAPI))
	mux.Handle("GET /api/", api)
	mux.Handle("POST /api/", api)

	srv := newServer(mux, logger)
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	logger.Info("listening", "addr", ln.Addr().String(), "public_url", public,
		"issuer", c.issuer, "audience", c.audience, "require_nonce", c.requireNonce, "redis", c.redisAddr)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return err
	}
	return nil
}

// newServer returns the HTTP server of h, with the bounds a server facing
// the Internet needs: a client that sends its headers or body slowly, or
// holds an idle connection, is cut off, and headers are read up to 64 KiB
// (the Verifier reads less of them still).
func newServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// algs returns the proof algorithms v accepts, read from its challenge, for
// the metadata (RFC 9728 §2).
func algs(v *resource.Verifier) []string {
	_, challenge := v.Challenge(&resource.Error{Reason: resource.ReasonMissingToken})
	_, rest, ok := strings.Cut(challenge, `algs="`)
	if !ok {
		return nil
	}
	list, _, _ := strings.Cut(rest, `"`)
	return strings.Fields(list)
}

// serveAPI answers with what the verified token grants.
func serveAPI(w http.ResponseWriter, r *http.Request) {
	at, ok := resource.FromContext(r.Context())
	if !ok {
		http.Error(w, "no verified token", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{
		"sub":       at.Subject,
		"client_id": at.ClientID,
		"scope":     strings.Join(at.Scopes, " "),
		"jkt":       at.JKT,
		"method":    r.Method,
		"path":      r.URL.Path,
	})
}

// loadNonceKey reads the nonce key from file, else from env: hex or
// base64 (standard or URL, padded or not). It returns nil when neither is set.
func loadNonceKey(file, env string) ([]byte, error) {
	s, from := env, "DPOP_NONCE_KEY"
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		s, from = string(b), "-nonce-key-file"
	}
	s = strings.TrimSpace(s)
	if s == "" {
		if file != "" {
			return nil, fmt.Errorf("%s: empty", from)
		}
		return nil, nil
	}
	key, err := decodeKey(s)
	if err != nil {
		return nil, fmt.Errorf("%s: not hex or base64", from)
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("%s: %d bytes, at least 32 needed", from, len(key))
	}
	return key, nil
}

func decodeKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not hex or base64")
}
