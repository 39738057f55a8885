package resource

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// This file holds the issuer's key set: found through its metadata
// (RFC 8414), fetched, cached, and fetched again at a bounded rate.

const (
	// maxKeys bounds how many usable keys of a key set are kept.
	maxKeys = 100

	// maxKeyCandidates bounds how many keys one token is tried with: the keys
	// sharing its kid, or, for a token without kid, the keys for its alg.
	maxKeyCandidates = 4
)

// asMetadata is what the resource server reads of authorization server
// metadata (RFC 8414 §2).
type asMetadata struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// discoverJWKS fetches the metadata of issuer and returns its jwks_uri:
// first from the RFC 8414 §3.1 well-known location, then, when that is not
// found (404), from OpenID Connect Discovery's openid-configuration. The
// document's issuer must equal issuer exactly (RFC 8414 §3.3) and jwks_uri
// must be https (http on loopback).
func discoverJWKS(ctx context.Context, c *http.Client, issuer string, timeout time.Duration) (string, error) {
	u, err := httpsURL("issuer", issuer)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return "", fmt.Errorf("dpop: issuer %s has a query (RFC 8414 §2)", quoteUntrusted(issuer))
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	locations := []string{
		u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + path,
		strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration",
	}
	var firstErr error
	for _, loc := range locations {
		body, err := getIssuerDocument(ctx, c, loc, timeout)
		if err == nil {
			return parseASMetadata(body, loc, issuer)
		}
		if firstErr == nil {
			firstErr = err
		}
		var ie *IssuerError
		if !errors.As(err, &ie) || ie.StatusCode != http.StatusNotFound {
			break
		}
	}
	return "", firstErr
}

// parseASMetadata reads the metadata document body fetched from loc and
// returns its jwks_uri, after checking that it names issuer.
func parseASMetadata(body []byte, loc, issuer string) (string, error) {
	var m asMetadata
	if err := json.Unmarshal(body, &m); err != nil {
		return "", &IssuerError{URL: loc, StatusCode: http.StatusOK, Err: fmt.Errorf("metadata: %w", err)}
	}
	if m.Issuer != issuer {
		return "", &IssuerError{URL: loc, StatusCode: http.StatusOK,
			Err: fmt.Errorf("metadata names issuer %s; want %s (RFC 8414 §3.3)", quoteUntrusted(m.Issuer), quoteUntrusted(issuer))}
	}
	if m.JWKSURI == "" {
		return "", &IssuerError{URL: loc, StatusCode: http.StatusOK, Err: errors.New("metadata has no jwks_uri")}
	}
	if _, err := httpsURL("jwks_uri", m.JWKSURI); err != nil {
		return "", &IssuerError{URL: loc, StatusCode: http.StatusOK, Err: err}
	}
	return m.JWKSURI, nil
}

// parseKeySet reads a JWK Set (RFC 7517 §5) and returns its public
// signing keys, at most maxKeys. A key go-jose cannot read (an unknown kty
// or curve, a bad member), an encryption key, a key with private members
// and a symmetric key are skipped, as RFC 7517 §5 says of keys not
// understood; a set that is not a JSON object with a keys array is an
// error.
func parseKeySet(body []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New("key set has no keys member (RFC 7517 §5)")
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		k.Certificates = nil // only the key is used; let the chain go
		keys = append(keys, k)
		if len(keys) == maxKeys {
			break
		}
	}
	return keys, nil
}

// jwksKeyFits reports whether k may verify a signature made with alg: its use
// and alg members allow it, and its type and size are those alg needs
// (RFC 7518 §3.1: RSA keys of 2048 bits or more).
func jwksKeyFits(k *jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		return (strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")) && pub.N.BitLen() >= 2048
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve == elliptic.P256()
		case "ES384":
			return pub.Curve == elliptic.P384()
		case "ES512":
			return pub.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// jwksCandidates returns the keys of keys that may have signed a token with
// kid and alg: those with that kid, or when kid is empty those for alg, at
// most maxKeyCandidates.
func jwksCandidates(keys []jose.JSONWebKey, kid, alg string) []*jose.JSONWebKey {
	var out []*jose.JSONWebKey
	for i := range keys {
		k := &keys[i]
		if k.KeyID == kid || kid == "" {
			if jwksKeyFits(k, alg) {
				out = append(out, k)
				if len(out) == maxKeyCandidates {
					break
				}
			}
		}
	}
	return out
}

// keySet is the issuer's key set, fetched from url, cached, and fetched
// again when a token names a key it does not hold or when it is older than
// maxAge, never more than once per interval whatever tokens arrive.
// Concurrent callers share one fetch. Its methods are safe for concurrent
// use.
type keySet struct {
	url      string
	client   *http.Client
	timeout  time.Duration // bounds each fetch
	interval time.Duration // at most one fetch started per interval
	maxAge   time.Duration
	now      func() time.Time

	mu       sync.Mutex        // guards the fields below
	keys     []jose.JSONWebKey // never modified once stored: replaced
	gen      uint64            // counts the successful fetches
	fetched  time.Time         // when keys were fetched
	started  time.Time         // when the last fetch started
	inflight *keyFetch         // the fetch under way, or nil
}

// keyFetch is one fetch of the key set, shared by the callers that wait
// for it.
type keyFetch struct {
	done chan struct{} // closed when the fetch is over
	err  error         // nil when keySet holds the fetched keys; set before done is closed
}

// errTooSoon says a fetch was not started: the last one started less than
// the interval ago.
var errTooSoon = errors.New("key set fetched too recently to fetch it again")

// load fetches the key set once with ctx, for the constructor.
func (ks *keySet) load(ctx context.Context) error {
	ks.mu.Lock()
	ks.started = ks.now()
	ks.mu.Unlock()
	keys, err := ks.fetch(ctx)
	if err != nil {
		return err
	}
	ks.store(keys)
	return nil
}

// current returns the keys, their generation and whether they are older
// than maxAge.
func (ks *keySet) current() ([]jose.JSONWebKey, uint64, bool) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.keys, ks.gen, ks.now().Sub(ks.fetched) >= ks.maxAge
}

// store makes keys the current set.
func (ks *keySet) store(keys []jose.JSONWebKey) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.keys = keys
	ks.gen++
	ks.fetched = ks.now()
}

// refresh returns a key set newer than generation gen: the one another
// caller fetched since, the result of the fetch under way, or a new fetch
// if the last one started at least interval ago (else errTooSoon). The
// fetch runs on its own, bounded by the timeout, so that a caller that
// gives up (its ctx done) does not abort it for the others; ctx bounds how
// long this caller waits, and its values (not its cancellation) go with
// the request.
func (ks *keySet) refresh(ctx context.Context, gen uint64) ([]jose.JSONWebKey, uint64, error) {
	ks.mu.Lock()
	if ks.gen != gen {
		keys, gen := ks.keys, ks.gen
		ks.mu.Unlock()
		return keys, gen, nil
	}
	f := ks.inflight
	if f == nil {
		now := ks.now()
		if now.Sub(ks.started) < ks.interval {
			ks.mu.Unlock()
			return nil, 0, errTooSoon
		}
		ks.started = now
		f = &keyFetch{done: make(chan struct{})}
		ks.inflight = f
		go ks.run(context.WithoutCancel(ctx), f)
	}
	ks.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	if f.err != nil {
		return nil, 0, f.err
	}
	keys, gen, _ := ks.current()
	return keys, gen, nil
}

// run makes the fetch f and publishes its result.
func (ks *keySet) run(ctx context.Context, f *keyFetch) {
	keys, err := ks.fetch(ctx)
	ks.mu.Lock()
	if err == nil {
		ks.keys = keys
		ks.gen++
		ks.fetched = ks.now()
	}
	ks.inflight = nil
	f.err = err
	ks.mu.Unlock()
	close(f.done)
}

// fetch GETs the key set and parses it.
func (ks *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	body, err := getIssuerDocument(ctx, ks.client, ks.url, ks.timeout)
	if err != nil {
		return nil, err
	}
	keys, err := parseKeySet(body)
	if err != nil {
		return nil, &IssuerError{URL: ks.url, StatusCode: http.StatusOK, Err: err}
	}
	return keys, nil
}

// verify checks the signature of jws, made with alg by the key named kid
// (maybe ""), with the issuer's keys, and returns the payload. A set older
// than maxAge is fetched again first (if that fails, the old set is used:
// the issuer being down must not stop the API). A kid the set does not
// hold, or for a token without kid a signature none of the set's keys
// verifies, makes it fetch the set again, at the bounded rate.
func (ks *keySet) verify(ctx context.Context, jws *jose.JSONWebSignature, kid, alg string) ([]byte, error) {
	keys, gen, stale := ks.current()
	if stale {
		if k, g, err := ks.refresh(ctx, gen); err == nil {
			keys, gen = k, g
		}
	}
	payload, found := verifyWithKeys(jws, jwksCandidates(keys, kid, alg))
	if payload != nil {
		return payload, nil
	}
	if found && kid != "" {
		return nil, &TokenError{Claim: "signature", Err: errors.New("signature does not verify with the issuer's key")}
	}
	keys, _, err := ks.refresh(ctx, gen)
	switch {
	case errors.Is(err, errTooSoon):
	case err != nil:
		var ie *IssuerError
		if errors.As(err, &ie) {
			return nil, err
		}
		return nil, &IssuerError{URL: ks.url, Err: err}
	default:
		payload, found = verifyWithKeys(jws, jwksCandidates(keys, kid, alg))
		if payload != nil {
			return payload, nil
		}
	}
	if found {
		return nil, &TokenError{Claim: "signature", Err: errors.New("signature does not verify with the issuer's keys")}
	}
	if kid == "" {
		return nil, &TokenError{Claim: "alg", Err: fmt.Errorf("no key of the issuer for %s", alg)}
	}
	return nil, &TokenError{Claim: "kid", Err: fmt.Errorf("no key %s for %s in the issuer's key set", quoteUntrusted(kid), alg)}
}

// verifyWithKeys returns the payload of jws if one of keys verifies its
// signature, and whether there was any key to try.
func verifyWithKeys(jws *jose.JSONWebSignature, keys []*jose.JSONWebKey) ([]byte, bool) {
	for _, k := range keys {
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, true
		}
	}
	return nil, len(keys) > 0
}
