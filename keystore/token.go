package keystore

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// storedToken is the JSON kept in a token entry.
type storedToken struct {
	JKT          string    `json:"jkt"`
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// SaveToken stores tok under name in s with [Store.Put], as JSON together
// with jkt, the RFC 7638 thumbprint of the key tok is bound to. It keeps
// AccessToken, TokenType, RefreshToken and Expiry; the extra fields of the
// token response (such as an id_token) are not kept.
//
// A token too large for the store is refused with a [*TooLargeError]
// (chunking is not attempted): a [Keychain] on Windows holds 1920 bytes of
// JSON, enough for opaque tokens and for most JWT access tokens.
func SaveToken(s Store, name string, tok *oauth2.Token, jkt string) error {
	if tok == nil || tok.AccessToken == "" {
		return fmt.Errorf("keystore: SaveToken %q: no access token", name)
	}
	if jkt == "" {
		return fmt.Errorf("keystore: SaveToken %q: empty key thumbprint", name)
	}
	data, err := json.Marshal(storedToken{
		JKT:          jkt,
		AccessToken:  tok.AccessToken,
		TokenType:    tok.TokenType,
		RefreshToken: tok.RefreshToken,
		Expiry:       tok.Expiry,
	})
	if err != nil {
		return fmt.Errorf("keystore: encoding token %q: %w", name, err)
	}
	return s.Put(name, data)
}

// LoadToken returns the token stored under name, after checking that it is
// bound to the current key, whose RFC 7638 thumbprint is jkt (pass "" when
// there is no current key). Check before the token is used or refreshed.
//
// When no token is stored, the error matches both [ErrLoginRequired] and
// ErrNotFound. When the token is bound to another key, or jkt is empty, the
// error is a [*BindingError], which matches ErrLoginRequired, and the stale
// token is not returned. An entry that does not parse is a [*CorruptError].
func LoadToken(s Store, name string, jkt string) (*oauth2.Token, error) {
	data, err := s.Get(name)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: no token stored under %q: %w", ErrLoginRequired, name, err)
	}
	if err != nil {
		return nil, err
	}
	st, err := parseToken(data)
	if err != nil {
		return nil, &CorruptError{Name: name, Err: err}
	}
	if st.JKT != jkt {
		return nil, &BindingError{Name: name, Stored: st.JKT, Current: jkt}
	}
	return &oauth2.Token{
		AccessToken:  st.AccessToken,
		TokenType:    st.TokenType,
		RefreshToken: st.RefreshToken,
		Expiry:       st.Expiry,
	}, nil
}

// parseToken decodes and checks a token entry.
func parseToken(data []byte) (*storedToken, error) {
	var st storedToken
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("token JSON: %w", err)
	}
	if st.JKT == "" {
		return nil, errors.New("token JSON has no jkt")
	}
	if st.AccessToken == "" {
		return nil, errors.New("token JSON has no access_token")
	}
	return &st, nil
}

// TokenSource returns a TokenSource that returns src's tokens and saves each
// new one (a token whose AccessToken differs from the last one saved) under
// name in s with [SaveToken], bound to jkt. x/oauth2 has no refresh hook;
// this is how a refreshed token, and its rotated refresh token, outlives the
// process.
//
// If saving fails, Token returns the error and no token, so the caller's
// request fails rather than continue with a refresh token that exists only
// in memory; the next call tries the save again (src, being an
// [oauth2.ReuseTokenSource] as usual, still holds the token). src is called
// on every Token call, so it should cache. The returned TokenSource is safe
// for concurrent use; calls to src and saves are serialized together (as
// ReuseTokenSource serializes refreshes), so an older token never
// overwrites a newer one. (A [Keychain] save that timed out may still land
// later; Keychain makes the next save of the entry wait for it, so it
// cannot land over a newer token either.)
func TokenSource(s Store, name, jkt string, src oauth2.TokenSource) oauth2.TokenSource {
	return &savingTokenSource{s: s, name: name, jkt: jkt, src: src}
}

type savingTokenSource struct {
	s         Store
	name, jkt string
	src       oauth2.TokenSource

	mu   sync.Mutex // guards last and orders src calls with saves
	last string     // AccessToken of the last token saved
}

func (ts *savingTokenSource) Token() (*oauth2.Token, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	tok, err := ts.src.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, errors.New("keystore: token source returned no token")
	}
	if tok.AccessToken == ts.last {
		return tok, nil
	}
	if err := SaveToken(ts.s, ts.name, tok, ts.jkt); err != nil {
		return nil, fmt.Errorf("keystore: saving the new token %q failed, so it is not used (its refresh token would be lost): %w", ts.name, err)
	}
	ts.last = tok.AccessToken
	return tok, nil
}
