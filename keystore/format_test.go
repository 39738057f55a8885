package keystore

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// secretToken holds values a log must never show.
func secretToken() *oauth2.Token {
	return &oauth2.Token{
		AccessToken:  "at-SECRET-access-0123456789",
		TokenType:    "DPoP",
		RefreshToken: "rt-SECRET-refresh-0123456789",
	}
}

// leak returns the form in which out shows secret, or "" if it shows none:
// as text, or a run of its bytes in the forms fmt prints []byte and string
// in (%v, %s, %x, %#v, %q) or base64.
func leak(out string, secret []byte) string {
	if len(secret) < 24 {
		panic("leak: secret too short to sample")
	}
	run := secret[len(secret)-16:] // the end of a key's DER is key material
	forms := map[string]string{
		"text":    string(run),
		"decimal": strings.Trim(fmt.Sprint(run), "[]"),
		"hex":     hex.EncodeToString(run),
		"%#v":     strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", run), "[]byte{"), "}"),
		"%q":      strings.Trim(fmt.Sprintf("%q", run), `"`),
		"base64":  base64.StdEncoding.EncodeToString(secret)[:24],
	}
	for name, f := range forms {
		if strings.Contains(out, f) {
			return name
		}
	}
	return ""
}

// checkNoLeak prints v under every verb a log may use and fails if a secret
// shows.
func checkNoLeak(t *testing.T, what string, v any, secrets ...[]byte) {
	t.Helper()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, v)
		for _, s := range secrets {
			if form := leak(out, s); form != "" {
				t.Errorf("%s of %s shows a secret (%s form): %.300s", verb, what, form, out)
			}
		}
	}
}

// TestFormatHidesSecrets prints every exported type of the package, holding
// keys of every type and a token, and finds none of their bytes.
func TestFormatHidesSecrets(t *testing.T) {
	tok := secretToken()
	tokSecrets := [][]byte{[]byte(tok.AccessToken), []byte(tok.RefreshToken)}
	for _, tc := range algTests {
		t.Run("key "+tc.alg, func(t *testing.T) {
			mem := new(MemoryStore)
			file := newTestFileStore(t)
			kc := newFakeKeychain(t, new(fakeBackend))
			var secrets [][]byte
			for _, s := range []Store{mem, file, kc} {
				key, err := LoadOrCreate(s, "key", &KeyOptions{Alg: tc.alg})
				if err != nil {
					t.Fatal(err)
				}
				der, _ := MarshalKey(key)
				secrets = append(secrets, der)
				if err := SaveToken(s, "tok", tok, "jkt"); err != nil {
					t.Fatal(err)
				}
			}
			secrets = append(secrets, tokSecrets...)
			checkNoLeak(t, "*MemoryStore", mem, secrets...)
			checkNoLeak(t, "a struct holding a *MemoryStore", struct{ S *MemoryStore }{mem}, secrets...)
			checkNoLeak(t, "*FileStore", file, secrets...)
			checkNoLeak(t, "*Keychain", kc, secrets...)
			checkNoLeak(t, "[]Store", []Store{mem, file, kc}, secrets...)
		})
	}
}

// TestFormatTokenSource: the saving TokenSource holds the last token; it
// shows neither it nor the store's entries.
func TestFormatTokenSource(t *testing.T) {
	tok := secretToken()
	s := new(MemoryStore)
	ts := SavingTokenSource(s, "tok", "jkt", oauth2.StaticTokenSource(tok))
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	checkNoLeak(t, "TokenSource", ts, []byte(tok.AccessToken), []byte(tok.RefreshToken))
	if got := fmt.Sprint(ts); !strings.Contains(got, `"tok"`) {
		t.Errorf("TokenSource prints %q; want the entry's name", got)
	}
}

// TestErrorsHideSecrets: the errors of this package, including those about
// corrupt entries that hold secrets, show none of the secrets.
func TestErrorsHideSecrets(t *testing.T) {
	secret := []byte("SECRET-stored-value-0123456789")
	var s MemoryStore
	var errs []error
	for _, data := range []string{
		`{"jkt":"j","access_token":"a","expiry":"` + string(secret) + `"}`,
		`{"jkt":"j","access_token":"a","expiry":` + string(secret) + `}`,
		`{"jkt":"j","access_token":"` + string(secret) + `","refresh_token":1}`,
		`{"jkt":"j","access_token":"` + string(secret) + `"`,
		string(secret),
	} {
		s.Put("tok", []byte(data))
		_, err := LoadToken(&s, "tok", "j")
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("LoadToken(%q) = %v; want a *CorruptError", data, err)
		}
		errs = append(errs, err)
	}
	s.Put("key", secret)
	_, err := LoadKey(&s, "key")
	errs = append(errs, err)
	_, err = ParseKey(secret)
	errs = append(errs, err)
	errs = append(errs,
		&BindingError{Name: "tok", Stored: "a", Current: "b"},
		&TooLargeError{Name: "tok", Size: 2, Limit: 1},
	)
	for _, err := range errs {
		checkNoLeak(t, fmt.Sprintf("error %T", err), err, secret)
	}
}
