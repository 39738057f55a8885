package keystore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
	if s == nil {
		return fmt.Errorf("keystore: SaveToken %s: the Store is nil", quote(name))
	}
	if tok == nil || tok.AccessToken == "" && tok.RefreshToken == "" {
		return fmt.Errorf("keystore: SaveToken %s: neither an access token nor a refresh token", quote(name))
	}
	if jkt == "" {
		return fmt.Errorf("keystore: SaveToken %s: empty key thumbprint", quote(name))
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
	if s == nil {
		return nil, fmt.Errorf("keystore: LoadToken %s: the Store is nil", quote(name))
	}
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
		return nil, tokenJSONError(err)
	}
	if st.JKT == "" {
		return nil, errors.New("token JSON has no jkt")
	}
	if st.AccessToken == "" && st.RefreshToken == "" {
		return nil, errors.New("token JSON has neither access_token nor refresh_token")
	}
	return &st, nil
}

// tokenJSONError describes why a token entry does not parse without
// quoting it: encoding/json and time quote the bytes they refuse, and an
// entry holds tokens.
func tokenJSONError(err error) error {
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
		pe *time.ParseError
	)
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("token JSON is malformed at byte %d", se.Offset)
	case errors.As(err, &te):
		// Value may go on with a number from the entry: keep its kind.
		kind, _, _ := strings.Cut(te.Value, " ")
		return fmt.Errorf("token JSON field %s holds a JSON %s, not a %v", quote(te.Field), kind, te.Type)
	case errors.As(err, &pe):
		return errors.New("token JSON field \"expiry\" is not an RFC 3339 time")
	}
	return errors.New("token JSON does not parse")
}
