package dpop

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestDecide checks each decision of the retry policy on its own, without a
// server: the reason, the nonce and the clock offset of the next attempt.
func TestDecide(t *testing.T) {
	fresh := state{nonce: "n1", nonceBound: 1, replayable: true, token: true, refreshable: true}
	tests := []struct {
		name string
		a    answer
		s    func(s state) state
		want decision
	}{
		{"nonce challenge", answer{status: 401, code: CodeUseNonce, nonce: "n2"}, nil,
			decision{reason: RetryNonce, nonce: "n2"}},
		{"nonce challenge from the AS", answer{status: 400, code: CodeUseNonce, nonce: "n2"}, nil,
			decision{reason: RetryNonce, nonce: "n2"}},
		{"nonce challenge without a nonce", answer{status: 401, code: CodeUseNonce}, nil,
			decision{nonce: "n1"}},
		{"the nonce just sent", answer{status: 401, code: CodeUseNonce, nonce: "n1"}, nil,
			decision{nonce: "n1"}},
		{"a nonce refused before", answer{status: 401, code: CodeUseNonce, nonce: "n0"},
			func(s state) state { s.refused[0], s.nonceRetries = "n0", 1; s.nonceBound = 5; return s },
			decision{nonce: "n1"}},
		{"nonce retries spent", answer{status: 401, code: CodeUseNonce, nonce: "n3"},
			func(s state) state { s.refused[0], s.nonceRetries = "n0", 1; return s },
			decision{nonce: "n1"}},
		{"no nonce retries allowed", answer{status: 401, code: CodeUseNonce, nonce: "n2"},
			func(s state) state { s.nonceBound = 0; return s },
			decision{nonce: "n1"}},
		{"body not replayable", answer{status: 401, code: CodeUseNonce, nonce: "n2"},
			func(s state) state { s.replayable = false; return s },
			decision{nonce: "n1"}},
		{"clock behind", answer{status: 401, code: CodeInvalidProof, skew: 90 * time.Second, dated: true}, nil,
			decision{reason: RetryClock, nonce: "n1", offset: 90 * time.Second, learn: true}},
		{"clock offset rounded and added", answer{status: 400, code: CodeInvalidProof, skew: -10400 * time.Millisecond, dated: true, nonce: "n2"},
			func(s state) state { s.offset = 30 * time.Second; return s },
			decision{reason: RetryClock, nonce: "n2", offset: 20 * time.Second, learn: true}},
		{"clock within tolerance", answer{status: 401, code: CodeInvalidProof, skew: 4 * time.Second, dated: true}, nil,
			decision{nonce: "n1"}},
		{"clock beyond the bound", answer{status: 401, code: CodeInvalidProof, skew: 25 * time.Hour, dated: true}, nil,
			decision{nonce: "n1"}},
		{"no Date", answer{status: 401, code: CodeInvalidProof}, nil,
			decision{nonce: "n1"}},
		{"offset the server no longer shows", answer{status: 401, code: CodeInvalidProof, dated: true},
			func(s state) state { s.offsetDropped = true; return s },
			decision{reason: RetryClock, nonce: "n1"}},
		{"clock retry made", answer{status: 401, code: CodeInvalidProof, skew: time.Minute, dated: true},
			func(s state) state { s.clockRetry = true; return s },
			decision{nonce: "n1"}},
		{"refused token", answer{status: 401, code: CodeInvalidToken, nonce: "n2"}, nil,
			decision{reason: RetryInvalidToken, nonce: "n2"}},
		{"refused token in a 400", answer{status: 400, code: CodeInvalidToken}, nil,
			decision{nonce: "n1"}},
		{"refused token, none sent", answer{status: 401, code: CodeInvalidToken},
			func(s state) state { s.token = false; return s },
			decision{nonce: "n1"}},
		{"refused token, source cannot refresh", answer{status: 401, code: CodeInvalidToken},
			func(s state) state { s.refreshable = false; return s },
			decision{nonce: "n1"}},
		{"refused token twice", answer{status: 401, code: CodeInvalidToken},
			func(s state) state { s.tokRetry = true; return s },
			decision{nonce: "n1"}},
		{"another error", answer{status: 400, code: "invalid_grant", nonce: "n2"}, nil,
			decision{nonce: "n1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fresh
			if tt.s != nil {
				s = tt.s(s)
			}
			if got := decide(tt.a, s); got != tt.want {
				t.Errorf("decide(%+v) = %+v; want %+v", tt.a, got, tt.want)
			}
		})
	}
}

// TestApplyKeepsResponseWhenTokenStays checks that a refused token whose
// Source cannot replace it after all leaves the call as it was.
func TestApplyKeepsResponseWhenTokenStays(t *testing.T) {
	tr := &Transport{Source: stuckSource{}}
	c := &call{nonce: "n1", tok: &presentedToken{token: "t"}}
	if tr.apply(c, decision{reason: RetryInvalidToken, nonce: "n2"}) {
		t.Fatal("apply = true for a token the Source keeps; want false")
	}
	if c.nonce != "n1" || c.tokRetry {
		t.Errorf("call changed: nonce %q, tokRetry %v; want n1, false", c.nonce, c.tokRetry)
	}
}

// stuckSource is a TokenSource that cannot replace its token.
type stuckSource struct{}

func (stuckSource) Token() (*oauth2.Token, error) { return &oauth2.Token{AccessToken: "t"}, nil }
func (stuckSource) TokenContext(context.Context) (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: "t"}, nil
}
func (stuckSource) Invalidate(*oauth2.Token) bool { return false }

// TestRetryCutsOldBody checks that a retry's body is not read by the
// attempt it replaces: a Base may go on reading an attempt's body after its
// response (HTTP/2 does), and GetBody may return the same reader rewound
// (connect-go's does).
func TestRetryCutsOldBody(t *testing.T) {
	const payload = "the request body"
	shared := strings.NewReader(payload)
	rewound := make(chan struct{})
	stray := make(chan int, 1) // what the first attempt's late read got
	var calls int
	base := rtFunc(func(r *http.Request) (*http.Response, error) {
		calls++
		if calls == 1 {
			go func() { // the first attempt's writer, still reading after the 401
				<-rewound
				n, _ := io.Copy(io.Discard, r.Body)
				stray <- int(n)
			}()
			h := http.Header{}
			h.Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
			h.Set("DPoP-Nonce", "n1")
			return &http.Response{StatusCode: 401, Header: h, Body: http.NoBody, Request: r}, nil
		}
		if n := <-stray; n != 0 {
			t.Errorf("the replaced attempt read %d bytes of the retry's body; want 0", n)
		}
		b, _ := io.ReadAll(r.Body)
		if string(b) != payload {
			t.Errorf("retry body = %q; want %q", b, payload)
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	req, _ := http.NewRequest("POST", "https://rs.example/api", io.NopCloser(shared))
	req.GetBody = func() (io.ReadCloser, error) {
		shared.Seek(0, io.SeekStart)
		close(rewound)
		return io.NopCloser(shared), nil
	}
	resp, err := (&Transport{Base: base, Signer: newTestSigner(t, algEdDSA)}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if calls != 2 {
		t.Errorf("%d attempts; want 2", calls)
	}
}

// rtFunc is an http.RoundTripper made of a function.
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
