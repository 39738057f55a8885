package keystore

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"testing"
	"time"
)

// FuzzParseKey: stored key bytes give a usable key or an error whose
// text a log can take, never a panic.
func FuzzParseKey(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ec)
	f.Add(der)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	der, _ = x509.MarshalPKCS8PrivateKey(ed)
	f.Add(der)
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		var s MemoryStore
		s.Put("key", data)
		key, err := LoadKey(&s, "key")
		if err != nil {
			if _, ok := err.(*CorruptError); !ok {
				t.Fatalf("LoadKey = %v; want a *CorruptError", err)
			}
			checkErrorText(t, "LoadKey", err)
			return
		}
		if key == nil || key.Public() == nil {
			t.Fatal("LoadKey returned no key and no error")
		}
		if _, err := MarshalKey(key); err != nil {
			t.Fatalf("a parsed key does not marshal: %v", err)
		}
	})
}

// FuzzLoadToken: stored token JSON gives a token bound to the jkt asked for,
// or an error whose text a log can take, never a panic.
func FuzzLoadToken(f *testing.F) {
	good, _ := json.Marshal(storedToken{JKT: "j", AccessToken: "a", TokenType: "DPoP", RefreshToken: "r", Expiry: time.Unix(1e9, 0)})
	f.Add(good, "j")
	f.Add([]byte(`{"jkt":"j","access_token":"a","expiry":"bogus"}`), "j")
	f.Add([]byte(`null`), "")
	f.Add([]byte(`{"jkt":"\u001b[2J\u202e","access_token":"a"}`), "j")
	f.Fuzz(func(t *testing.T, data []byte, jkt string) {
		var s MemoryStore
		s.Put("tok", data)
		tok, err := LoadToken(&s, "tok", jkt)
		if err != nil {
			if tok != nil {
				t.Fatal("LoadToken returned a token with an error")
			}
			checkErrorText(t, "LoadToken", err)
			return
		}
		st, perr := parseToken(data)
		if perr != nil || st.JKT != jkt || tok.AccessToken == "" {
			t.Fatalf("LoadToken accepted %q for jkt %q", data, jkt)
		}
	})
}
