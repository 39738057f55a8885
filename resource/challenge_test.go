package resource

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dpopkit/dpop/internal/challenge"
)

// parseChallenges parses a WWW-Authenticate value with the client's
// parser, so that what the server writes is what a client reads.
func parseChallenges(t *testing.T, v string) map[string]map[string]string {
	t.Helper()
	cs, err := challenge.Parse([]string{v})
	if err != nil {
		t.Fatalf("WWW-Authenticate %q does not parse: %v", v, err)
	}
	out := map[string]map[string]string{}
	for _, c := range cs {
		out[c.Scheme] = c.Params
	}
	return out
}

func TestChallenge(t *testing.T) {
	s := newSetup(t, "ES256", func(c *Config) {
		c.ResourceMetadata = "https://api.example.com/.well-known/oauth-protected-resource"
		c.Algs = []string{"ES256", "EdDSA"}
	})
	for _, tt := range []struct {
		name   string
		err    error
		status int
		want   string
	}{
		{"no credentials", refuse("", ReasonMissingToken, errNoToken), 401,
			`DPoP algs="ES256 EdDSA", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"`},
		{"bad proof", proofErr(ReasonHTU, "x"), 401,
			`DPoP error="invalid_dpop_proof", error_description="the DPoP proof htu does not match the request URL", algs="ES256 EdDSA", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"`},
		{"malformed", refuse(ErrorInvalidRequest, ReasonMalformed, errors.New("x")), 400,
			`DPoP error="invalid_request", error_description="the Authorization or DPoP header is repeated or malformed", algs="ES256 EdDSA", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"`},
		{"store down", refuse("", ReasonStoreUnavailable, errors.New("x")), 503, ""},
		{"token verifier down", refuse("", ReasonTokenUnavailable, ErrUnavailable), 503, ""},
		{"another error", errors.New("x"), 401,
			`DPoP algs="ES256 EdDSA", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"`},
	} {
		status, got := s.v.Challenge(tt.err)
		if status != tt.status || got != tt.want {
			t.Errorf("%s: Challenge = %d, %q; want %d, %q", tt.name, status, got, tt.status, tt.want)
		}
		if got != "" {
			parseChallenges(t, got)
		}
	}
}

// TestChallengeDescriptions checks that every reason's description is a
// valid quoted-string that the client's parser reads back unchanged.
func TestChallengeDescriptions(t *testing.T) {
	s := newSetup(t, "ES256", nil)
	for _, r := range allReasons {
		e := refuse(ErrorInvalidProof, r, nil)
		if e.Status() == 503 {
			continue // no challenge
		}
		_, v := s.v.Challenge(e)
		p := parseChallenges(t, v)["DPoP"]
		if p["error_description"] != description(r) || !quotable(description(r)) {
			t.Errorf("%s: error_description read back as %q; want %q", r, p["error_description"], description(r))
		}
	}
	var c challengeWriter
	c.scheme("DPoP")
	c.param("error_description", "a \"quoted\" \\ value\x00\n\xff")
	if got, want := string(c.b), `DPoP error_description="a \"quoted\" \\ value???"`; got != want {
		t.Errorf("param = %s; want %s", got, want)
	}
	parseChallenges(t, string(c.b))
}

var allReasons = []Reason{
	ReasonMissingToken, ReasonScheme, ReasonMalformed, ReasonTooLarge, ReasonURL, ReasonForwarded, ReasonMissingProof,
	ReasonProofSyntax, ReasonProofHeader, ReasonProofAlg, ReasonProofKey, ReasonProofSignature, ReasonJTI, ReasonHTM,
	ReasonHTU, ReasonIAT, ReasonATH, ReasonNonce, ReasonToken, ReasonTokenUnavailable, ReasonUnbound, ReasonBoundBearer,
	ReasonJKT, ReasonReplay, ReasonReplayQuota, ReasonStoreUnavailable, ReasonCanceled,
}

// TestAllowBearer checks the migration mode: unbound Bearer tokens pass,
// bound ones never (RFC 9449 §7.2), DPoP as ever, and challenges offer
// both schemes.
func TestAllowBearer(t *testing.T) {
	s := newSetup(t, "ES256", func(c *Config) { c.AllowBearer = true })
	unbound := s.tokens.issue("")
	bearer := func(tok string) *http.Request {
		r := httptest.NewRequest("GET", testURL, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	if at, err := s.v.Check(bearer(unbound)); err != nil || at.JKT != "" {
		t.Errorf("unbound Bearer token: %v, %v", at, err)
	}
	_, err := s.v.Check(bearer(s.token))
	if reasonOf(err) != ReasonBoundBearer {
		t.Fatalf("bound token as Bearer: %v; want %s", err, ReasonBoundBearer)
	}
	_, v := s.v.Challenge(err)
	cs := parseChallenges(t, v)
	if cs["Bearer"]["error"] != "invalid_token" || cs["DPoP"]["error"] != "" || cs["DPoP"]["algs"] == "" {
		t.Errorf("challenge %q: want invalid_token on Bearer, none on DPoP", v)
	}
	if _, err := s.v.Check(s.request(s.validProof(t))); err != nil {
		t.Errorf("DPoP: %v", err)
	}
	_, err = s.v.Check(s.request(""))
	_, v = s.v.Challenge(err)
	cs = parseChallenges(t, v)
	if _, ok := cs["Bearer"]; cs["DPoP"]["error"] != "invalid_dpop_proof" || !ok || cs["Bearer"]["error"] != "" {
		t.Errorf("challenge %q: want invalid_dpop_proof on DPoP and a bare Bearer", v)
	}
	if _, err := s.v.Check(bearer("tok.nope")); reasonOf(err) != ReasonToken {
		t.Errorf("unknown Bearer token: %v", err)
	}
	// An unbound token with DPoP is refused in this mode too.
	s.token = unbound
	if _, err := s.v.Check(s.request(s.validProof(t))); reasonOf(err) != ReasonUnbound {
		t.Errorf("unbound token with the DPoP scheme: %v; want %s", err, ReasonUnbound)
	}
}
