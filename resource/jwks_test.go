package resource_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/dpopkit/dpop/resource"
)

// TestParseKeySetBounded: a set with more keys than the verifier keeps is
// cut, not refused.
func TestParseKeySetBounded(t *testing.T) {
	k := newTestKey(t, "k", jose.EdDSA)
	one, err := json.Marshal(k.jwk())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(`{"keys":[`)
	for i := range 3 * resource.MaxKeys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(one)
	}
	b.WriteString(`]}`)
	keys, err := resource.ParseKeySet([]byte(b.String()))
	if err != nil || len(keys) != resource.MaxKeys {
		t.Errorf("ParseKeySet = %d keys, %v; want %d", len(keys), err, resource.MaxKeys)
	}
}

// FuzzKeySet feeds the key set parser arbitrary documents: it must not
// panic and must return only public signing keys.
func FuzzKeySet(f *testing.F) {
	for _, s := range []string{
		`{"keys":[]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"a"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","use":"sig"}]}`,
		`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`,
		`{"keys":[{"kty":"oct","k":"AAAA"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","use":"enc"}]}`,
		`{"keys":null}`, `{"keys":{}}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, err := resource.ParseKeySet(body)
		if err != nil {
			return
		}
		if len(keys) > resource.MaxKeys {
			t.Fatalf("%d keys", len(keys))
		}
		for _, k := range keys {
			if !k.IsPublic() || !k.Valid() || (k.Use != "" && k.Use != "sig") {
				t.Fatalf("kept a key that is not a public signing key: %T use %q", k.Key, k.Use)
			}
		}
	})
}

// FuzzASMetadata feeds the authorization server metadata parser arbitrary
// documents: it must not panic, and what it accepts names the issuer and
// an https (or loopback http) jwks_uri.
func FuzzASMetadata(f *testing.F) {
	const issuer = "https://as.example.com"
	for _, s := range []string{
		`{"issuer":"https://as.example.com","jwks_uri":"https://as.example.com/jwks"}`,
		`{"issuer":"https://as.example.com","jwks_uri":"http://127.0.0.1/jwks"}`,
		`{"issuer":"https://as.example.com","jwks_uri":"http://as.example.com/jwks"}`,
		`{"issuer":"https://as.example.com/","jwks_uri":"https://as.example.com/jwks"}`,
		`{"issuer":"https://as.example.com","jwks_uri":"https://as.example.com/jwks#f"}`,
		`{"issuer":null}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		jwks, err := resource.ParseASMetadata(body, issuer+"/.well-known/oauth-authorization-server", issuer)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "dpop: ") {
				t.Fatalf("error %q without the prefix", err)
			}
			return
		}
		var doc struct {
			Issuer string `json:"issuer"`
		}
		if json.Unmarshal(body, &doc) != nil || doc.Issuer != issuer {
			t.Fatalf("accepted a document whose issuer is not %s", issuer)
		}
		if !strings.HasPrefix(strings.ToLower(jwks), "https://") && !strings.HasPrefix(strings.ToLower(jwks), "http://") {
			t.Fatalf("jwks_uri %q", jwks)
		}
		if strings.Contains(jwks, "#") {
			t.Fatalf("jwks_uri %q has a fragment", jwks)
		}
	})
}
