package dpop_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func exampleSigner() *dpop.Signer {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := dpop.NewSigner(key, nil)
	if err != nil {
		log.Fatal(err)
	}
	return signer
}

// printAPI prints what dpoptest's resource server saw of a request.
func printAPI(resp *http.Response, signer *dpop.Signer) {
	defer resp.Body.Close()
	var got struct {
		Method, Path, Subject, JKT string
	}
	json.NewDecoder(resp.Body).Decode(&got)
	fmt.Println(resp.Status, got.Method, got.Path, "as", got.Subject, "bound to our key:", got.JKT == signer.Thumbprint())
}

// A Transport sends a proof with every request, answers the server's nonce
// challenge by itself, and presents the token from its Source.
func ExampleTransport() {
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	signer := exampleSigner()
	token := srv.IssueToken(signer.Thumbprint(), "alice", "api:read") // bound to signer's key

	client := &http.Client{Transport: &dpop.Transport{
		Signer: signer,
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token, TokenType: "DPoP"}),
	}}
	resp, err := client.Get(srv.URL + "/api/items")
	if err != nil {
		log.Fatal(err)
	}
	printAPI(resp, signer)
	for _, r := range srv.Requests() {
		fmt.Println(r.Status, r.Error)
	}
	// Output:
	// 200 OK GET /api/items as alice bound to our key: true
	// 401 use_dpop_nonce
	// 200
}

// A Config adds dpop_jkt and PKCE to the authorization URL, exchanges the
// code with a proof, and returns a client that refreshes with the same key.
func ExampleConfig_Exchange() {
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	signer := exampleSigner()
	cfg := &dpop.Config{
		OAuth2: &oauth2.Config{
			ClientID:    "cli", // a public client: no secret
			Endpoint:    srv.Endpoint(),
			RedirectURL: "http://127.0.0.1:8080/callback",
			Scopes:      []string{"api:read"},
		},
		Signer: signer,
	}
	ctx := context.Background()

	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier))
	code := browse(authURL) // the user logs in; the browser lands on RedirectURL?code=…

	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("token_type:", tok.TokenType)

	resp, err := cfg.Client(ctx, tok).Get(srv.URL + "/api/me")
	if err != nil {
		log.Fatal(err)
	}
	printAPI(resp, signer)
	// Output:
	// token_type: DPoP
	// 200 OK GET /api/me as alice bound to our key: true
}

// browse stands in for the user's browser: dpoptest approves at once and
// redirects to the redirect URI with the code.
func browse(authURL string) string {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		log.Fatal(err)
	}
	return loc.Query().Get("code")
}

// A service gets DPoP-bound tokens with its own credentials; one client
// serves all goroutines and fetches a new token when the old one expires.
func ExampleClientCredentials() {
	srv := dpoptest.NewServer(&dpoptest.Config{RequireNonce: true})
	defer srv.Close()
	signer := exampleSigner()
	cc := &dpop.ClientCredentials{
		OAuth2: &clientcredentials.Config{
			ClientID:     "backend",
			ClientSecret: "backend-secret",
			TokenURL:     srv.Endpoint().TokenURL,
		},
		Signer: signer,
	}
	client := cc.Client(context.Background())
	resp, err := client.Get(srv.URL + "/api/reports")
	if err != nil {
		log.Fatal(err)
	}
	printAPI(resp, signer)
	// Output:
	// 200 OK GET /api/reports as backend bound to our key: true
}

// CheckResponse tells why a resource server refused a request: here the
// token is bound to another key.
func ExampleCheckResponse() {
	srv := dpoptest.NewServer(nil)
	defer srv.Close()
	stolen := srv.IssueToken(exampleSigner().Thumbprint(), "alice", "api:read")

	client := &http.Client{Transport: &dpop.Transport{
		Signer: exampleSigner(), // not the key the token is bound to
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: stolen}),
	}}
	resp, err := client.Get(srv.URL + "/api/items")
	if err != nil {
		log.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err := dpop.CheckResponse(resp); err != nil {
		fmt.Println(err.(*dpop.ChallengeError).ErrorCode)
	}
	// Output:
	// invalid_token
}

// Proof makes a single proof, for a request sent by other means.
func ExampleSigner_Proof() {
	signer := exampleSigner()
	proof, err := signer.Proof("POST", "https://as.example.com/token?ignored=1", nil)
	if err != nil {
		log.Fatal(err)
	}
	claims, err := (&dpoptest.Verifier{}).Verify(proof, "POST", "https://as.example.com/token", "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(signer.Alg(), claims.HTM, claims.HTU, claims.Thumbprint == signer.Thumbprint())
	// Output:
	// ES256 POST https://as.example.com/token true
}

// The redirect back from the authorization server is checked before its
// code is used: the state of this login (compared in constant time), the
// issuer (RFC 9207, required here because the metadata says the server
// always sends it), and an error answer as a typed error.
func ExampleMetadata_VerifyAuthResponse() {
	md := &dpop.Metadata{Issuer: "https://as.example", AuthorizationResponseISSParameterSupported: true}
	state := "k3y8Qz" // the state the authorization request was sent with

	for _, callback := range []string{
		"code=SplxlOBeZQQYbYS6WxSbIA&state=k3y8Qz&iss=https%3A%2F%2Fas.example",
		"code=SplxlOBeZQQYbYS6WxSbIA&state=k3y8Qz&iss=https%3A%2F%2Fevil.example",
		"code=SplxlOBeZQQYbYS6WxSbIA&state=k3y8Qz",
		"error=access_denied&error_description=The+user+declined&state=k3y8Qz&iss=https%3A%2F%2Fas.example",
	} {
		query, _ := url.ParseQuery(callback)
		code, err := md.VerifyAuthResponse(query, state)
		var denied *dpop.AuthResponseError
		switch {
		case errors.As(err, &denied):
			fmt.Println("refused by the user or the server:", denied.ErrorCode)
		case err != nil:
			fmt.Println(err)
		default:
			fmt.Println("code:", code)
		}
	}
	// Output:
	// code: SplxlOBeZQQYbYS6WxSbIA
	// dpop: authorization response names issuer "https://evil.example"; want "https://as.example" (RFC 9207 §2.4: a mix-up)
	// dpop: authorization response has no iss, which the server always sends (RFC 9207 §2.4)
	// refused by the user or the server: access_denied
}

// A FAPI 2.0 client: PAR with PKCE and dpop_jkt, private_key_jwt with a key
// of its own (a new assertion for every attempt: the server spends each one
// before it challenges the proof's nonce), the iss check on the redirect,
// and DPoP-bound tokens. dpoptest in its FAPI 2.0 mode challenges every
// request once for a new nonce.
func ExampleConfig_fapi2() {
	assertionKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // the client's registered key
	srv := dpoptest.NewServer(&dpoptest.Config{
		FAPI2: true,
		Clients: []dpoptest.Client{{
			ID: "fapi", PublicKey: assertionKey.Public(),
			RedirectURIs: []string{"http://127.0.0.1:8080/callback"},
		}},
	})
	defer srv.Close()
	ctx := context.Background()
	md, err := dpop.Discover(ctx, srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	assertions, err := dpop.NewAssertionSigner(assertionKey, &dpop.SignerOptions{KeyID: "fapi-1"})
	if err != nil {
		log.Fatal(err)
	}
	signer := exampleSigner() // the DPoP key: another key
	cfg := &dpop.Config{
		OAuth2: &oauth2.Config{
			ClientID:    "fapi",
			Endpoint:    md.Endpoint(),
			RedirectURL: "http://127.0.0.1:8080/callback",
			Scopes:      []string{"api:read"},
		},
		Signer:          signer,
		ClientAssertion: assertions,
		Issuer:          md.Issuer,
		PARURL:          md.PushedAuthorizationRequestEndpoint,
		FAPI2:           true,
	}

	verifier := oauth2.GenerateVerifier()
	authURL, err := cfg.PushAuthCodeURL(ctx, "state-1", oauth2.S256ChallengeOption(verifier))
	if err != nil {
		log.Fatal(err)
	}
	code, err := cfg.VerifyAuthResponse(browseQuery(authURL), "state-1") // state and iss checked
	if err != nil {
		log.Fatal(err)
	}
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		log.Fatal(err)
	}
	resp, err := cfg.Client(ctx, tok).Get(srv.URL + "/api/me")
	if err != nil {
		log.Fatal(err)
	}
	printAPI(resp, signer)
	for _, r := range srv.Requests() {
		if r.Kind == dpoptest.KindPAR || r.Kind == dpoptest.KindToken {
			fmt.Println(r.Kind, r.Status, r.Error, r.ClientAuth)
		}
	}
	// Output:
	// 200 OK GET /api/me as alice bound to our key: true
	// par 400 use_dpop_nonce private_key_jwt
	// par 201  private_key_jwt
	// token 400 use_dpop_nonce private_key_jwt
	// token 200  private_key_jwt
}

// browseQuery is browse for a caller that checks the whole redirect: it
// returns the query of the redirect (code, state, iss).
func browseQuery(authURL string) url.Values {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		log.Fatal(err)
	}
	return loc.Query()
}
