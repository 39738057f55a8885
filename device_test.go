package dpop_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/dpoptest"
	"golang.org/x/oauth2"
)

// handlerTransport serves requests with an http.Handler in memory, so that
// a synctest bubble's fake clock runs the polling loop.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	return w.Result(), nil
}

// devicePoll is one answer of the scripted token endpoint.
type devicePoll struct {
	status     int
	body       string
	retryAfter string
}

// TestDeviceAccessTokenPacing checks the waits between polls against RFC
// 8628 §3.5 on a fake clock: the interval, +5 s for this and every later
// poll after slow_down, at least a Retry-After, and a new proof each time.
func TestDeviceAccessTokenPacing(t *testing.T) {
	script := []devicePoll{
		{400, `{"error":"authorization_pending"}`, ""},
		{400, `{"error":"slow_down"}`, ""},
		{503, `busy`, "30"},
		{400, `{"error":"authorization_pending"}`, ""},
		{200, `{"access_token":"at","token_type":"DPoP","expires_in":60,"refresh_token":"rt"}`, ""},
	}
	// Waits before each poll: interval 2 s; pending; slow_down → 7 s; a
	// 503 with Retry-After 30; pending → back to 7 s.
	wantWaits := []time.Duration{2 * time.Second, 2 * time.Second, 7 * time.Second, 30 * time.Second, 7 * time.Second}
	wantCodes := []string{"", "authorization_pending", "slow_down", "", "authorization_pending"}

	synctest.Test(t, func(t *testing.T) {
		var (
			v     dpoptest.Verifier
			mu    sync.Mutex // guards polls
			polls []time.Time
		)
		start := time.Now()
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := v.Verify(r.Header.Get("DPoP"), r.Method, "http://as.test/token", ""); err != nil {
				t.Errorf("poll %d: proof: %v", len(polls), err)
			}
			r.ParseForm()
			if r.PostForm.Get("device_code") != "dc" || r.PostForm.Get("client_id") != "cli" || r.PostForm.Get("resource") != "https://rs.test" {
				t.Errorf("poll form %v; want device_code dc, client_id cli, resource from the option", r.PostForm)
			}
			mu.Lock()
			n := len(polls)
			polls = append(polls, time.Now())
			mu.Unlock()
			p := script[min(n, len(script)-1)]
			if p.retryAfter != "" {
				w.Header().Set("Retry-After", p.retryAfter)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(p.status)
			io.WriteString(w, p.body)
		})
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: handlerTransport{h}})
		var statuses []dpop.DeviceStatus
		cfg := &dpop.Config{
			OAuth2:         &oauth2.Config{ClientID: "cli", Endpoint: oauth2.Endpoint{TokenURL: "http://as.test/token"}},
			Signer:         newSigner(t),
			DeviceProgress: func(s dpop.DeviceStatus) { statuses = append(statuses, s) },
		}
		da := &oauth2.DeviceAuthResponse{DeviceCode: "dc", UserCode: "ABCD-EFGH", Interval: 2, Expiry: start.Add(10 * time.Minute)}
		tok, err := cfg.DeviceAccessToken(ctx, da, oauth2.SetAuthURLParam("resource", "https://rs.test"))
		if err != nil {
			t.Fatalf("DeviceAccessToken = %v", err)
		}
		if tok.AccessToken != "at" || tok.RefreshToken != "rt" || !tok.Expiry.Equal(time.Now().Add(time.Minute)) {
			t.Errorf("token %+v; want at, rt, expiring in 60 s", tok)
		}
		if len(polls) != len(wantWaits) {
			t.Fatalf("%d polls; want %d", len(polls), len(wantWaits))
		}
		last := start
		for i, p := range polls {
			if got := p.Sub(last); got != wantWaits[i] {
				t.Errorf("wait before poll %d = %v; want %v", i+1, got, wantWaits[i])
			}
			last = p
		}
		if len(statuses) != len(wantCodes) {
			t.Fatalf("%d progress reports; want %d", len(statuses), len(wantCodes))
		}
		for i, s := range statuses {
			if s.Polls != i || s.ErrorCode != wantCodes[i] || s.Wait != wantWaits[i] || s.Auth != da {
				t.Errorf("report %d = {Polls %d, ErrorCode %q, Wait %v}; want {%d, %q, %v} and the device authorization", i, s.Polls, s.ErrorCode, s.Wait, i, wantCodes[i], wantWaits[i])
			}
		}
	})
}

// TestDeviceAccessTokenEnds checks that polling stops at the device code's
// expiry, at ctx's end, and at a final error answer.
func TestDeviceAccessTokenEnds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answer   string
		ctxAfter time.Duration // cancel ctx after this long; 0: never
		wantErr  func(error) bool
	}{
		{"expiry", `{"error":"authorization_pending"}`, 0,
			func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{"ctx", `{"error":"authorization_pending"}`, 12 * time.Second,
			func(err error) bool { return errors.Is(err, context.Canceled) }},
		{"access_denied", `{"error":"access_denied","error_description":"no"}`, 0,
			func(err error) bool {
				re, ok := errors.AsType[*oauth2.RetrieveError](err)
				return ok && re.ErrorCode == "access_denied"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.WriteHeader(http.StatusBadRequest)
					io.WriteString(w, tc.answer)
				})
				ctx, cancel := context.WithCancel(context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: handlerTransport{h}}))
				defer cancel()
				if tc.ctxAfter > 0 {
					time.AfterFunc(tc.ctxAfter, cancel)
				}
				cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "cli", Endpoint: oauth2.Endpoint{TokenURL: "http://as.test/token"}}, Signer: newSigner(t)}
				da := &oauth2.DeviceAuthResponse{DeviceCode: "dc", Interval: 5, Expiry: time.Now().Add(time.Minute)}
				_, err := cfg.DeviceAccessToken(ctx, da)
				if !tc.wantErr(err) || !strings.HasPrefix(err.Error(), "dpop: ") {
					t.Errorf("DeviceAccessToken = %v", err)
				}
			})
		})
	}
}

// TestDeviceProgressDpoptest runs the grant against dpoptest, approving
// the device from the progress callback as a user would after reading the
// code.
func TestDeviceProgressDpoptest(t *testing.T) {
	srv := newServer(t, &dpoptest.Config{RequireNonce: true, DeviceInterval: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := publicConfig(srv, newSigner(t))
	var reports []dpop.DeviceStatus
	cfg.DeviceProgress = func(s dpop.DeviceStatus) {
		reports = append(reports, s)
		if s.Polls == 1 {
			if err := srv.ApproveDevice(s.Auth.UserCode); err != nil {
				t.Error(err)
			}
		}
	}
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "DPoP" || tok.RefreshToken == "" {
		t.Errorf("token type %q, refresh token set %v; want DPoP with a refresh token", tok.TokenType, tok.RefreshToken != "")
	}
	if len(reports) != 2 || reports[0].Polls != 0 || reports[1].ErrorCode != "authorization_pending" ||
		!strings.Contains(reports[0].Auth.VerificationURIComplete, "user_code=") {
		t.Errorf("reports %+v; want one before the first poll (with a complete URI), one authorization_pending", reports)
	}
	n := 0
	for _, r := range srv.Requests() {
		if r.Kind == "token" && r.Proof != nil {
			n++
		}
	}
	if n < 2 {
		t.Errorf("%d token requests with a valid proof; want one per poll (2)", n)
	}
}
