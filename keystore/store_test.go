package keystore

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	good := []string{"a", "dpop-key", "token.v1", "A_b-9.x", strings.Repeat("n", maxNameLen)}
	for _, name := range good {
		if err := validateName(name); err != nil {
			t.Errorf("validateName(%q) = %v; want nil", name, err)
		}
	}
	bad := []string{"", ".", "..", ".hidden", ".tmp-1", "a/b", `a\b`, "../x", "a b", "é", "a\x00", strings.Repeat("n", maxNameLen+1)}
	for _, name := range bad {
		if err := validateName(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("validateName(%q) = %v; want ErrInvalidName", name, err)
		}
	}
}

// TestStores runs every Store through the contract of the interface.
func TestStores(t *testing.T) {
	for _, tc := range testStores() {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.new(t)

			if _, err := s.Get("missing"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(missing) = %v; want ErrNotFound", err)
			}
			if err := s.Delete("missing"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Delete(missing) = %v; want ErrNotFound", err)
			}

			orig := []byte("original\x00\xff binary")
			if err := s.Create("entry", orig); err != nil {
				t.Fatalf("Create = %v", err)
			}
			got, err := s.Get("entry")
			if err != nil || !bytes.Equal(got, orig) {
				t.Fatalf("Get = %q, %v; want %q, nil", got, err, orig)
			}

			// Create never overwrites; the original survives.
			if err := s.Create("entry", []byte("intruder")); !errors.Is(err, ErrExist) {
				t.Errorf("Create(existing) = %v; want ErrExist", err)
			}
			if got, err := s.Get("entry"); err != nil || !bytes.Equal(got, orig) {
				t.Errorf("after refused Create, Get = %q, %v; want %q, nil", got, err, orig)
			}

			// Put overwrites, and creates.
			if err := s.Put("entry", []byte("second")); err != nil {
				t.Fatalf("Put = %v", err)
			}
			if got, _ := s.Get("entry"); string(got) != "second" {
				t.Errorf("after Put, Get = %q; want %q", got, "second")
			}
			if err := s.Put("other", []byte("x")); err != nil {
				t.Fatalf("Put(new) = %v", err)
			}

			if err := s.Delete("entry"); err != nil {
				t.Fatalf("Delete = %v", err)
			}
			if _, err := s.Get("entry"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get after Delete = %v; want ErrNotFound", err)
			}
			if err := s.Create("entry", []byte("again")); err != nil {
				t.Errorf("Create after Delete = %v; want nil", err)
			}

			for _, name := range []string{"", "../x", "a/b", ".."} {
				if _, err := s.Get(name); !errors.Is(err, ErrInvalidName) {
					t.Errorf("Get(%q) = %v; want ErrInvalidName", name, err)
				}
				if err := s.Create(name, nil); !errors.Is(err, ErrInvalidName) {
					t.Errorf("Create(%q) = %v; want ErrInvalidName", name, err)
				}
				if err := s.Put(name, nil); !errors.Is(err, ErrInvalidName) {
					t.Errorf("Put(%q) = %v; want ErrInvalidName", name, err)
				}
				if err := s.Delete(name); !errors.Is(err, ErrInvalidName) {
					t.Errorf("Delete(%q) = %v; want ErrInvalidName", name, err)
				}
			}
		})
	}
}

func TestMemoryStoreCopies(t *testing.T) {
	var s MemoryStore
	data := []byte("abc")
	if err := s.Create("e", data); err != nil {
		t.Fatal(err)
	}
	data[0] = 'X'
	got, _ := s.Get("e")
	got[1] = 'Y'
	if again, _ := s.Get("e"); string(again) != "abc" {
		t.Errorf("Get = %q; want %q (the store must copy)", again, "abc")
	}
}

// TestValidateNameHostile: a name a caller passes, however long or
// strange, is quoted and cut in the error.
func TestValidateNameHostile(t *testing.T) {
	checkErrorText(t, "validateName(a long name)", validateName(hostile))
	checkErrorText(t, "validateName(a short bad name)", validateName(hostile[:maxNameLen]))
	checkErrorText(t, "LoadKey(nil, a long name)", func() error { _, err := LoadKey(nil, hostile); return err }())
}

// TestNilStores: a nil Store, or a nil pointer to a store of this package,
// gives every call an error naming it, never a panic, and prints as nil.
func TestNilStores(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Store
		want string
	}{
		{"nil", nil, "the Store is nil"},
		{"*MemoryStore", (*MemoryStore)(nil), "the MemoryStore is nil"},
		{"*FileStore", (*FileStore)(nil), "the FileStore is nil"},
		{"*Keychain", (*Keychain)(nil), "the Keychain is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := map[string]func() error{
				"LoadKey":      func() error { _, err := LoadKey(tc.s, "k"); return err },
				"LoadOrCreate": func() error { _, err := LoadOrCreate(tc.s, "k", nil); return err },
				"SaveToken":    func() error { return SaveToken(tc.s, "t", testToken("a"), "j") },
				"LoadToken":    func() error { _, err := LoadToken(tc.s, "t", "j"); return err },
			}
			if tc.s != nil {
				calls["Get"] = func() error { _, err := tc.s.Get("k"); return err }
				calls["Create"] = func() error { return tc.s.Create("k", nil) }
				calls["Put"] = func() error { return tc.s.Put("k", nil) }
				calls["Delete"] = func() error { return tc.s.Delete("k") }
			}
			for name, call := range calls {
				noPanic(t, name, func() {
					if err := call(); err == nil || !strings.Contains(err.Error(), tc.want) {
						t.Errorf("%s on a nil %s = %v; want an error saying %q", name, tc.name, err, tc.want)
					}
				})
			}
			noPanic(t, "printing it", func() {
				for enc, out := range encodings(tc.s) {
					switch enc {
					case "fmt %x", "fmt %X", "fmt %d":
						continue // a nil pointer is 0
					}
					if !strings.Contains(out, "nil") && !strings.Contains(out, "null") {
						t.Errorf("%s of a nil %s = %q; want it to say nil", enc, tc.name, out)
					}
				}
			})
		})
	}
}
