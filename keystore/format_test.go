package keystore

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"reflect"
	"slices"
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

// secretForms returns the forms in which an output could show secret: a
// run of its bytes as text, hex (both cases), Go's %q and byte-slice forms,
// and a run of its base64 and base64url (padded and not). Each form is
// long enough not to occur by chance.
func secretForms(secret []byte) []string {
	if len(secret) < 16 {
		panic("secretForms: secret too short to sample")
	}
	run := secret[len(secret)-16:] // the end of a key's DER is key material
	forms := []string{
		string(run),
		hex.EncodeToString(run),
		strings.ToUpper(hex.EncodeToString(run)),
		strings.Trim(fmt.Sprint(run), "[]"),
		strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", run), "[]byte{"), "}"),
		strings.Trim(fmt.Sprintf("%q", run), `"`),
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b64 := enc.EncodeToString(secret)
		b64 = strings.TrimRight(b64, "=")
		forms = append(forms, b64[len(b64)-20:len(b64)-2]) // the last characters depend on the padding
	}
	return forms
}

// keyForms returns the forms of key's private part: those of its PKCS #8
// encoding and of its private scalars, and their decimal big integers.
func keyForms(t *testing.T, key crypto.Signer) []string {
	t.Helper()
	der, err := MarshalKey(key)
	if err != nil {
		t.Fatal(err)
	}
	forms := secretForms(der)
	decimal := func(n *big.Int) {
		forms = append(forms, n.String()[:24], n.Text(16)[:24])
		forms = append(forms, secretForms(n.Bytes())...)
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		decimal(k.D)
	case *rsa.PrivateKey:
		decimal(k.D)
		for _, p := range k.Primes {
			decimal(p)
		}
	case ed25519.PrivateKey:
		forms = append(forms, secretForms(k.Seed())...)
	}
	return forms
}

// encodings returns v as every encoder a program may log it with: the
// verbs of package fmt, slog's text and JSON handlers (as an attribute and
// as a group member), and encoding/json.
func encodings(v any) map[string]string {
	out := make(map[string]string)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		out["fmt "+verb] = fmt.Sprintf(verb, v)
	}
	var text, js bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&text, nil), slog.NewJSONHandler(&js, nil)} {
		l := slog.New(h)
		l.Info("m", "v", v)
		l.Info("m", slog.Group("g", "v", v))
		l.With("w", v).Info("m")
	}
	out["slog text"] = text.String()
	out["slog JSON"] = js.String()
	if b, err := json.Marshal(v); err != nil {
		out["encoding/json"] = "error: " + err.Error()
	} else {
		out["encoding/json"] = string(b)
	}
	return out
}

// checkEncoders fails if any encoding of v, or of the value v points to,
// shows one of forms.
func checkEncoders(t *testing.T, what string, v any, forms []string) {
	t.Helper()
	vals := map[string]any{what: v}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		vals[what+" (value)"] = rv.Elem().Interface()
	}
	for name, v := range vals {
		for enc, out := range encodings(v) {
			for _, f := range forms {
				if strings.Contains(out, f) {
					t.Errorf("%s of %s shows a secret (%q): %.300s", enc, name, f, out)
					break
				}
			}
		}
	}
}

// TestEncodersHideSecrets: every type of this package that holds a key or
// a token, or an error about one, shows neither under fmt, slog's text and
// JSON handlers, or encoding/json, as a pointer or as a value.
func TestEncodersHideSecrets(t *testing.T) {
	tok := secretToken()
	var tokForms []string
	for _, s := range []string{tok.AccessToken, tok.RefreshToken} {
		tokForms = append(tokForms, secretForms([]byte(s))...)
	}
	for _, tc := range algTests[1:] {
		t.Run("key "+tc.alg, func(t *testing.T) {
			mem := new(MemoryStore)
			file := newTestFileStore(t)
			kc := newFakeKeychain(t, new(fakeBackend))
			forms := slices.Clone(tokForms)
			for _, s := range []Store{mem, file, kc} {
				key, err := LoadOrCreate(s, "key", &KeyOptions{Alg: tc.alg})
				if err != nil {
					t.Fatal(err)
				}
				forms = append(forms, keyForms(t, key)...)
				if err := SaveToken(s, "tok", tok, "jkt"); err != nil {
					t.Fatal(err)
				}
			}
			checkEncoders(t, "*MemoryStore", mem, forms)
			checkEncoders(t, "*FileStore", file, forms)
			checkEncoders(t, "*Keychain", kc, forms)
			checkEncoders(t, "[]Store", []Store{mem, file, kc}, forms)
			// The source SavingTokenSource returns holds the last token
			// saved; its type is unexported, so only the pointer reaches a
			// log.
			ts := SavingTokenSource(mem, "tok", "jkt", oauth2.StaticTokenSource(tok))
			if _, err := ts.Token(); err != nil {
				t.Fatal(err)
			}
			checkEncoders(t, "a struct holding a TokenSource", struct{ TS oauth2.TokenSource }{ts}, forms)
			checkEncoders(t, "a struct holding stores", struct {
				M *MemoryStore
				K *Keychain
				F *FileStore
			}{mem, kc, file}, forms)

			// Errors about entries that hold the secrets.
			der, _ := mem.Get("key")
			mem.Put("bad-key", der[:len(der)-3])
			_, errKey := LoadKey(mem, "bad-key")
			_, errParse := ParseKey(der[:len(der)-3])
			data, _ := mem.Get("tok")
			mem.Put("bad-tok", data[:len(data)-2])
			_, errTok := LoadToken(mem, "bad-tok", "jkt")
			_, errBinding := LoadToken(mem, "tok", "other")
			errLarge := SaveToken(kc, "tok", &oauth2.Token{AccessToken: strings.Repeat(tok.AccessToken, 4<<10), RefreshToken: tok.RefreshToken}, "jkt")
			kc.backend.(*fakeBackend).m["svc\x00bad"] = "!" + base64.StdEncoding.EncodeToString(der)
			_, errBase64 := kc.Get("bad")
			for name, err := range map[string]error{
				"LoadKey": errKey, "ParseKey": errParse, "LoadToken": errTok,
				"LoadToken binding": errBinding, "SaveToken": errLarge, "Keychain.Get": errBase64,
			} {
				if err == nil {
					t.Fatalf("%s = nil; want an error", name)
				}
				checkEncoders(t, fmt.Sprintf("%s error %T", name, err), err, forms)
			}
		})
	}
}
