package dpop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// TokenSource is an [oauth2.TokenSource] that a [Transport] can bound by
// a request's context, and tell that a resource server refused a token,
// so that the next token is a new one. [Config.TokenSource],
// [ClientCredentials.TokenSource] and keystore.SavingTokenSource return
// one. A Transport whose Source is one waits for a token no longer than
// the request's context, and answers a 401 invalid_token by getting a new
// token once.
type TokenSource interface {
	oauth2.TokenSource

	// TokenContext returns a valid token as Token does, waiting for it no
	// longer than ctx allows. A token request that other callers wait
	// for too may go on after ctx ends.
	TokenContext(ctx context.Context) (*oauth2.Token, error)

	// Invalidate tells the source that a server refused tok (RFC 6750
	// §3.1 invalid_token): revoked, say, or expired early. Unless tok was
	// already replaced, the next TokenContext gets a new token. It
	// reports whether the source can get one (a refresh token, or a grant
	// it can repeat); callers that report one token together cause one
	// token request.
	Invalidate(tok *oauth2.Token) bool
}

// maxFetchTime bounds one token request of a reuseSource when its context
// has no deadline of its own, so that a stalled server cannot keep it
// alive for ever.
const maxFetchTime = time.Minute

// maxExpiryDelta is how long before its expiry a token stops being handed
// out (x/oauth2 uses the same 10 seconds); a shorter-lived token stops at
// half its lifetime, so a token that lives a second is not refreshed on
// every call.
const maxExpiryDelta = 10 * time.Second

// reuseSource is the TokenSource of this package: it hands out its token
// while it is valid and not refused, and otherwise makes one token request
// (fetch) that every concurrent caller waits for, each no longer than its
// own context. It does what oauth2.ReuseTokenSource does, and can be told
// that a token was refused before its expiry.
type reuseSource struct {
	ctx        context.Context                                                      // of the token requests (the HTTP client); its end ends them
	fetch      func(ctx context.Context, prev *oauth2.Token) (*oauth2.Token, error) // prev: the last token, or nil
	renewable  func(prev *oauth2.Token) bool                                        // whether fetch can do without a login
	err        error                                                                // set when made: a configuration that must send nothing, not even the stored token
	mu         sync.Mutex                                                           // guards the fields below
	tok        *oauth2.Token                                                        // the last token; nil before the first
	handOutTil time.Time                                                            // tok is handed out until then; zero: no expiry
	refused    bool                                                                 // tok was refused by a server
	flight     *tokenFetch                                                          // the token request under way, if any
}

// tokenFetch is one token request that callers wait for.
type tokenFetch struct {
	done     chan struct{} // closed when tok, err and panicked are set
	tok      *oauth2.Token
	err      error
	panicked any // what the token request panicked with, passed on to every waiter

	retryable bool        // a first try: its waiters may try once more after a transient failure
	retry     *tokenFetch // that one more try, shared by all of them; guarded by reuseSource.mu
}

var _ TokenSource = (*reuseSource)(nil)

func newReuseSource(ctx context.Context, tok *oauth2.Token, fetch func(context.Context, *oauth2.Token) (*oauth2.Token, error), renewable func(*oauth2.Token) bool) *reuseSource {
	s := &reuseSource{ctx: ctx, fetch: fetch, renewable: renewable}
	if tok != nil {
		s.set(tok, timeNow())
	}
	return s
}

func (s *reuseSource) summary() summary {
	s.mu.Lock()
	has := s.tok != nil
	s.mu.Unlock()
	return summary{"dpop.TokenSource", []slog.Attr{slog.Any("Token", part(has))}}
}

// Format prints whether the source holds a token, never the token,
// whatever the verb.
func (s *reuseSource) Format(f fmt.State, verb rune) { s.summary().format(f) }

// LogValue is the summary Format prints, for log/slog.
func (s *reuseSource) LogValue() slog.Value { return s.summary().logValue() }

// MarshalJSON is the summary Format prints, as a JSON object.
func (s *reuseSource) MarshalJSON() ([]byte, error) { return s.summary().marshalJSON() }

// Token returns the token, waiting for a token request as long as it takes
// (bounded by the source's context and maxFetchTime).
func (s *reuseSource) Token() (*oauth2.Token, error) { return s.TokenContext(context.Background()) }

// TokenContext implements [TokenSource]. A token request that failed
// transiently (transientFetchError) is tried once more, one request for
// all of its waiters, as x/oauth2's reuse source lets the next caller try
// again: one failed refresh does not fail every request waiting for it.
func (s *reuseSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if ctx == nil {
		return nil, nilContextError("TokenSource.TokenContext")
	}
	if s.err != nil {
		return nil, s.err
	}
	s.mu.Lock()
	if tok := s.valid(); tok != nil {
		s.mu.Unlock()
		return tok, nil
	}
	f := s.flight
	if f == nil {
		f = s.start(true)
	}
	s.mu.Unlock()
	tok, err := f.wait(ctx)
	if err == nil || !f.retryable || !transientFetchError(err) || ctx.Err() != nil {
		return tok, err
	}
	s.mu.Lock()
	if f.retry == nil {
		if tok := s.valid(); tok != nil { // another caller's request got one since
			s.mu.Unlock()
			return tok, nil
		}
		f.retry = s.flight // a request under way is as good as one more
		if f.retry == nil {
			f.retry = s.start(false)
		}
	}
	r := f.retry
	s.mu.Unlock()
	return r.wait(ctx)
}

// valid returns the token to hand out, or nil when a token request is
// needed: none yet, refused, expired, or a stored token that has only a
// refresh token (x/oauth2 refreshes that too). s.mu is held.
func (s *reuseSource) valid() *oauth2.Token {
	if s.tok == nil || s.tok.AccessToken == "" || s.refused || !s.handOutTil.IsZero() && !timeNow().Before(s.handOutTil) {
		return nil
	}
	return s.tok
}

// start starts a token request, the source's flight. s.mu is held.
func (s *reuseSource) start(retryable bool) *tokenFetch {
	f := &tokenFetch{done: make(chan struct{}), retryable: retryable}
	s.flight = f
	go s.run(f, s.tok)
	return f
}

// wait returns f's token once it has one, no later than ctx ends.
func (f *tokenFetch) wait(ctx context.Context) (*oauth2.Token, error) {
	select {
	case <-f.done:
		if f.panicked != nil {
			panic(f.panicked) // on the caller's goroutine, as a synchronous source would
		}
		return f.tok, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("dpop: waiting for a token: %w", ctx.Err())
	}
}

// transientFetchError reports whether a token request's err is the token
// endpoint saying that it failed for now: 429 (RFC 6585 §4) or a 5xx (RFC
// 9110 §15.6), not an answer about the grant (RFC 6749 §5.2 errors are 400
// and 401). A request that got no answer is not tried again at once: the
// server may have used a rotated refresh token already, and a second use
// of it can revoke the grant (RFC 9700 §4.14.2).
func transientFetchError(err error) bool {
	var te *TokenError
	return errors.As(err, &te) && (te.StatusCode == http.StatusTooManyRequests || te.StatusCode >= 500)
}

// run makes the token request of f. Whatever happens, a panic included,
// it ends f and clears the flight, so that no caller waits for ever.
func (s *reuseSource) run(f *tokenFetch, prev *oauth2.Token) {
	defer func() {
		f.panicked = recover()
		s.mu.Lock()
		if f.err == nil && f.panicked == nil {
			s.set(f.tok, timeNow())
		}
		s.flight = nil
		s.mu.Unlock()
		close(f.done)
	}()
	ctx := s.ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, maxFetchTime)
		defer cancel()
	}
	f.tok, f.err = s.fetch(ctx, prev)
	if f.err == nil && f.tok == nil {
		f.err = errors.New("dpop: token request returned no token")
	}
}

// set makes tok the token to hand out. s.mu is held, or s is new.
func (s *reuseSource) set(tok *oauth2.Token, now time.Time) {
	s.tok, s.refused, s.handOutTil = tok, false, time.Time{}
	if !tok.Expiry.IsZero() {
		delta := min(maxExpiryDelta, tok.Expiry.Sub(now)/2)
		s.handOutTil = tok.Expiry.Add(-max(delta, 0))
	}
}

// Invalidate implements [TokenSource].
func (s *reuseSource) Invalidate(tok *oauth2.Token) bool {
	if s.err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok != nil && s.tok != nil && s.tok.AccessToken == tok.AccessToken {
		s.refused = true
	}
	return s.renewable(s.tok)
}
