package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"

	"golang.org/x/oauth2"

	"github.com/dpopkit/dpop"
)

// stolenToken: an attacker who has the access token but not the private
// key cannot use it (RFC 9449 §7.1): with a proof of their own key the
// token's cnf.jkt does not match, and without a proof a DPoP-bound token
// is not a bearer token.
func (d *demo) stolenToken(ctx context.Context) error {
	stolen := d.tok.AccessToken
	d.out.info("stolen", "access token "+short(stolen)+", bound to jkt "+short(d.key.Thumbprint()))

	key, err := d.attackerKey()
	if err != nil {
		return err
	}
	d.out.info("attacker key", "ECDSA P-256, jkt "+short(key.Thumbprint()))
	thief := &http.Client{Transport: &dpop.Transport{
		Base:   d.trace.as("attacker"),
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: stolen, TokenType: "DPoP"}),
		Signer: key,
	}}
	r, err := d.send(ctx, thief, http.MethodGet, "/api/me", "", nil)
	if err != nil {
		return err
	}
	if err := d.expectRefused(r, dpop.CodeInvalidToken, "stolen token refused with another key: 401 invalid_token"); err != nil {
		return err
	}

	plain := &http.Client{Transport: d.trace.as("attacker")}
	r, err = d.send(ctx, plain, http.MethodGet, "/api/me", "", http.Header{"Authorization": {"Bearer " + stolen}})
	if err != nil {
		return err
	}
	return d.expectRefused(r, dpop.CodeInvalidToken, "stolen token refused as a Bearer token: 401 invalid_token")
}

// attackerKey returns a new key, or the client's own when the options say
// the attacker has it (for the tests).
func (d *demo) attackerKey() (*dpop.Signer, error) {
	if d.opts.attackerHasKey {
		return d.key, nil
	}
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return dpop.NewSigner(pk, nil)
}

// replayedProof: an attacker who captured a whole request, token and proof,
// cannot send it again: the proof's jti was seen (RFC 9449 §11.1).
func (d *demo) replayedProof(ctx context.Context) error {
	mark := d.log.mark()
	if _, err := d.callOK(ctx, http.MethodGet, "/api/me", ""); err != nil {
		return err
	}
	var captured *attempt
	for _, a := range d.log.since(mark) {
		if a.Status == http.StatusOK {
			captured = a
		}
	}
	if captured == nil || captured.Proof == nil {
		return fmt.Errorf("no accepted request with a proof to capture")
	}
	d.out.info("captured", fmt.Sprintf("Authorization: DPoP %s + DPoP: %s (jti %s)",
		short(captured.token), short(captured.header.Get("DPoP")), short(captured.Proof.JTI)))

	plain := &http.Client{Transport: d.trace.as("attacker")}
	r, err := d.send(ctx, plain, captured.Method, captured.URL, "", captured.header)
	if err != nil {
		return err
	}
	return d.expectRefused(r, dpop.CodeInvalidProof, "replayed proof refused: 401 invalid_dpop_proof (jti already used)")
}
