package dpop_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"golang.org/x/oauth2"
)

// revocationServer is a revocation endpoint (RFC 7009) on 127.0.0.1 that
// demands a DPoP nonce (verifying each proof with go-jose through
// dpoptest.Verifier) and answers each token as its answers map says
// (default 200).
type revocationServer struct {
	*httptest.Server
	mu      sync.Mutex // guards seen
	seen    []revocationRequest
	answers map[string]func(w http.ResponseWriter)
}

type revocationRequest struct {
	form         url.Values
	user, secret string // Basic credentials, if any
	nonce        string // the proof's nonce
	proofErr     error
}

func newRevocationServer(t *testing.T, answers map[string]func(w http.ResponseWriter)) *revocationServer {
	t.Helper()
	rs := &revocationServer{answers: answers}
	var v dpoptest.Verifier
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rr revocationRequest
		if err := r.ParseForm(); err != nil {
			t.Errorf("revocation request form: %v", err)
		}
		rr.form = r.PostForm
		rr.user, rr.secret, _ = r.BasicAuth()
		p, err := v.Verify(r.Header.Get("DPoP"), r.Method, rs.URL+r.URL.Path, "")
		if err == nil {
			rr.nonce = p.Nonce
		}
		rr.proofErr = err
		rs.mu.Lock()
		rs.seen = append(rs.seen, rr)
		rs.mu.Unlock()
		switch {
		case err != nil:
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_dpop_proof"}`)
		case p.Nonce != "n-1":
			w.Header().Set("DPoP-Nonce", "n-1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"use_dpop_nonce"}`)
		case rs.answers[r.PostForm.Get("token")] != nil:
			rs.answers[r.PostForm.Get("token")](w)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(rs.Close)
	return rs
}

func (rs *revocationServer) requests() []revocationRequest {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]revocationRequest(nil), rs.seen...)
}

func revocationConfig(t *testing.T, u, secret string) *dpop.Config {
	return &dpop.Config{
		OAuth2:        &oauth2.Config{ClientID: "cli", ClientSecret: secret},
		Signer:        newSigner(t),
		RevocationURL: u,
	}
}

func TestRevoke(t *testing.T) {
	long := `line 1\nline 2 \u001b[31m` + strings.Repeat("é", 300) // JSON escapes: a newline, ESC
	rs := newRevocationServer(t, map[string]func(w http.ResponseWriter){
		"jwt-access-token": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"unsupported_token_type","error_description":"`+long+`"}`)
		},
		"busy-token": func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "<html>busy-token is secret</html>")
		},
	})
	ctx := context.Background()

	t.Run("public client, refresh token", func(t *testing.T) {
		n := len(rs.requests())
		if err := revocationConfig(t, rs.URL+"/revoke", "").Revoke(ctx, "rt-1", "refresh_token"); err != nil {
			t.Fatalf("Revoke = %v; want nil", err)
		}
		seen := rs.requests()[n:]
		if len(seen) != 2 || seen[0].nonce != "" || seen[1].nonce != "n-1" {
			t.Fatalf("requests %+v; want a nonce challenge, then a proof with nonce n-1", seen)
		}
		for i, r := range seen {
			if r.proofErr != nil {
				t.Errorf("request %d: proof: %v", i, r.proofErr)
			}
		}
		want := url.Values{"token": {"rt-1"}, "token_type_hint": {"refresh_token"}, "client_id": {"cli"}}
		if got := seen[1].form.Encode(); got != want.Encode() || seen[1].user != "" {
			t.Errorf("form %s, Basic user %q; want %s and no Basic", got, seen[1].user, want.Encode())
		}
	})
	t.Run("confidential client, no hint", func(t *testing.T) {
		n := len(rs.requests())
		if err := revocationConfig(t, rs.URL+"/revoke", "s3cret").Revoke(ctx, "at-1", ""); err != nil {
			t.Fatalf("Revoke = %v; want nil", err)
		}
		r := rs.requests()[len(rs.requests())-1]
		if len(rs.requests())-n != 2 || r.user != "cli" || r.secret != "s3cret" || r.form.Encode() != "token=at-1" {
			t.Errorf("last request: form %s, Basic %q:%q; want token=at-1 and Basic cli:s3cret", r.form.Encode(), r.user, r.secret)
		}
	})
	t.Run("error answers", func(t *testing.T) {
		for _, tc := range []struct {
			token, wantCode string
			wantStatus      int
		}{
			{"jwt-access-token", "unsupported_token_type", 400},
			{"busy-token", "", 503},
		} {
			err := revocationConfig(t, rs.URL+"/revoke", "").Revoke(ctx, tc.token, "access_token")
			var re *dpop.TokenError
			if !errors.As(err, &re) || re.Op != "revocation" || re.StatusCode != tc.wantStatus || re.ErrorCode != tc.wantCode {
				t.Fatalf("Revoke(%s) = %v; want a *TokenError of revocation %d %q", tc.token, err, tc.wantStatus, tc.wantCode)
			}
			msg := err.Error()
			if strings.Contains(msg, tc.token) || strings.ContainsAny(msg, "\n\x1b") || len(msg) > 1000 || !strings.HasPrefix(msg, "dpop: ") {
				t.Errorf("Revoke(%s) error text %q: want it short, escaped, prefixed, without the token or body", tc.token, msg)
			}
		}
	})
	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			cfg   *dpop.Config
			token string
			want  string
		}{
			{"no URL", revocationConfig(t, "", ""), "t", "RevocationURL is empty"},
			{"no token", revocationConfig(t, rs.URL, ""), "", "token is empty"},
			{"no signer", &dpop.Config{OAuth2: &oauth2.Config{}, RevocationURL: rs.URL}, "t", "Signer is nil"},
			{"bad URL", revocationConfig(t, "http://127.0.0.1:0/revoke", ""), "secret-token", "dpop: revocation: "},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.cfg.Revoke(ctx, tc.token, "")
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret-token") {
					t.Errorf("Revoke = %v; want an error containing %q (and not the token)", err, tc.want)
				}
			})
		}
	})
}

// TestRevokeDpoptest revokes against dpoptest, which demands a nonce: the
// refresh token then fails with invalid_grant, and the revoked access
// token gets a 401 at the resource server.
func TestRevokeDpoptest(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true})
	cfg := publicConfig(srv, newSigner(t))
	cfg.RevocationURL = srv.RevocationURL()
	tok, err := login(t, cfg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct{ token, hint string }{
		{tok.RefreshToken, "refresh_token"},
		{tok.AccessToken, "access_token"},
		{"unknown", ""},
	} {
		if err := cfg.Revoke(ctx, tc.token, tc.hint); err != nil {
			t.Fatalf("Revoke(%s) = %v; want nil", tc.hint, err)
		}
	}
	n := 0
	for _, r := range srv.Requests() {
		if r.Kind == dpoptest.KindRevoke && r.Status == http.StatusOK {
			if r.Proof == nil {
				t.Errorf("revocation request without a valid proof: %+v", r)
			}
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d successful revocation requests; want 3", n)
	}
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	_, err = cfg.TokenSource(ctx, &expired).Token()
	var te *dpop.TokenError
	if !errors.As(err, &te) || te.ErrorCode != "invalid_grant" {
		t.Errorf("refresh after revocation = %v; want invalid_grant", err)
	}
	resp, err := dpop.NewClient(ctx, oauth2.StaticTokenSource(tok), cfg.Signer).Get(srv.URL + "/api/me")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("API with the revoked access token: %d; want 401", resp.StatusCode)
	}
}

// TestRevokeAnswerBody: a 2xx answer is a success whatever its body (RFC
// 7009 §2.2: the client ignores its content), large or slow, and is not
// waited for; an error answer with a large body is still the server's
// error, with its status and Retry-After.
func TestRevokeAnswerBody(t *testing.T) {
	stop := make(chan struct{})
	big := strings.Repeat("x", 2<<20)
	rs := newRevocationServer(t, map[string]func(w http.ResponseWriter){
		"large": func(w http.ResponseWriter) { io.WriteString(w, big) },
		"slow": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "{")
			w.(http.Flusher).Flush()
			<-stop
		},
		"no-content": func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) },
		"busy": func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, big)
		},
	})
	t.Cleanup(func() { close(stop) }) // before the server closes
	revoke := func(token string) error {
		errc := make(chan error, 1)
		go func() { errc <- revocationConfig(t, rs.URL+"/revoke", "").Revoke(context.Background(), token, "") }()
		select {
		case err := <-errc:
			return err
		case <-time.After(maxWait):
			t.Fatalf("Revoke(%s) did not return within %v", token, maxWait)
			return nil
		}
	}
	for _, token := range []string{"large", "slow", "no-content"} {
		if err := revoke(token); err != nil {
			t.Errorf("Revoke(%s) = %v; want nil", token, err)
		}
	}
	err := revoke("busy")
	var te *dpop.TokenError
	var re *oauth2.RetrieveError
	if !errors.As(err, &te) || te.StatusCode != http.StatusServiceUnavailable || !errors.As(err, &re) || re.Response.Header.Get("Retry-After") != "7" {
		t.Errorf("Revoke(busy) = %v; want a *TokenError 503 with Retry-After 7", err)
	}
}

// FuzzRevoke serves arbitrary revocation answers to Revoke: no panic; a
// 2xx is a success whatever its body; anything else is a *TokenError of
// revocation with the answer's status, whose text is prefixed, short,
// printable and without the token.
func FuzzRevoke(f *testing.F) {
	f.Add(200, []byte(nil), "", "")
	f.Add(200, []byte(`{"error":"invalid_request"}`), "application/json", "")
	f.Add(204, []byte("x"), "text/html", "")
	f.Add(400, []byte(`{"error":"unsupported_token_type","error_description":"tok-S3cretRevocationToken \u202e"}`), "application/json", "")
	f.Add(400, []byte(`{"error":"use_dpop_nonce"}`), "application/json", "n-1")
	f.Add(503, bytes.Repeat([]byte("<html>"), 1000), "text/html", "")
	const token = "tok-S3cretRevocationToken"
	s := newSigner(f)
	f.Fuzz(func(t *testing.T, status int, body []byte, contentType, nonce string) {
		status = 100 + (status%900+900)%900
		ctx := withClient(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			r.Body.Close()
			h := http.Header{"Content-Type": {contentType}}
			if nonce != "" {
				h.Set("DPoP-Nonce", nonce)
			}
			return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
		})})
		cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c"}, Signer: s, RevocationURL: "https://as.example/revoke"}
		err := cfg.Revoke(ctx, token, "refresh_token")
		if ok := status >= 200 && status <= 299; ok != (err == nil) {
			t.Fatalf("status %d: Revoke = %v", status, err)
		}
		if err == nil {
			return
		}
		var te *dpop.TokenError
		if !errors.As(err, &te) || te.Op != "revocation" || te.StatusCode != status {
			t.Fatalf("status %d: Revoke = %v; want a *TokenError of revocation with the status", status, err)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "dpop: ") || len(msg) > 2000 || strings.Contains(msg, token) || strings.IndexFunc(msg, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			t.Fatalf("error text %q: want it prefixed, short, printable and without the token", msg)
		}
	})
}
