package keystore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
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

// seqSource returns its tokens in turn, one per call, then the last again.
type seqSource struct {
	mu   sync.Mutex
	toks []*oauth2.Token
	err  error
}

func (s *seqSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	tok := s.toks[0]
	if len(s.toks) > 1 {
		s.toks = s.toks[1:]
	}
	return tok, nil
}

// countingStore counts Puts and can be made to fail them.
type countingStore struct {
	MemoryStore
	mu   sync.Mutex
	puts int
	fail error
}

func (s *countingStore) Put(name string, data []byte) error {
	s.mu.Lock()
	s.puts++
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		return fail
	}
	return s.MemoryStore.Put(name, data)
}

func TestTokenSourceSavesRefreshed(t *testing.T) {
	s := new(countingStore)
	src := &seqSource{toks: []*oauth2.Token{testToken("at-1"), testToken("at-1"), testToken("at-2")}}
	ts := TokenSource(s, "tok", "jkt", src)

	for i, want := range []string{"at-1", "at-1", "at-2", "at-2"} {
		tok, err := ts.Token()
		if err != nil || tok.AccessToken != want {
			t.Fatalf("call %d: Token = %v, %v; want %s", i, tok, err, want)
		}
		stored, err := LoadToken(s, "tok", "jkt")
		if err != nil || !sameToken(stored, tok) {
			t.Errorf("call %d: stored %+v, %v; want %+v", i, stored, err, tok)
		}
	}
	if s.puts != 2 {
		t.Errorf("Puts = %d; want 2 (one per new token)", s.puts)
	}

	src.err = errors.New("refresh failed")
	if _, err := ts.Token(); !errors.Is(err, src.err) {
		t.Errorf("Token with failing src = %v; want its error", err)
	}
}

func TestTokenSourceSaveError(t *testing.T) {
	s := &countingStore{fail: errors.New("disk full")}
	src := &seqSource{toks: []*oauth2.Token{testToken("at-1")}}
	ts := TokenSource(s, "tok", "jkt", src)
	tok, err := ts.Token()
	if tok != nil || !errors.Is(err, s.fail) || !strings.HasPrefix(err.Error(), "keystore: ") {
		t.Fatalf("Token with failing store = %v, %v; want nil and the store's error", tok, err)
	}
	// The next call tries to save again.
	s.fail = nil
	tok, err = ts.Token()
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("Token after the store recovered = %v, %v", tok, err)
	}
	if _, err := LoadToken(s, "tok", "jkt"); err != nil {
		t.Errorf("LoadToken = %v; want the token saved on retry", err)
	}
}

// refresher hands out a new token whenever asked, as a token endpoint does.
type refresher struct {
	mu sync.Mutex
	n  int
}

func (r *refresher) Token() (*oauth2.Token, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	tok := testToken(fmt.Sprintf("at-%d", r.n))
	tok.Expiry = time.Now().Add(time.Hour)
	return tok, nil
}

// TestTokenSourceConcurrent: the saved token is the newest one handed out.
func TestTokenSourceConcurrent(t *testing.T) {
	s := new(MemoryStore)
	r := new(refresher)
	ts := TokenSource(s, "tok", "jkt", r)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := ts.Token(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	stored, err := LoadToken(s, "tok", "jkt")
	if want := fmt.Sprintf("at-%d", r.n); err != nil || stored.AccessToken != want {
		t.Errorf("stored %v, %v; want the newest token %s", stored, err, want)
	}
}

// TestTokenSourceReuse wraps an oauth2.ReuseTokenSource, the usual src.
func TestTokenSourceReuse(t *testing.T) {
	s := new(countingStore)
	ts := TokenSource(s, "tok", "jkt", oauth2.ReuseTokenSource(nil, new(refresher)))
	for range 5 {
		if _, err := ts.Token(); err != nil {
			t.Fatal(err)
		}
	}
	if s.puts != 1 {
		t.Errorf("Puts = %d; want 1 (the cached token is saved once)", s.puts)
	}
}

// nilSource returns neither a token nor an error.
type nilSource struct{}

func (nilSource) Token() (*oauth2.Token, error) { return nil, nil }

func TestTokenSourceNilToken(t *testing.T) {
	s := new(countingStore)
	ts := TokenSource(s, "tok", "jkt", nilSource{})
	tok, err := ts.Token()
	if want := "keystore: token source returned no token"; tok != nil || err == nil || err.Error() != want {
		t.Errorf("Token = %v, %v; want nil, %q", tok, err, want)
	}
	if s.puts != 0 {
		t.Errorf("Puts = %d; want 0", s.puts)
	}
}

// TestTokenSourceSavesAnyChange: a refresh that keeps the access token but
// rotates the refresh token (or changes the expiry or type) is saved, or
// the next run would log in with a dead refresh token.
func TestTokenSourceSavesAnyChange(t *testing.T) {
	base := testToken("at-1")
	rotated := *base
	rotated.RefreshToken = "refresh-rotated"
	later := rotated
	later.Expiry = base.Expiry.Add(time.Hour)
	retyped := later
	retyped.TokenType = "dpop"
	s := new(countingStore)
	src := &seqSource{toks: []*oauth2.Token{base, &rotated, &later, &retyped, &retyped}}
	ts := TokenSource(s, "tok", "jkt", src)
	for i, want := range []*oauth2.Token{base, &rotated, &later, &retyped, &retyped} {
		if _, err := ts.Token(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		stored, err := LoadToken(s, "tok", "jkt")
		if err != nil || !sameToken(stored, want) {
			t.Errorf("call %d: stored %+v, %v; want %+v", i, stored, err, want)
		}
	}
	if s.puts != 4 {
		t.Errorf("Puts = %d; want 4 (one per changed token)", s.puts)
	}
}
