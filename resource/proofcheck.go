package resource

import (
	"context"
	"crypto"
	"errors"

	"github.com/dpopkit/dpop/internal/proofcheck"
)

// The seam of internal/proofcheck: dpoptest checks proofs with this
// package's checks (one verifier in the repository), without an exported name here.
func init() {
	proofcheck.New = newProofChecker
}

// proofChecker checks proofs for internal/proofcheck.
type proofChecker struct{ v *Verifier }

// noTokens refuses every token: a proofChecker never asks.
type noTokens struct{}

func (noTokens) VerifyToken(context.Context, string) (*AccessToken, error) {
	return nil, errors.New("dpop: no token verifier")
}

func newProofChecker(c proofcheck.Config) (proofcheck.Checker, error) {
	v, err := NewVerifier(Config{Tokens: noTokens{}, Algs: c.Algs, MaxAge: c.MaxAge, MaxFuture: c.MaxFuture, Now: c.Now})
	if err != nil {
		return nil, err
	}
	return proofChecker{v}, nil
}

func (pc proofChecker) Check(proof, method, url, token string) (*proofcheck.Proof, *proofcheck.Failure) {
	tgt := target{bases: []string{""}, path: url}
	p, e := pc.v.checkProof(context.Background(), proof, method, &tgt, token, pc.v.now(), false)
	if e != nil {
		return nil, &proofcheck.Failure{Reason: string(e.Reason), Err: e.Err}
	}
	var key crypto.PublicKey
	switch {
	case p.key.ec != nil:
		key = p.key.ec
	case p.key.ed != nil:
		key = p.key.ed
	default:
		key = p.key.rsa
	}
	return &proofcheck.Proof{Alg: p.key.alg, JKT: p.key.jkt, Key: key}, nil
}
