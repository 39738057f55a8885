package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/keystore"
	"golang.org/x/oauth2"
)

// httpTimeout bounds every HTTP exchange: discovery, token requests and the
// API call. The login as a whole is bounded by -timeout.
const httpTimeout = 30 * time.Second

// maxBody is how much of the API's answer is printed.
const maxBody = 64 << 10

// session is one run against one authorization server: its metadata, the
// DPoP key, the token and where both are stored.
type session struct {
	o         *options
	stderr    io.Writer
	store     keystore.Store
	md        *dpop.Metadata
	signer    *dpop.Signer
	cfg       *dpop.Config
	tokenName string
	jkt       string
	ts        dpop.TokenSource // saves every new token; set by ensureLogin
	close     func()           // releases the key (a TPM key and the TPM)
}

// newSession discovers the server, checks that it accepts DPoP, and loads
// or creates the key.
func newSession(ctx context.Context, o *options, store keystore.Store, stderr io.Writer) (*session, error) {
	md, err := dpop.Discover(ctx, o.issuer)
	if err != nil {
		return nil, fmt.Errorf("cli-login: discovery: %w", err)
	}
	if len(md.DPoPSigningAlgValuesSupported) == 0 {
		return nil, fmt.Errorf("cli-login: %s does not support DPoP (no dpop_signing_alg_values_supported in its metadata)", o.issuer)
	}
	// The best algorithm the server accepts, for a new key; a key made
	// earlier is kept if the server accepts it (RSA: PS256, else RS256).
	alg, err := dpop.ChooseAlg(md.DPoPSigningAlgValuesSupported)
	if err != nil {
		return nil, fmt.Errorf("cli-login: %w", err)
	}
	keyName, tokenName := entryNames(o.issuer, o.clientID)
	var key crypto.Signer
	closeKey := func() {}
	if o.store == "tpm" {
		if key, closeKey, err = loadTPMKey(o, store, keyName, md.DPoPSigningAlgValuesSupported); err != nil {
			return nil, err
		}
	} else if key, err = keystore.LoadOrCreate(store, keyName, &keystore.KeyOptions{Alg: alg}); err != nil {
		return nil, fmt.Errorf("cli-login: key: %w", err)
	}
	signer, err := newSigner(key, md)
	if err != nil {
		closeKey()
		return nil, fmt.Errorf("cli-login: the stored key does not fit the server; run \"cli-login logout\" to make a new one: %w", err)
	}
	return &session{
		o:      o,
		stderr: stderr,
		store:  store,
		md:     md,
		signer: signer,
		cfg: &dpop.Config{
			OAuth2: &oauth2.Config{
				ClientID: o.clientID,
				Endpoint: md.Endpoint(),
				Scopes:   o.scopes,
			},
			Signer:        signer,
			PARURL:        md.PushedAuthorizationRequestEndpoint,
			RevocationURL: md.RevocationEndpoint,
		},
		tokenName: tokenName,
		jkt:       signer.Thumbprint(),
		close:     closeKey,
	}, nil
}

// newSigner returns a signer for key with the best algorithm the server
// accepts that the key can sign with: for a new key, the one it was made
// for; a key made earlier may have another type.
func newSigner(key crypto.Signer, md *dpop.Metadata) (*dpop.Signer, error) {
	best, err := dpop.ChooseAlg(md.DPoPSigningAlgValuesSupported)
	if err != nil {
		return nil, err
	}
	for _, alg := range append([]string{best}, md.DPoPSigningAlgValuesSupported...) {
		if s, err := dpop.NewSigner(key, &dpop.SignerOptions{Alg: alg}); err == nil {
			return s, nil
		}
	}
	s, err := dpop.NewSigner(key, nil)
	if err != nil {
		return nil, err
	}
	return s, md.CheckSigner(s) // an error that names both sides
}

// ensureLogin loads the stored token, or logs in when there is none that
// can be used, and sets s.ts to a token source that refreshes the token with
// the same key and saves every new one.
func (s *session) ensureLogin(ctx context.Context) error {
	tok, err := keystore.LoadToken(s.store, s.tokenName, s.jkt)
	switch {
	case errors.Is(err, keystore.ErrLoginRequired):
		fmt.Fprintf(s.stderr, "cli-login: login required: %s\n", loginReason(err))
		return s.login(ctx)
	case err != nil:
		return fmt.Errorf("cli-login: loading the token: %w", err)
	case !tok.Valid() && tok.RefreshToken == "":
		fmt.Fprintln(s.stderr, "cli-login: login required: the stored token expired and cannot be refreshed")
		return s.login(ctx)
	}
	s.ts = keystore.SavingTokenSource(s.store, s.tokenName, s.jkt, s.cfg.TokenSource(ctx, tok))
	// Refresh now if needed, so that a refresh token the server no longer
	// accepts leads to a new login rather than to a failed API call.
	cur, err := s.ts.Token()
	if err != nil {
		var te *dpop.TokenError
		if errors.As(err, &te) && te.ErrorCode == "invalid_grant" {
			fmt.Fprintf(s.stderr, "cli-login: login required: the server refused the stored refresh token (%s)\n", err)
			return s.login(ctx)
		}
		return fmt.Errorf("cli-login: refreshing the token: %w", err)
	}
	if cur.AccessToken != tok.AccessToken {
		fmt.Fprintln(s.stderr, "cli-login: token refreshed")
	}
	return nil
}

// loginReason says in words why a stored token cannot be used.
func loginReason(err error) string {
	var be *keystore.BindingError
	switch {
	case errors.As(err, &be):
		return fmt.Sprintf("the stored token is bound to key %s, not to the current key %s", be.Stored, be.Current)
	case errors.Is(err, keystore.ErrNotFound):
		return "no stored login"
	}
	return err.Error()
}

// login runs the login flow the options select, saves the token bound to
// the key, and sets s.ts.
func (s *session) login(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, s.o.timeout)
	defer cancel()
	var tok *oauth2.Token
	var err error
	if s.o.device {
		tok, err = s.loginDevice(lctx)
	} else {
		tok, err = s.loginBrowser(lctx)
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("cli-login: no login within %v (-timeout): %w", s.o.timeout, err)
		}
		return err
	}
	if err := keystore.SaveToken(s.store, s.tokenName, tok, s.jkt); err != nil {
		return fmt.Errorf("cli-login: saving the token: %w", err)
	}
	fmt.Fprintln(s.stderr, "cli-login: logged in")
	// The token source refreshes on the caller's context, not the login's.
	s.ts = keystore.SavingTokenSource(s.store, s.tokenName, s.jkt, s.cfg.TokenSource(ctx, tok))
	return nil
}

// callAPI GETs apiURL with the token and a DPoP proof, and prints the status
// and (at most maxBody bytes of) the body. A DPoP challenge is explained.
func (s *session) callAPI(ctx context.Context, apiURL string, stdout, stderr io.Writer) error {
	client := &http.Client{
		Timeout:   httpTimeout,
		Transport: &dpop.Transport{Source: s.ts, Signer: s.signer},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL, nil)
	if err != nil {
		return fmt.Errorf("cli-login: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("cli-login: calling the API: %w", err)
	}
	defer resp.Body.Close()
	challenge := dpop.CheckResponse(resp) // before the body is read
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("cli-login: reading the API's answer: %w", err)
	}
	truncated := len(body) > maxBody
	if truncated {
		body = body[:maxBody]
	}
	fmt.Fprintln(stdout, resp.Status)
	stdout.Write(body)
	if len(body) > 0 && body[len(body)-1] != '\n' {
		fmt.Fprintln(stdout)
	}
	if truncated {
		fmt.Fprintf(stderr, "cli-login: (body truncated at %d bytes)\n", maxBody)
	}
	var ce *dpop.ChallengeError
	if errors.As(challenge, &ce) {
		fmt.Fprintf(stderr, "cli-login: DPoP challenge: status %d, error %q, description %q, algs %q, nonce %q\n",
			ce.StatusCode, ce.ErrorCode, ce.Description, ce.Algs, ce.Nonce)
		if ce.ErrorCode == dpop.CodeInvalidToken {
			fmt.Fprintln(stderr, `cli-login: the API does not accept the token; "cli-login logout" and log in again`)
		}
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("cli-login: the API answered %s", resp.Status)
	}
	return nil
}
