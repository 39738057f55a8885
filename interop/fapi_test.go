package interop

// The FAPI 2.0 authorization server (as.mjs with AS_PROFILE=fapi2, started by
// interop/run.sh beside the default one): its fixture, and the tests that
// need no more of the SDK than discovery and signers. The flow tests
// (PAR, headless login, exchange, refresh, resource calls, revocation) wait
// for client authentication with private_key_jwt in the SDK.

import (
	"context"
	"crypto"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/dpopkit/dpop"
)

// Environment variables exported by interop/run.sh for the FAPI 2.0 AS.
const (
	envFAPIIssuer     = "DPOP_INTEROP_FAPI_ISSUER"      // FAPI 2.0 AS issuer URL
	envFAPIClientID   = "DPOP_INTEROP_FAPI_CLIENT_ID"   // confidential client, private_key_jwt
	envFAPIClientKey  = "DPOP_INTEROP_FAPI_CLIENT_KEY"  // path: its private JWK (ES256)
	envFAPIClientJWKS = "DPOP_INTEROP_FAPI_CLIENT_JWKS" // path: its private JWK Set (ES256, PS256, EdDSA)
)

// fapiAlgs are the algorithms the FAPI 2.0 AS accepts, for DPoP proofs and
// client assertions alike (FAPI 2.0 Security Profile §5.4.1).
var fapiAlgs = []string{"ES256", "PS256", "EdDSA"}

// fapiServer is the FAPI 2.0 AS and its one client, "fapi": a confidential
// native app (any loopback port on http://127.0.0.1/callback) that
// authenticates with private_key_jwt, registered for authorization_code,
// refresh_token and client_credentials.
type fapiServer struct {
	issuer   string
	rs       string // the resource server, shared with the default AS
	clientID string
	// keys are the client's private keys by alg (ES256, PS256, EdDSA), each
	// with the kid it is registered under. They sign client assertions only;
	// DPoP keys are the test's own.
	keys map[string]jose.JSONWebKey
}

// requireFAPI returns the FAPI 2.0 AS exported by interop/run.sh. Without it
// the test is skipped, or fails when DPOP_FULL_TEST=1.
func requireFAPI(t *testing.T) *fapiServer {
	t.Helper()
	_, rs := requireInterop(t)
	s := &fapiServer{issuer: os.Getenv(envFAPIIssuer), rs: rs, clientID: envOr(envFAPIClientID, "fapi")}
	jwksPath := os.Getenv(envFAPIClientJWKS)
	if s.issuer == "" || jwksPath == "" || os.Getenv(envFAPIClientKey) == "" {
		const msg = "interop: the FAPI 2.0 oidc-provider is not running; run: interop/run.sh go test ./interop/"
		if os.Getenv(envFullTest) == "1" {
			t.Fatal(msg + " (DPOP_FULL_TEST=1 forbids skipping)")
		}
		t.Skip(msg)
	}
	s.keys = readClientKeys(t, jwksPath)
	def := readClientKey(t, os.Getenv(envFAPIClientKey))
	if def.Algorithm != "ES256" || def.KeyID != s.keys["ES256"].KeyID {
		t.Fatalf("%s: alg %q kid %q; want the ES256 key of %s", envFAPIClientKey, def.Algorithm, def.KeyID, envFAPIClientJWKS)
	}
	return s
}

// readClientKey reads one private JWK. Failure messages never show the key.
func readClientKey(t *testing.T, path string) jose.JSONWebKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", envFAPIClientKey, err)
	}
	var k jose.JSONWebKey
	if err := json.Unmarshal(b, &k); err != nil {
		t.Fatalf("%s: not a JWK: %v", envFAPIClientKey, err)
	}
	if k.IsPublic() || !k.Valid() {
		t.Fatalf("%s: want a valid private JWK", envFAPIClientKey)
	}
	return k
}

// readClientKeys reads the private JWK Set and indexes it by alg.
func readClientKeys(t *testing.T, path string) map[string]jose.JSONWebKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", envFAPIClientJWKS, err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("%s: not a JWK Set: %v", envFAPIClientJWKS, err)
	}
	keys := map[string]jose.JSONWebKey{}
	for _, k := range set.Keys {
		if k.IsPublic() || !k.Valid() || k.KeyID == "" {
			t.Fatalf("%s: key %q: want a valid private JWK with a kid", envFAPIClientJWKS, k.Algorithm)
		}
		if _, ok := k.Key.(crypto.Signer); !ok {
			t.Fatalf("%s: key %q (%T) is not a crypto.Signer", envFAPIClientJWKS, k.Algorithm, k.Key)
		}
		keys[k.Algorithm] = k
	}
	for _, alg := range fapiAlgs {
		if _, ok := keys[alg]; !ok {
			t.Fatalf("%s: no %s key", envFAPIClientJWKS, alg)
		}
	}
	return keys
}

// TestFAPI2Discovery checks that the second AS runs oidc-provider's FAPI 2.0
// profile as configured, through the SDK's discovery: PAR required, PKCE
// S256 only, private_key_jwt only, DPoP with PS256, ES256 or EdDSA only,
// revocation, and the RFC 9207 iss parameter (not a field of dpop.Metadata
// yet: read from the raw document).
func TestFAPI2Discovery(t *testing.T) {
	s := requireFAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := dpop.Discover(ctx, s.issuer)
	if err != nil {
		t.Fatalf("Discover(%s): %v", s.issuer, err)
	}
	if md.PushedAuthorizationRequestEndpoint == "" || !md.RequirePushedAuthorizationRequests {
		t.Errorf("PAR endpoint %q, required %v; want an endpoint, required", md.PushedAuthorizationRequestEndpoint, md.RequirePushedAuthorizationRequests)
	}
	if md.RevocationEndpoint == "" {
		t.Error("RevocationEndpoint is empty")
	}
	for _, c := range []struct {
		name      string
		got, want []string
	}{
		{"token_endpoint_auth_methods_supported", md.TokenEndpointAuthMethodsSupported, []string{"private_key_jwt"}},
		{"code_challenge_methods_supported", md.CodeChallengeMethodsSupported, []string{"S256"}},
		{"dpop_signing_alg_values_supported", md.DPoPSigningAlgValuesSupported, fapiAlgs},
		{"grant_types_supported", md.GrantTypesSupported, []string{"authorization_code", "refresh_token", "client_credentials"}},
	} {
		if !slices.Equal(sorted(c.got), sorted(c.want)) {
			t.Errorf("%s = %q; want %q", c.name, c.got, c.want)
		}
	}

	raw := fapiRawMetadata(t, s.issuer)
	if !raw.ISSParameterSupported {
		t.Errorf("authorization_response_iss_parameter_supported = %v; want true", raw.ISSParameterSupported)
	}
	if !slices.Equal(sorted(raw.AuthSigningAlgs), sorted(fapiAlgs)) {
		t.Errorf("token_endpoint_auth_signing_alg_values_supported = %q; want %q", raw.AuthSigningAlgs, fapiAlgs)
	}

	for _, alg := range fapiAlgs {
		if err := md.CheckSigner(sdkSigner(t, alg)); err != nil {
			t.Errorf("CheckSigner(%s) = %v; want nil", alg, err)
		}
	}
	for _, alg := range []string{"ES384", "ES512", "RS256"} {
		if err := md.CheckSigner(sdkSigner(t, alg)); err == nil || !strings.Contains(err.Error(), alg) {
			t.Errorf("CheckSigner(%s) = %v; want an error naming %s (not a FAPI 2.0 alg)", alg, err, alg)
		}
	}
}

// fapiMetadata holds the discovery fields dpop.Metadata does not carry.
type fapiMetadata struct {
	ISSParameterSupported bool     `json:"authorization_response_iss_parameter_supported"` // RFC 9207 §3
	AuthSigningAlgs       []string `json:"token_endpoint_auth_signing_alg_values_supported"`
}

func fapiRawMetadata(t *testing.T, issuer string) fapiMetadata {
	t.Helper()
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m fapiMetadata
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
