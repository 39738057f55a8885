package resource

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// This file holds what JWT access tokens and introspection answers share:
// their members have the same names and meanings (RFC 9068 §2.2, RFC 7662
// §2.2, RFC 9449 §6), so one decoding and one set of checks serve both.

// tokenClaims are the members of a JWT access token's claims set or of an
// introspection answer that the resource server reads.
type tokenClaims struct {
	Active    *bool // introspection only
	Issuer    string
	Subject   string
	Audience  []string // aud: one string or an array of strings
	Expiry    *time.Time
	NotBefore *time.Time
	IssuedAt  *time.Time
	ClientID  string
	Scope     string
	JKT       *string // cnf.jkt
}

// maxNumericDate bounds a NumericDate (RFC 7519 §2): far beyond any real
// time, and far from overflowing time.Unix.
const maxNumericDate = 1 << 40

// decodeTokenClaims reads a JSON object once, into a map of every member,
// and takes the members the resource server reads from that map by their
// exact names: encoding/json would match struct fields case-insensitively
// ("EXP" for exp) and so read a document two ways. A member that is null
// counts as absent; one of another type than its definition says is an
// error naming it.
func decodeTokenClaims(data []byte) (*tokenClaims, map[string]any, error) {
	var all map[string]any
	if err := json.Unmarshal(data, &all); err != nil || all == nil {
		return nil, nil, &TokenError{Err: errors.New("claims are not a JSON object")}
	}
	c := &tokenClaims{}
	var err error
	str := func(name string, dst *string) {
		if v, ok := all[name]; ok && v != nil && err == nil {
			if *dst, ok = v.(string); !ok {
				err = &TokenError{Claim: name, Err: fmt.Errorf("%s is not a string", name)}
			}
		}
	}
	date := func(name string) *time.Time {
		v, ok := all[name]
		if !ok || v == nil || err != nil {
			return nil
		}
		f, ok := v.(float64)
		if !ok || f < 0 || f >= maxNumericDate {
			err = &TokenError{Claim: name, Err: fmt.Errorf("%s is not a NumericDate (RFC 7519 §2)", name)}
			return nil
		}
		sec, frac := math.Modf(f)
		t := time.Unix(int64(sec), int64(frac*1e9))
		return &t
	}
	if v, ok := all["active"]; ok && v != nil {
		b, ok := v.(bool)
		if !ok {
			return nil, nil, &TokenError{Claim: "active", Err: errors.New("active is not a boolean")}
		}
		c.Active = &b
	}
	str("iss", &c.Issuer)
	str("sub", &c.Subject)
	str("client_id", &c.ClientID)
	str("scope", &c.Scope)
	c.Expiry = date("exp")
	c.NotBefore = date("nbf")
	c.IssuedAt = date("iat")
	if err != nil {
		return nil, nil, err
	}
	switch aud := all["aud"].(type) {
	case nil:
	case string:
		c.Audience = []string{aud}
	case []any:
		c.Audience = make([]string, len(aud))
		for i, a := range aud {
			s, ok := a.(string)
			if !ok {
				return nil, nil, &TokenError{Claim: "aud", Err: errors.New("aud is not a string or an array of strings")}
			}
			c.Audience[i] = s
		}
	default:
		return nil, nil, &TokenError{Claim: "aud", Err: errors.New("aud is not a string or an array of strings")}
	}
	switch cnf := all["cnf"].(type) {
	case nil:
	case map[string]any:
		if v, ok := cnf["jkt"]; ok && v != nil {
			jkt, ok := v.(string)
			if !ok {
				return nil, nil, &TokenError{Claim: "cnf", Err: errors.New("cnf.jkt is not a string")}
			}
			c.JKT = &jkt
		}
	default:
		return nil, nil, &TokenError{Claim: "cnf", Err: errors.New("cnf is not a JSON object")}
	}
	return c, all, nil
}

// tokenChecks are what a token's claims are checked against.
type tokenChecks struct {
	issuer   string // iss must equal it, unless ""
	audience string // aud must contain it, unless ""
	needExp  bool   // exp must be present
	now      time.Time
	leeway   time.Duration // for exp, nbf and iat
}

// check applies k to c: issuer, audience, expiry, not-before and issued-at
// (RFC 9068 §4, RFC 7519 §4.1), and the form of cnf.jkt (RFC 9449 §6.1).
func (c *tokenClaims) check(k tokenChecks) error {
	if k.issuer != "" && c.Issuer != k.issuer {
		return &TokenError{Claim: "iss", Err: fmt.Errorf("issued by %s; want %s", quoteUntrusted(c.Issuer), quoteUntrusted(k.issuer))}
	}
	if k.audience != "" && !slices.Contains(c.Audience, k.audience) {
		return &TokenError{Claim: "aud", Err: fmt.Errorf("audience does not hold %s", quoteUntrusted(k.audience))}
	}
	switch {
	case c.Expiry == nil:
		if k.needExp {
			return &TokenError{Claim: "exp", Err: errors.New("no exp (RFC 9068 §2.2)")}
		}
	case !k.now.Before(c.Expiry.Add(k.leeway)):
		return &TokenError{Claim: "exp", Err: fmt.Errorf("expired at %s", c.Expiry.UTC().Format(time.RFC3339))}
	}
	if c.NotBefore != nil && k.now.Add(k.leeway).Before(*c.NotBefore) {
		return &TokenError{Claim: "nbf", Err: fmt.Errorf("not valid before %s", c.NotBefore.UTC().Format(time.RFC3339))}
	}
	if c.IssuedAt != nil && k.now.Add(k.leeway).Before(*c.IssuedAt) {
		return &TokenError{Claim: "iat", Err: fmt.Errorf("issued in the future, at %s", c.IssuedAt.UTC().Format(time.RFC3339))}
	}
	if c.JKT != nil && !validJKT(*c.JKT) {
		return &TokenError{Claim: "cnf", Err: errors.New("cnf.jkt is not a base64url SHA-256 thumbprint (RFC 9449 §6.1)")}
	}
	return nil
}

// accessToken returns what the verified claims c (all: every member)
// grant.
func (c *tokenClaims) accessToken(all map[string]any) *AccessToken {
	at := &AccessToken{
		Issuer:   c.Issuer,
		Subject:  c.Subject,
		ClientID: c.ClientID,
		Audience: c.Audience,
		Scopes:   strings.Fields(c.Scope),
		Claims:   all,
	}
	if len(at.Scopes) == 0 {
		at.Scopes = nil
	}
	if c.Expiry != nil {
		at.Expiry = *c.Expiry
	}
	if c.JKT != nil {
		at.JKT = *c.JKT
	}
	return at
}

// validJKT reports whether s is an unpadded base64url SHA-256 hash:
// 43 characters of the alphabet, the last one carrying 4 bits (RFC 7638
// §3, RFC 4648 §5).
func validJKT(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	// 256 bits in 43 characters leave the last 2 bits of the last one zero.
	return strings.IndexByte("AEIMQUYcgkosw048", s[42]) >= 0
}
