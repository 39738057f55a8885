package keystore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

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
	ts := SavingTokenSource(s, "tok", "jkt", src)

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
	ts := SavingTokenSource(s, "tok", "jkt", src)
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
	ts := SavingTokenSource(s, "tok", "jkt", r)
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
	ts := SavingTokenSource(s, "tok", "jkt", oauth2.ReuseTokenSource(nil, new(refresher)))
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
	ts := SavingTokenSource(s, "tok", "jkt", nilSource{})
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
	ts := SavingTokenSource(s, "tok", "jkt", src)
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

// ctxKey marks the context a test passes, to see it arrive at the source.
type ctxKey struct{}

// invalidatingSource has both methods of the dpop package's token-source
// protocol: TokenContext returns the current token until Invalidate
// declares it dead, then a new one; Invalidate reports canRefresh.
type invalidatingSource struct {
	canRefresh bool

	mu          sync.Mutex // guards the fields below
	n           int        // tokens made
	dead        bool       // the current token was invalidated
	invalidated []string   // access tokens passed to Invalidate
	sawCtx      []any      // ctx.Value(ctxKey{}) of each TokenContext call
}

func (s *invalidatingSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sawCtx = append(s.sawCtx, ctx.Value(ctxKey{}))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.n == 0 || s.dead {
		s.n++
		s.dead = false
	}
	return testToken(fmt.Sprintf("at-%d", s.n)), nil
}

func (s *invalidatingSource) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

func (s *invalidatingSource) Invalidate(tok *oauth2.Token) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidated = append(s.invalidated, tok.AccessToken)
	if !s.canRefresh {
		return false
	}
	s.dead = true
	return true
}

// contextSource is the method set the dpop package's Transport looks for.
type contextSource interface {
	TokenContext(ctx context.Context) (*oauth2.Token, error)
	Invalidate(tok *oauth2.Token) bool
}

// TestTokenSourceContextAndInvalidate: TokenContext reaches the inner
// source's TokenContext with the caller's ctx, Invalidate reaches its
// Invalidate, and the new token that follows is saved.
func TestTokenSourceContextAndInvalidate(t *testing.T) {
	for _, canRefresh := range []bool{true, false} {
		t.Run(fmt.Sprintf("canRefresh=%v", canRefresh), func(t *testing.T) {
			s := new(countingStore)
			inner := &invalidatingSource{canRefresh: canRefresh}
			ts, ok := SavingTokenSource(s, "tok", "jkt", inner).(contextSource)
			if !ok {
				t.Fatal("SavingTokenSource's source has no TokenContext and Invalidate methods")
			}
			ctx := context.WithValue(context.Background(), ctxKey{}, "caller")
			tok, err := ts.TokenContext(ctx)
			if err != nil || tok.AccessToken != "at-1" {
				t.Fatalf("TokenContext = %v, %v; want at-1", tok, err)
			}
			if got := inner.sawCtx; len(got) != 1 || got[0] != "caller" {
				t.Errorf("inner TokenContext saw contexts %v; want the caller's", got)
			}
			if got := ts.Invalidate(tok); got != canRefresh {
				t.Errorf("Invalidate = %v; want %v", got, canRefresh)
			}
			if got := strings.Join(inner.invalidated, ","); got != "at-1" {
				t.Errorf("inner Invalidate got %q; want at-1", got)
			}
			want := "at-1"
			if canRefresh {
				want = "at-2"
			}
			tok, err = ts.TokenContext(ctx)
			if err != nil || tok.AccessToken != want {
				t.Fatalf("TokenContext after Invalidate = %v, %v; want %s", tok, err, want)
			}
			stored, err := LoadToken(s, "tok", "jkt")
			if err != nil || !sameToken(stored, tok) {
				t.Errorf("stored %v, %v; want %v", stored, err, tok)
			}
			wantPuts := 1
			if canRefresh {
				wantPuts = 2
			}
			if s.puts != wantPuts {
				t.Errorf("Puts = %d; want %d (one per new token)", s.puts, wantPuts)
			}
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			if tok, err := ts.TokenContext(cancelled); tok != nil || !errors.Is(err, context.Canceled) {
				t.Errorf("TokenContext(cancelled) = %v, %v; want context.Canceled", tok, err)
			}
		})
	}
}

// TestTokenSourceInvalidateUnsupported: a source without Invalidate cannot
// get a new token on demand.
func TestTokenSourceInvalidateUnsupported(t *testing.T) {
	ts := SavingTokenSource(new(MemoryStore), "tok", "jkt", &seqSource{toks: []*oauth2.Token{testToken("at-1")}}).(contextSource)
	if ts.Invalidate(testToken("at-1")) {
		t.Error("Invalidate = true for a source without Invalidate; want false")
	}
}

// blockingSource is a plain oauth2.TokenSource whose Token waits for
// release.
type blockingSource struct {
	started chan struct{} // closed when Token is first called
	release chan struct{}
	once    sync.Once
}

func (s *blockingSource) Token() (*oauth2.Token, error) {
	s.once.Do(func() { close(s.started) })
	<-s.release
	return testToken("at-1"), nil
}

// TestTokenSourceContextBoundsPlainSource: with a source that has only
// Token, TokenContext returns when ctx ends (waiting for the source, and for
// the lock it holds), and the token the source brings later is saved.
func TestTokenSourceContextBoundsPlainSource(t *testing.T) {
	s := new(countingStore)
	inner := &blockingSource{started: make(chan struct{}), release: make(chan struct{})}
	ts := SavingTokenSource(s, "tok", "jkt", inner).(contextSource)

	// First the call that waits for the source; then one that waits for
	// the lock the abandoned call still holds (or, if cancel comes first,
	// returns at once: either way it must not wait for the source).
	for _, what := range []string{"the source", "the lock"} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := ts.TokenContext(ctx)
			done <- err
		}()
		<-inner.started
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "keystore: ") {
			t.Errorf("TokenContext waiting for %s, cancelled = %v; want a keystore: error matching context.Canceled", what, err)
		}
	}

	close(inner.release)
	tok, err := ts.TokenContext(context.Background())
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("TokenContext = %v, %v; want at-1", tok, err)
	}
	stored, err := LoadToken(s, "tok", "jkt")
	if err != nil || !sameToken(stored, tok) {
		t.Errorf("stored %v, %v; want %v", stored, err, tok)
	}
	if s.puts != 1 {
		t.Errorf("Puts = %d; want 1 (the token the abandoned call brought)", s.puts)
	}
}

// TestNilStoreParts: a nil Store or source is an error naming it, not a
// panic.
func TestNilStoreParts(t *testing.T) {
	if _, err := LoadOrCreate(nil, "key", nil); err == nil || !strings.Contains(err.Error(), "Store is nil") {
		t.Errorf("LoadOrCreate(nil) = %v; want an error naming the Store", err)
	}
	if _, err := SavingTokenSource(nil, "tok", "jkt", nil).Token(); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Errorf("SavingTokenSource(nil, …).Token() = %v; want an error", err)
	}
}
