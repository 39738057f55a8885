package dpop

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// This file holds the checks of a grant configuration before its first
// request: client authentication with private_key_jwt in any mode, and
// the FAPI 2.0 Security Profile's rules for a client in FAPI 2.0 mode.
//
// [FAPI 2.0]: https://openid.net/specs/fapi-security-profile-2_0-final.html

// fapi2Algs are the JWS algorithms FAPI 2.0 allows (Security Profile
// §5.4.1), for DPoP proofs and client assertions alike.
var fapi2Algs = []string{algPS256, algES256, algEdDSA}

// grantParts is what the checks need to know of a [Config] or a
// [ClientCredentials].
type grantParts struct {
	owner       string // "Config" or "ClientCredentials"
	hasOAuth2   bool
	signer      *Signer
	assertion   *AssertionSigner
	clientID    string
	secret      string
	style       oauth2.AuthStyle
	issuer      string
	allowBearer bool
	fapi2       bool
	endpoints   []endpoint
}

// endpoint is a URL the grant sends requests or the user to.
type endpoint struct {
	name, url string
	required  bool // in FAPI 2.0 mode
}

// check returns an error naming what is missing or wrong in p, before any
// request is sent.
func (p *grantParts) check() error {
	if err := checkParts(p.owner, p.hasOAuth2, p.signer); err != nil {
		return err
	}
	if p.assertion != nil && p.assertion.s == nil {
		return fmt.Errorf("dpop: %s's ClientAssertion has no key: make it with NewAssertionSigner", p.owner)
	}
	if p.assertion != nil {
		switch {
		case p.clientID == "":
			return fmt.Errorf("dpop: %s has a ClientAssertion but no ClientID", p.owner)
		case p.secret != "":
			return fmt.Errorf("dpop: %s has both a ClientSecret and a ClientAssertion; a request authenticates the client one way only (RFC 6749 §2.3)", p.owner)
		case p.style == oauth2.AuthStyleInHeader:
			return fmt.Errorf("dpop: %s has a ClientAssertion, which goes in the request body; its AuthStyle must not be AuthStyleInHeader", p.owner)
		case p.issuer == "":
			return fmt.Errorf("dpop: %s's Issuer is empty; it is the aud of client assertions", p.owner)
		}
	}
	if p.fapi2 {
		return p.checkFAPI2()
	}
	return nil
}

// checkFAPI2 returns one error that names every way p falls short of what
// FAPI 2.0 asks of a client (Security Profile §5.3.2, §5.4), or nil.
func (p *grantParts) checkFAPI2() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	want := strings.Join(fapi2Algs, ", ")
	if !slices.Contains(fapi2Algs, p.signer.Alg()) {
		add("the Signer's alg is %s, want one of %s (§5.4.1)", p.signer.Alg(), want)
	}
	switch {
	case p.assertion == nil:
		add("ClientAssertion is nil: FAPI 2.0 clients authenticate with private_key_jwt (§5.3.2.1)")
	case !slices.Contains(fapi2Algs, p.assertion.Alg()):
		add("the ClientAssertion's alg is %s, want one of %s (§5.4.1)", p.assertion.Alg(), want)
	}
	if p.allowBearer {
		add("AllowBearer is set: FAPI 2.0 access tokens are sender-constrained (§5.3.2.1)")
	}
	if _, err := secureURL(p.issuer); err != nil {
		add("Issuer: %v", err)
	}
	for _, e := range p.endpoints {
		if e.url == "" && !e.required {
			continue
		}
		if _, err := secureURL(e.url); err != nil {
			add("%s: %v", e.name, err)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("dpop: %s does not meet FAPI 2.0: %s", p.owner, strings.Join(problems, "; "))
}

// checkFAPI2Request returns an error unless the parameters of an
// authorization request carry what FAPI 2.0 requires (Security Profile
// §5.3.2.2): PKCE with S256, a redirect_uri, and dpop_jkt (RFC 9449 §10),
// which the Config always adds.
func checkFAPI2Request(form url.Values) error {
	switch {
	case form.Get("code_challenge") == "" || form.Get("code_challenge_method") != "S256":
		return errors.New("dpop: FAPI 2.0: the authorization request needs PKCE with S256 (pass oauth2.S256ChallengeOption)")
	case form.Get("redirect_uri") == "":
		return errors.New("dpop: FAPI 2.0: the authorization request needs a redirect_uri (set OAuth2.RedirectURL)")
	case form.Get("dpop_jkt") == "":
		return errors.New("dpop: FAPI 2.0: the authorization request has no dpop_jkt")
	}
	return nil
}
