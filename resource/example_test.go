package resource_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"github.com/dpopkit/dpop/resource"
)

// ExampleNewJWTVerifier verifies a JWT access token (RFC 9068) of a
// dpoptest server, whose key set it finds through the server's RFC 8414
// metadata.
func ExampleNewJWTVerifier() {
	as := dpoptest.NewServer(nil)
	defer as.Close()

	// The issuer, and this API's identifier (dpoptest's tokens name the
	// server itself as their audience).
	v, err := resource.NewJWTVerifier(context.Background(), as.URL, as.URL, nil)
	if err != nil {
		log.Fatal(err)
	}
	jkt := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	at, err := v.VerifyToken(context.Background(), as.IssueToken(jkt, "alice", "read write"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(at.Subject, at.Scopes, at.JKT == jkt)

	_, err = v.VerifyToken(context.Background(), "not-a-jwt")
	fmt.Println(err)
	// Output:
	// alice [read write] true
	// dpop: access token refused: not a JWS in compact serialization
}

// ExampleIntrospection asks an introspection endpoint (RFC 7662) about a
// token, authenticating with client_secret_basic.
func ExampleIntrospection() {
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		if id != "api" || secret != "api-secret" || r.PostFormValue("token") != "2YotnFZFEjr1zCsicMWpAA" {
			json.NewEncoder(w).Encode(map[string]any{"active": false})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"active":    true,
			"sub":       "alice",
			"client_id": "backend",
			"scope":     "read",
			"cnf":       map[string]string{"jkt": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		})
	}))
	defer endpoint.Close()

	in := &resource.Introspection{URL: endpoint.URL, ClientID: "api", ClientSecret: "api-secret"}
	at, err := in.VerifyToken(context.Background(), "2YotnFZFEjr1zCsicMWpAA")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(at.Subject, at.ClientID, at.Scopes, at.JKT)

	_, err = in.VerifyToken(context.Background(), "revoked")
	fmt.Println(err)
	// Output:
	// alice backend [read] NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs
	// dpop: access token refused (active): not active (RFC 7662 §2.2)
}

// ExampleProtectedResourceMetadata serves an API's RFC 9728 metadata at its
// well-known URL.
func ExampleProtectedResourceMetadata() {
	meta := &resource.ProtectedResourceMetadata{
		Resource:                      "https://api.example.com/v1",
		AuthorizationServers:          []string{"https://as.example.com"},
		DPoPSigningAlgValuesSupported: []string{"ES256", "EdDSA"},
		DPoPBoundAccessTokensRequired: true,
	}
	u, err := meta.WellKnownURL()
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+u.Path, meta)
	fmt.Println(u) // also the resource_metadata of challenges (RFC 9728 §5.1)

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", u.String(), nil))
	fmt.Print(rec.Body.String())
	// Output:
	// https://api.example.com/.well-known/oauth-protected-resource/v1
	// {"resource":"https://api.example.com/v1","authorization_servers":["https://as.example.com"],"dpop_signing_alg_values_supported":["ES256","EdDSA"],"dpop_bound_access_tokens_required":true}
}

// ExampleVerifier_Handler protects an API: a JWT access token of the
// authorization server (here a dpoptest server), bound to the client's key,
// and a proof of that key for each request.
func ExampleVerifier_Handler() {
	as := dpoptest.NewServer(nil)
	defer as.Close()
	tokens, err := resource.NewJWTVerifier(context.Background(), as.URL, as.URL, nil)
	if err != nil {
		log.Fatal(err)
	}
	v, err := resource.NewVerifier(resource.Config{
		Tokens:     tokens,
		PublicURLs: []string{"https://api.example.com"},
		Algs:       []string{"ES256", "EdDSA"},
	})
	if err != nil {
		log.Fatal(err)
	}
	api := v.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at, _ := resource.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s", at.Subject)
	}))

	// The client: its key, a token bound to it, a proof for the request.
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := dpop.NewSigner(key, nil)
	token := as.IssueToken(signer.Thumbprint(), "alice", "read")
	proof, _ := signer.Proof("GET", "https://api.example.com/items", &dpop.ProofOptions{AccessToken: token})

	r := httptest.NewRequest("GET", "https://api.example.com/items?page=2", nil)
	r.Header.Set("Authorization", "DPoP "+token)
	r.Header.Set("DPoP", proof)
	w := httptest.NewRecorder()
	api.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body)

	// The same proof again: a replay (RFC 9449 §11.1).
	w = httptest.NewRecorder()
	api.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	// Output:
	// 200 hello alice
	// 401 DPoP error="invalid_dpop_proof", error_description="the DPoP proof was used before", algs="ES256 EdDSA"
}

// ExampleVerifier_Check refuses a request without credentials, as code
// that is not a handler would, and builds the answer.
func ExampleVerifier_Check() {
	as := dpoptest.NewServer(nil)
	defer as.Close()
	tokens, err := resource.NewJWTVerifier(context.Background(), as.URL, as.URL, nil)
	if err != nil {
		log.Fatal(err)
	}
	v, err := resource.NewVerifier(resource.Config{Tokens: tokens})
	if err != nil {
		log.Fatal(err)
	}
	_, err = v.Check(httptest.NewRequest("GET", "https://api.example.com/items", nil))
	var e *resource.Error
	if errors.As(err, &e) {
		status, challenge := v.Challenge(err)
		fmt.Println(e.Reason, status, challenge)
	}
	// Output:
	// missing_token 401 DPoP algs="ES256 ES384 ES512 EdDSA PS256 RS256"
}
