package resource_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/resource"
)

// tokens is a TokenVerifier for the example: one opaque token. A real API
// uses JWT access tokens or introspection.
type tokens struct {
	token string
	jkt   string
}

func (t tokens) VerifyToken(ctx context.Context, token string) (*resource.AccessToken, error) {
	if token != t.token {
		return nil, errors.New("unknown token")
	}
	return &resource.AccessToken{Subject: "alice", JKT: t.jkt}, nil
}

func ExampleVerifier_Handler() {
	// The client's key, and a token bound to it.
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := dpop.NewSigner(key, nil)
	tv := tokens{token: "token-1", jkt: signer.Thumbprint()}

	v, err := resource.NewVerifier(resource.Config{
		Tokens:     tv,
		PublicURLs: []string{"https://api.example.com"},
		Algs:       []string{"ES256", "EdDSA"},
	})
	if err != nil {
		panic(err)
	}
	api := v.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at, _ := resource.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s", at.Subject)
	}))

	proof, _ := signer.Proof("GET", "https://api.example.com/items", &dpop.ProofOptions{AccessToken: tv.token})
	r := httptest.NewRequest("GET", "https://api.example.com/items?page=2", nil)
	r.Header.Set("Authorization", "DPoP "+tv.token)
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

func ExampleVerifier_Check() {
	v, _ := resource.NewVerifier(resource.Config{Tokens: tokens{}})
	_, err := v.Check(httptest.NewRequest("GET", "https://api.example.com/items", nil))
	var e *resource.Error
	if errors.As(err, &e) {
		status, challenge := v.Challenge(err)
		fmt.Println(e.Reason, status, challenge)
	}
	// Output:
	// missing_token 401 DPoP algs="ES256 ES384 ES512 EdDSA PS256 RS256"
}
