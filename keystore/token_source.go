package keystore

import (
	"context"
	"errors"
	"fmt"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/internal/ctxwait"
	"golang.org/x/oauth2"
)

// SavingTokenSource returns a [dpop.TokenSource] that returns src's tokens
// and saves each new one (a token that differs from the last one saved in
// any field it keeps: AccessToken, RefreshToken, Expiry or TokenType)
// under name in s with [SaveToken], bound to jkt. x/oauth2 has no refresh
// hook; this is how a refreshed token, and its rotated refresh token,
// outlives the process. A refresh that keeps the access token but rotates
// the refresh token is saved too.
//
// If saving fails, Token returns the error and no token, so the caller's
// request fails rather than continue with a refresh token that exists only
// in memory; the next call tries the save again (src, a reusing source
// such as [dpop.Config.TokenSource] or [oauth2.ReuseTokenSource], still
// holds the token). src is called on every Token call, so it should
// cache. The returned source is safe for concurrent use; calls to src and saves are serialized together (as
// ReuseTokenSource serializes refreshes), so an older token never
// overwrites a newer one. (A [Keychain] save that timed out may still land
// later; Keychain makes the next save of the entry wait for it, so it
// cannot land over a newer token either.)
//
// Its TokenContext is Token with every wait bounded by ctx: it calls src's
// TokenContext method if src has one, else src.Token in a goroutine of its
// own that it stops waiting for when ctx ends (that call goes on, and saves
// its token, for the next caller). Invalidate reports that a server refused
// tok (invalid_token): it calls src's Invalidate method if src has one, and
// returns false (the source cannot get a new token) if not. Every token
// either method brings is saved by the rule above. Printing the returned
// source shows name and jkt only.
func SavingTokenSource(s Store, name, jkt string, src oauth2.TokenSource) dpop.TokenSource {
	return &savingTokenSource{s: s, name: name, jkt: jkt, src: src, sem: make(chan struct{}, 1)}
}

// contextTokenSource and invalidator are the halves of [dpop.TokenSource]
// that a wrapped src may have one without the other; each is used when src
// has it.
type contextTokenSource interface {
	TokenContext(ctx context.Context) (*oauth2.Token, error)
}

type invalidator interface {
	Invalidate(tok *oauth2.Token) bool
}

var _ dpop.TokenSource = (*savingTokenSource)(nil)

type savingTokenSource struct {
	s         Store
	name, jkt string
	src       oauth2.TokenSource

	sem  chan struct{} // a lock ctx can bound: holds last and orders src calls with saves
	last *oauth2.Token // a copy of the last token saved; nil before the first
}

// Token implements [oauth2.TokenSource].
func (ts *savingTokenSource) Token() (*oauth2.Token, error) {
	if err := ts.check(); err != nil {
		return nil, err
	}
	ts.sem <- struct{}{}
	defer func() { <-ts.sem }()
	return ts.saveLocked(ts.src.Token())
}

// TokenContext is Token with its waits bounded by ctx: for the lock, and
// for src.
func (ts *savingTokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if err := ts.check(); err != nil {
		return nil, err
	}
	if ctx == nil {
		return nil, fmt.Errorf("keystore: SavingTokenSource %s: the context is nil", quote(ts.name))
	}
	if err := ctx.Err(); err != nil {
		return nil, ts.ctxError(err)
	}
	select {
	case ts.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ts.ctxError(ctx.Err())
	}
	if cs, ok := ts.src.(contextTokenSource); ok {
		defer func() { <-ts.sem }()
		return ts.saveLocked(cs.TokenContext(ctx))
	}
	// src.Token cannot be stopped: wait for it no longer than ctx, while
	// it keeps the lock until it returns and saves what it brings.
	tok, err := ctxwait.Do(ctx, func() (*oauth2.Token, error) {
		defer func() { <-ts.sem }()
		return ts.saveLocked(ts.src.Token())
	})
	if cerr := ctx.Err(); cerr != nil && err == cerr {
		return nil, ts.ctxError(err)
	}
	return tok, err
}

// check returns an error naming a nil part of ts.
func (ts *savingTokenSource) check() error {
	if ts.s == nil || ts.src == nil {
		return fmt.Errorf("keystore: SavingTokenSource %q: the Store or the source is nil", ts.name)
	}
	return nil
}

func (ts *savingTokenSource) ctxError(err error) error {
	return fmt.Errorf("keystore: waiting for token %q: %w", ts.name, err)
}

// Invalidate tells src, if it can be told, that a server refused tok, and
// reports whether src can get a new token.
func (ts *savingTokenSource) Invalidate(tok *oauth2.Token) bool {
	if inv, ok := ts.src.(invalidator); ok {
		return inv.Invalidate(tok)
	}
	return false
}

// saveLocked saves tok if it differs from the last token saved, and
// returns it; the caller holds the lock.
func (ts *savingTokenSource) saveLocked(tok *oauth2.Token, err error) (*oauth2.Token, error) {
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, errors.New("keystore: token source returned no token")
	}
	if ts.last != nil && sameStoredFields(tok, ts.last) {
		return tok, nil
	}
	if err := SaveToken(ts.s, ts.name, tok, ts.jkt); err != nil {
		return nil, fmt.Errorf("keystore: saving the new token %q failed, so it is not used (its refresh token would be lost): %w", ts.name, err)
	}
	ts.last = &oauth2.Token{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}
	return tok, nil
}

// sameStoredFields reports whether a and b agree in every field SaveToken
// keeps.
func sameStoredFields(a, b *oauth2.Token) bool {
	return a.AccessToken == b.AccessToken && a.RefreshToken == b.RefreshToken &&
		a.TokenType == b.TokenType && a.Expiry.Equal(b.Expiry)
}

// Format implements [fmt.Formatter]: every verb prints the entry's name
// and jkt, never a token.
func (ts *savingTokenSource) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "&keystore.SavingTokenSource{name: %q, jkt: %q}", ts.name, ts.jkt)
}
