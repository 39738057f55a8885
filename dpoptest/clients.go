package dpoptest

import (
	"crypto"
	"crypto/subtle"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Client is a client registered with a [Server] (RFC 6749 §2).
type Client struct {
	// ID is the client_id.
	ID string

	// Secret is the client secret of a confidential client, which
	// authenticates with client_secret_basic or client_secret_post
	// (RFC 6749 §2.3.1). If Secret and PublicKey are both empty, the
	// client is public (token_endpoint_auth_method "none") and must not
	// send a secret.
	Secret string

	// PublicKey is the public key of a confidential client that
	// authenticates with private_key_jwt (RFC 7523 §2.2, OpenID Connect
	// Core §9): an *ecdsa.PublicKey, ed25519.PublicKey or *rsa.PublicKey.
	// Such a client must authenticate with a client assertion signed by
	// the matching private key.
	PublicKey crypto.PublicKey

	// RedirectURIs are the registered redirect URIs, compared exactly,
	// except that for a public client a loopback URI ("http://127.0.0.1/…"
	// or "http://[::1]/…") matches the same URI with any port
	// (RFC 8252 §7.3).
	RedirectURIs []string
}

// redirectOK reports whether uri is registered for c.
func (c Client) redirectOK(uri string) bool {
	if slices.Contains(c.RedirectURIs, uri) {
		return true
	}
	if !c.public() {
		return false
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || (u.Hostname() != "127.0.0.1" && u.Hostname() != "::1") || u.Fragment != "" {
		return false
	}
	for _, reg := range c.RedirectURIs {
		r, err := url.Parse(reg)
		if err != nil || r.Scheme != "http" || r.Hostname() != u.Hostname() {
			continue
		}
		if r.EscapedPath() == u.EscapedPath() && r.RawQuery == u.RawQuery && r.User == nil && u.User == nil {
			return true
		}
	}
	return false
}

// public reports whether c is a public client, without credentials
// (RFC 6749 §2.1).
func (c Client) public() bool { return c.Secret == "" && c.PublicKey == nil }

// authenticateClient identifies and authenticates the client of a token,
// PAR, revocation or device authorization request (RFC 6749 §2.3,
// §3.2.1): with a client assertion (RFC 7523 §2.2), a secret, or, for a
// public client, its client_id alone. In FAPI 2.0 mode only
// private_key_jwt is accepted.
func (s *Server) authenticateClient(r *http.Request, form url.Values) (*Client, *oauthError) {
	var c *Client
	var oe *oauthError
	if form.Has("client_assertion") || form.Has("client_assertion_type") {
		c, oe = s.authenticateAssertion(r, form)
	} else {
		c, oe = s.authenticateSecret(r, form)
	}
	if oe == nil && s.cfg.FAPI2 && record(r).ClientAuth != PrivateKeyJWT {
		return nil, &oauthError{http.StatusUnauthorized, "invalid_client",
			"FAPI 2.0 requires private_key_jwt client authentication (RFC 7523 section 2.2)", false}
	}
	return c, oe
}

// authenticateSecret authenticates a client with client_secret_basic,
// client_secret_post, or none for a public client (RFC 6749 §2.3.1). A
// public client may carry its client_id in a Basic header with an empty
// password, which is what oauth2.AuthStyleInHeader sends for it.
func (s *Server) authenticateSecret(r *http.Request, form url.Values) (*Client, *oauthError) {
	rec := record(r)
	basicID, basicSecret, hasBasic := r.BasicAuth()
	if hasBasic {
		var err1, err2 error
		basicID, err1 = url.QueryUnescape(basicID)
		basicSecret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return nil, &oauthError{http.StatusUnauthorized, "invalid_client", "malformed Basic credentials", true}
		}
	}
	formID := form.Get("client_id")
	_, hasPostSecret := form["client_secret"]
	if hasBasic && hasPostSecret {
		return nil, &oauthError{http.StatusBadRequest, "invalid_request", "more than one client authentication method", true}
	}
	id := formID
	if hasBasic {
		if formID != "" && formID != basicID {
			return nil, &oauthError{http.StatusBadRequest, "invalid_request", "client_id differs from the Basic credentials", true}
		}
		id = basicID
	}
	rec.ClientID = id
	c, ok := s.clients[id]
	if id == "" || !ok {
		return nil, &oauthError{http.StatusUnauthorized, "invalid_client", "unknown client", hasBasic}
	}
	secret := form.Get("client_secret")
	if hasBasic {
		secret = basicSecret
	}
	if c.public() {
		if secret != "" || hasPostSecret {
			return nil, &oauthError{http.StatusUnauthorized, "invalid_client", "public client must not send a client secret", hasBasic}
		}
		rec.ClientAuth = ClientAuthNone
		if hasBasic {
			rec.ClientAuth = ClientSecretBasic // accepted, but recorded: tests can insist on client_id alone
		}
		return &c, nil
	}
	switch {
	case c.Secret == "":
		return nil, &oauthError{http.StatusUnauthorized, "invalid_client", "client must authenticate with private_key_jwt", hasBasic}
	case hasBasic:
		rec.ClientAuth = ClientSecretBasic
	case hasPostSecret:
		rec.ClientAuth = ClientSecretPost
	default:
		return nil, &oauthError{http.StatusUnauthorized, "invalid_client", "client authentication required", false}
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		return nil, &oauthError{http.StatusUnauthorized, "invalid_client", "client authentication failed", hasBasic}
	}
	return &c, nil
}

// parseForm reads a POSTed form body of at most 1 MiB; the query is not
// used (RFC 6749 §3.2).
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	if r.Method != http.MethodPost {
		return nil, &oauthError{http.StatusMethodNotAllowed, "invalid_request", "use POST", false}
	}
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	if !strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
		return nil, &oauthError{http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded", false}
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		return nil, &oauthError{http.StatusBadRequest, "invalid_request", "malformed form body", false}
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, &oauthError{http.StatusBadRequest, "invalid_request", "parameter " + k + " repeated", false}
		}
	}
	return r.PostForm, nil
}
