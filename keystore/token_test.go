package keystore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func testToken(access string) *oauth2.Token {
	return &oauth2.Token{
		AccessToken:  access,
		TokenType:    "DPoP",
		RefreshToken: "refresh-" + access,
		Expiry:       time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func sameToken(a, b *oauth2.Token) bool {
	return a.AccessToken == b.AccessToken && a.TokenType == b.TokenType &&
		a.RefreshToken == b.RefreshToken && a.Expiry.Equal(b.Expiry)
}

func TestTokenRoundTrip(t *testing.T) {
	for _, st := range testStores() {
		t.Run(st.name, func(t *testing.T) {
			s := st.new(t)
			if _, err := LoadToken(s, "tok", "jkt-a"); !errors.Is(err, ErrLoginRequired) || !errors.Is(err, ErrNotFound) {
				t.Errorf("LoadToken(none) = %v; want ErrLoginRequired and ErrNotFound", err)
			}
			want := testToken("at-1")
			if err := SaveToken(s, "tok", want, "jkt-a"); err != nil {
				t.Fatal(err)
			}
			got, err := LoadToken(s, "tok", "jkt-a")
			if err != nil || !sameToken(got, want) {
				t.Fatalf("LoadToken = %+v, %v; want %+v", got, err, want)
			}
			// Save replaces.
			want = testToken("at-2")
			if err := SaveToken(s, "tok", want, "jkt-a"); err != nil {
				t.Fatal(err)
			}
			if got, err := LoadToken(s, "tok", "jkt-a"); err != nil || !sameToken(got, want) {
				t.Errorf("LoadToken after second save = %+v, %v; want %+v", got, err, want)
			}

			// Another key, or none: login required, no token.
			for _, current := range []string{"jkt-b", ""} {
				got, err := LoadToken(s, "tok", current)
				var be *BindingError
				if got != nil || !errors.As(err, &be) || !errors.Is(err, ErrLoginRequired) {
					t.Errorf("LoadToken(current %q) = %v, %v; want nil, *BindingError", current, got, err)
					continue
				}
				if be.Name != "tok" || be.Stored != "jkt-a" || be.Current != current {
					t.Errorf("BindingError = %+v; want {tok jkt-a %s}", be, current)
				}
			}
		})
	}
}

func TestTokenCorrupt(t *testing.T) {
	for _, data := range []string{"", "{", "[]", `{"access_token":"a"}`, `{"jkt":"j"}`, `{"jkt":"j","access_token":1}`} {
		var s MemoryStore
		s.Put("tok", []byte(data))
		_, err := LoadToken(&s, "tok", "j")
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Name != "tok" {
			t.Errorf("LoadToken(%q) = %v; want *CorruptError naming tok", data, err)
		}
		if got, _ := s.Get("tok"); string(got) != data {
			t.Errorf("entry changed to %q", got)
		}
	}
}

func TestSaveTokenRefuses(t *testing.T) {
	var s MemoryStore
	for _, tc := range []struct {
		tok *oauth2.Token
		jkt string
	}{
		{nil, "j"},
		{&oauth2.Token{}, "j"},
		{testToken("a"), ""},
	} {
		if err := SaveToken(&s, "tok", tc.tok, tc.jkt); err == nil {
			t.Errorf("SaveToken(%v, %q) = nil; want an error", tc.tok, tc.jkt)
		}
	}
}

func TestSaveTokenTooLarge(t *testing.T) {
	be := new(fakeBackend)
	k := newFakeKeychain(t, be)
	tok := testToken(strings.Repeat("a", 64<<10))
	err := SaveToken(k, "tok", tok, "j")
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Name != "tok" || !strings.Contains(err.Error(), fmt.Sprint(tl.Limit)) {
		t.Errorf("SaveToken(huge) = %v; want *TooLargeError naming the size and limit", err)
	}
}

// TestLoadTokenHostile: what a token entry holds reaches an error quoted
// and cut: the thumbprint of a token bound to another key, the fields of
// JSON that does not parse.
func TestLoadTokenHostile(t *testing.T) {
	var s MemoryStore
	for _, entry := range []map[string]any{
		{"jkt": hostile, "access_token": "a"},
		{"jkt": "j", "access_token": "a", "token_type": 1e300},
		{"jkt": "j", "access_token": "a", "expiry": hostile},
	} {
		data, err := json.Marshal(entry)
		if err != nil {
			t.Fatal(err)
		}
		s.Put("tok", data)
		_, err = LoadToken(&s, "tok", "current")
		checkErrorText(t, fmt.Sprintf("LoadToken(%.40q…)", data), err)
	}
	checkErrorText(t, "SaveToken(nil token, a long name)", SaveToken(&s, hostile, nil, "j"))
	checkErrorText(t, "BindingError with a long current key", (&BindingError{Name: "t", Stored: "s", Current: hostile}))
}

// TestRefreshTokenOnly checks that a token holding only a refresh token is
// saved and loaded back (the token source refreshes it before first use),
// and that a token holding neither is refused.
func TestRefreshTokenOnly(t *testing.T) {
	s := &MemoryStore{}
	tok := &oauth2.Token{RefreshToken: "refresh-only", TokenType: "DPoP"}
	if err := SaveToken(s, "rt", tok, "jkt"); err != nil {
		t.Fatalf("SaveToken(refresh token only) = %v; want nil", err)
	}
	got, err := LoadToken(s, "rt", "jkt")
	if err != nil {
		t.Fatalf("LoadToken = %v; want nil", err)
	}
	if got.RefreshToken != "refresh-only" || got.AccessToken != "" {
		t.Errorf("LoadToken = access %q, refresh %q; want the refresh token alone", got.AccessToken, got.RefreshToken)
	}
	if err := SaveToken(s, "none", &oauth2.Token{TokenType: "DPoP"}, "jkt"); err == nil {
		t.Error("SaveToken(no token at all) = nil; want an error")
	}
}
