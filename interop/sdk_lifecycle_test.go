package interop

// Interop tests of the app's lifecycle against oidc-provider: revocation
// (RFC 7009) and the device grant's progress reports (RFC 8628 §3.5). The
// helpers are in sdk_test.go and sdk_flows_test.go.

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dpopkit/dpop"
)

// TestSDKRevoke: revoking the refresh token ends the grant (the next refresh
// is invalid_grant); oidc-provider cannot revoke its JWT access tokens and
// says so with unsupported_token_type; an unknown token is a success (RFC
// 7009 §2.2).
func TestSDKRevoke(t *testing.T) {
	t.Parallel()
	f := newSDKFlow(t)
	if f.md.RevocationEndpoint == "" {
		t.Fatal("metadata has no revocation_endpoint; interop/as.mjs enables revocation")
	}
	f.cfg.RevocationURL = f.md.RevocationEndpoint
	tok := f.loginExchange(t)
	f.rec.take()
	revocation := urlPath(t, f.md.RevocationEndpoint)

	if err := f.cfg.Revoke(f.ctx, tok.RefreshToken, "refresh_token"); err != nil {
		t.Fatalf("Revoke(refresh token) = %v; want nil", err)
	}
	checkExchanges(t, "Revoke(refresh token)", f.rec.take(), "POST "+revocation+" 200")
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	_, err := f.cfg.TokenSource(f.ctx, &expired).Token()
	if re := checkRetrieveError(t, "refresh after revocation", err); re.ErrorCode != "invalid_grant" {
		t.Errorf("ErrorCode = %q; want invalid_grant", re.ErrorCode)
	}

	err = f.cfg.Revoke(f.ctx, tok.AccessToken, "access_token")
	var re *dpop.TokenError
	if !errors.As(err, &re) || re.StatusCode != 400 || re.ErrorCode != "unsupported_token_type" {
		t.Errorf("Revoke(JWT access token) = %v; want a *TokenError 400 unsupported_token_type", err)
	}
	if err := f.cfg.Revoke(f.ctx, "not-a-token-of-this-server", ""); err != nil {
		t.Errorf("Revoke(unknown token) = %v; want nil (RFC 7009 §2.2)", err)
	}
}

// TestSDKDeviceProgress: each step of the device grant is reported to
// DeviceProgress, first the user code and the complete verification URI,
// then each poll's authorization_pending; the user approves after the first
// poll. The test polls every second instead of the 5 s oidc-provider asks
// for, to run faster: oidc-provider 9 answers that with
// authorization_pending, not slow_down (measured: polls a second apart for
// 30 s, every one authorization_pending);
// slow_down is tested against dpoptest and on a fake clock in the root
// package.
func TestSDKDeviceProgress(t *testing.T) {
	t.Parallel()
	f := newSDKFlow(t)
	da, err := f.cfg.DeviceAuth(f.ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	fast := *da
	fast.Interval = 1
	var (
		mu      sync.Mutex // guards reports
		reports []dpop.DeviceStatus
	)
	polled := make(chan struct{})
	f.cfg.DeviceProgress = func(st dpop.DeviceStatus) {
		mu.Lock()
		reports = append(reports, st)
		mu.Unlock()
		if st.Polls == 1 {
			close(polled)
		}
	}
	var r struct {
		tok *oauth2.Token
		err error
	}
	pollCtx, cancel := context.WithCancel(f.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.tok, r.err = f.cfg.DeviceAccessToken(pollCtx, &fast)
	}()
	defer func() { cancel(); <-done }()
	select {
	case <-polled:
	case <-done:
		t.Fatalf("DeviceAccessToken ended before the user approved: %v", r.err)
	}
	headlessApproveDevice(t, da.VerificationURIComplete)
	<-done
	if r.err != nil {
		t.Fatalf("DeviceAccessToken: %v", r.err)
	}
	checkUserToken(t, r.tok, f.s, f.rs)

	mu.Lock()
	defer mu.Unlock()
	first := reports[0]
	if first.Polls != 0 || first.ErrorCode != "" || first.Auth.UserCode != da.UserCode ||
		first.Auth.VerificationURIComplete != da.VerificationURIComplete || first.Wait != time.Second {
		t.Errorf("first report %+v; want one before any poll, with the user code, the complete URI and a 1 s wait", first)
	}
	for i, st := range reports[1:] {
		if st.Polls != i+1 || st.ErrorCode != "authorization_pending" || st.Wait != time.Second {
			t.Errorf("report %d = {Polls %d, ErrorCode %q, Wait %v}; want {%d, authorization_pending, 1s}", i+1, st.Polls, st.ErrorCode, st.Wait, i+1)
		}
	}
	if len(reports) < 2 {
		t.Errorf("%d reports; want at least 2 (before polling, after the first poll)", len(reports))
	}
}
