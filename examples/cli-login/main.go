// Command cli-login logs a user in to an OAuth 2.0 authorization server with
// DPoP-bound tokens (RFC 9449) and calls an API with them, the way a
// command-line tool would.
//
// Usage:
//
//	cli-login [flags]          log in if needed, then call -api
//	cli-login [flags] logout   revoke the tokens, delete them and the key
//
// The first run discovers the authorization server (RFC 8414), creates a
// DPoP key, and logs in with the authorization code grant, PKCE and dpop_jkt
// on a loopback redirect (RFC 8252, RFC 7636, RFC 9449 §10), through a pushed
// authorization request (RFC 9126) when the server offers one; with -device,
// with the device authorization grant (RFC 8628). The key and the token,
// bound to each other, are kept in the OS keychain (or, with -store file, in
// files). Later runs reuse them, refreshing the token with the same key, and
// log in again only when the stored login cannot be used.
//
// With -store tpm the key is made inside the TPM (/dev/tpmrm0, TPM Base
// Services on Windows, or -tpm PATH) and never leaves it; only its
// TPM-wrapped blob is stored, with the token, in the keychain or (with
// -tpm-store file) in files, where it is useless on another machine (see
// package tpmkey). Without a TPM, it says so and stores nothing.
//
// This program is a module of its own (examples/cli-login/go.mod) so that
// the dpop module does not depend on go-tpm: build it with
// "cd examples/cli-login && go build".
//
// Entries are named dpop-key-<profile> and dpop-token-<profile>, where
// <profile> is derived from the issuer and the client ID, so several servers
// can be used side by side.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/keystore"
	"github.com/dpopkit/dpop/tpmkey"
	"golang.org/x/oauth2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// appName names this program to the user, on the login result page.
const appName = "cli-login"

// options are the parsed command line.
type options struct {
	issuer    string
	clientID  string
	scopes    []string
	api       string
	device    bool
	store     string // "keychain", "file" or "tpm"
	tpmStore  string // with -store tpm: "keychain" or "file", where the key's blob and the token live
	tpm       string // with -store tpm: the TPM device or simulator socket
	dir       string
	service   string
	noBrowser bool
	timeout   time.Duration
	command   string // "" (login if needed, call the API) or "logout"
}

// commands are the subcommands; "" is the default.
var commands = map[string]bool{"": true, "logout": true}

// parseArgs parses the command line; getenv supplies the DPOP_* fallbacks.
// The subcommand may come before or after the flags.
func parseArgs(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		o.command, args = args[0], args[1:]
	}
	var scopes string
	fs := flag.NewFlagSet("cli-login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.issuer, "issuer", getenv("DPOP_ISSUER"), "authorization server issuer URL (env DPOP_ISSUER)")
	fs.StringVar(&o.clientID, "client-id", getenv("DPOP_CLIENT_ID"), "OAuth client ID of this public client (env DPOP_CLIENT_ID)")
	fs.StringVar(&scopes, "scopes", envOr(getenv, "DPOP_SCOPES", "openid"), "scopes to ask for, space or comma separated (env DPOP_SCOPES)")
	fs.StringVar(&o.api, "api", getenv("DPOP_API"), "URL to GET with the token after login (env DPOP_API)")
	fs.BoolVar(&o.device, "device", false, "log in with the device authorization grant (RFC 8628) instead of a browser redirect")
	fs.StringVar(&o.store, "store", "keychain", "where the key and token live: keychain, file, or tpm (the key in the TPM, which it cannot leave; its TPM-wrapped blob and the token in -tpm-store)")
	fs.StringVar(&o.tpmStore, "tpm-store", "keychain", "with -store tpm: where the key's blob and the token live: keychain or file")
	fs.StringVar(&o.tpm, "tpm", tpmkey.SystemPath, "with -store tpm: the TPM device, or a TPM simulator's Unix socket")
	fs.StringVar(&o.dir, "dir", "", "directory of -store file (default <user config dir>/dpop-cli-login)")
	fs.StringVar(&o.service, "service", "dpop-cli-login", "keychain service name of -store keychain")
	fs.BoolVar(&o.noBrowser, "no-browser", false, "print the login URL instead of opening a browser")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for the login to complete")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: cli-login [flags]          log in if needed, then call -api\n"+
			"       cli-login [flags] logout   revoke the tokens, delete them and the key\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if rest := fs.Args(); len(rest) > 0 {
		if o.command != "" || len(rest) > 1 {
			return nil, fmt.Errorf("cli-login: unexpected arguments %q", rest)
		}
		o.command = rest[0]
	}
	o.scopes = strings.FieldsFunc(scopes, func(r rune) bool { return r == ' ' || r == ',' })

	switch {
	case !commands[o.command]:
		return nil, fmt.Errorf("cli-login: unknown command %q (want none or logout)", o.command)
	case o.issuer == "":
		return nil, errors.New("cli-login: -issuer (or DPOP_ISSUER) is required")
	case o.clientID == "":
		return nil, errors.New("cli-login: -client-id (or DPOP_CLIENT_ID) is required")
	case o.timeout <= 0:
		return nil, errors.New("cli-login: -timeout must be positive")
	case o.store != "keychain" && o.store != "file" && o.store != "tpm":
		return nil, fmt.Errorf("cli-login: -store %q: want keychain, file or tpm", o.store)
	case o.tpmStore != "keychain" && o.tpmStore != "file":
		return nil, fmt.Errorf("cli-login: -tpm-store %q: want keychain or file", o.tpmStore)
	case o.backend() == "keychain" && o.service == "":
		return nil, errors.New("cli-login: -service must not be empty")
	}
	if o.api != "" {
		if u, err := url.Parse(o.api); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("cli-login: -api %q is not an absolute http(s) URL", o.api)
		}
	}
	return o, nil
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// backend returns where entries live: "keychain" or "file" (with -store
// tpm, -tpm-store says which).
func (o *options) backend() string {
	if o.store == "tpm" {
		return o.tpmStore
	}
	return o.store
}

// openStore returns the store the options select. A file store is used only
// when asked for, and the user is told that the files hold the key in clear
// (or, with -store tpm, only a blob that this TPM alone can use).
func openStore(o *options, stderr io.Writer) (keystore.Store, error) {
	if o.backend() == "keychain" {
		return &keystore.Keychain{Service: o.service}, nil
	}
	dir := o.dir
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return nil, fmt.Errorf("cli-login: no directory for -store file (set -dir): %w", err)
		}
		dir = filepath.Join(base, "dpop-cli-login")
	}
	if o.store == "tpm" {
		fmt.Fprintf(stderr, "cli-login: tokens and the TPM key's blob are stored in files under %s (the tokens unencrypted; protect that directory)\n", dir)
	} else {
		fmt.Fprintf(stderr, "cli-login: keys and tokens are stored in files under %s (unencrypted; protect that directory)\n", dir)
	}
	return &keystore.FileStore{Dir: dir}, nil
}

// entryNames returns the store entry names of the key and the token for one
// issuer and client: a login at one server never touches another's.
func entryNames(issuer, clientID string) (key, token string) {
	sum := sha256.Sum256([]byte(issuer + "\x00" + clientID))
	p := hex.EncodeToString(sum[:8])
	return "dpop-key-" + p, "dpop-token-" + p
}

// run is the whole program, minus the process: flags, environment and
// output are its arguments.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseArgs(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	err = runCommand(ctx, o, stdout, stderr)
	if errors.Is(err, keystore.ErrKeychainUnavailable) {
		fmt.Fprintln(stderr, "cli-login: without a usable keychain, pass -store file (the key is then kept unencrypted in a file)")
	}
	return err
}

func runCommand(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	// Discovery and token requests take their HTTP client from the context.
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: httpTimeout})
	store, err := openStore(o, stderr)
	if err != nil {
		return err
	}
	if o.command == "logout" {
		return logout(ctx, o, store, stderr)
	}
	s, err := newSession(ctx, o, store, stderr)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.ensureLogin(ctx); err != nil {
		return err
	}
	if o.api == "" {
		fmt.Fprintln(stderr, "cli-login: logged in; pass -api to call an API")
		return nil
	}
	return s.callAPI(ctx, o.api, stdout, stderr)
}

// logout revokes the stored refresh token (and access token) at the server
// (RFC 7009), then deletes the token and the key: a DPoP-bound refresh token
// is useless without its key (RFC 9449 §5), and a new key is made at the
// next login. When the server cannot be reached or refuses, it says so and
// deletes them all the same.
func logout(ctx context.Context, o *options, store keystore.Store, stderr io.Writer) error {
	keyName, tokenName := entryNames(o.issuer, o.clientID)
	revoke(ctx, o, store, keyName, tokenName, stderr)
	var deleted []string
	if err := store.Delete(tokenName); err == nil {
		deleted = append(deleted, "token")
	} else if !errors.Is(err, keystore.ErrNotFound) {
		return fmt.Errorf("cli-login: deleting the token: %w", err)
	}
	if err := store.Delete(keyName); err == nil {
		deleted = append(deleted, "key")
	} else if !errors.Is(err, keystore.ErrNotFound) {
		return fmt.Errorf("cli-login: deleting the key: %w", err)
	}
	if len(deleted) == 0 {
		fmt.Fprintln(stderr, "cli-login: not logged in; nothing to delete")
		return nil
	}
	fmt.Fprintf(stderr, "cli-login: logged out: deleted the %s\n", strings.Join(deleted, " and the "))
	return nil
}

// revoke revokes the stored tokens at the server, best effort, and says
// what it did. It needs the key: its proofs go with the request, and the
// token is stored bound to it.
func revoke(ctx context.Context, o *options, store keystore.Store, keyName, tokenName string, stderr io.Writer) {
	key, err := keystore.LoadKey(store, keyName)
	if err != nil {
		return // no key: no usable token either
	}
	md, err := dpop.Discover(ctx, o.issuer)
	if err != nil {
		fmt.Fprintf(stderr, "cli-login: not revoking the tokens: %v\n", err)
		return
	}
	signer, err := newSigner(key, md)
	if err != nil {
		fmt.Fprintf(stderr, "cli-login: not revoking the tokens: %v\n", err)
		return
	}
	tok, err := keystore.LoadToken(store, tokenName, signer.Thumbprint())
	if err != nil {
		return // nothing stored that could be used
	}
	if md.RevocationEndpoint == "" {
		fmt.Fprintln(stderr, "cli-login: the server has no revocation endpoint (RFC 7009): the tokens stay valid there until they expire")
		return
	}
	cfg := &dpop.Config{
		OAuth2:        &oauth2.Config{ClientID: o.clientID, Endpoint: md.Endpoint()},
		Signer:        signer,
		RevocationURL: md.RevocationEndpoint,
	}
	if tok.RefreshToken != "" {
		// Revoking the refresh token ends the grant (RFC 7009 §2.1).
		if err := cfg.Revoke(ctx, tok.RefreshToken, "refresh_token"); err != nil {
			fmt.Fprintf(stderr, "cli-login: could not revoke the refresh token: %v\n", err)
		} else {
			fmt.Fprintln(stderr, "cli-login: revoked the refresh token at the server")
		}
	}
	if tok.AccessToken == "" || !tok.Valid() {
		return
	}
	err = cfg.Revoke(ctx, tok.AccessToken, "access_token")
	var re *dpop.TokenError
	switch {
	case err == nil:
		fmt.Fprintln(stderr, "cli-login: revoked the access token at the server")
	case errors.As(err, &re) && re.ErrorCode == "unsupported_token_type":
		fmt.Fprintf(stderr, "cli-login: the server cannot revoke the access token; it stays valid until %s\n", tok.Expiry.Local().Format(time.DateTime))
	default:
		fmt.Fprintf(stderr, "cli-login: could not revoke the access token: %v\n", err)
	}
}
