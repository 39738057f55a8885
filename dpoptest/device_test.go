package dpoptest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDeviceGrant(t *testing.T) {
	now := time.Now()
	var clock = func() time.Time { return now }
	s := newTestServer(t, &Config{Now: clock, DeviceCodeTTL: time.Minute, MaxSkew: time.Hour})
	k := newClientKey(t, "ES256")
	tu := s.Endpoint().TokenURL
	var da struct {
		DeviceCode string `json:"device_code"`
		UserCode   string `json:"user_code"`
		URI        string `json:"verification_uri"`
		Complete   string `json:"verification_uri_complete"`
		Interval   int    `json:"interval"`
		ExpiresIn  int    `json:"expires_in"`
	}
	start := func() {
		resp, b := send(t, "POST", s.URL+pathDeviceAuth, strings.NewReader("client_id=cli&scope=read"), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		if err := json.Unmarshal(b, &da); err != nil || resp.StatusCode != 200 || da.Interval != 1 || da.ExpiresIn != 60 || da.UserCode == "" {
			t.Fatalf("device authorization: %d %s", resp.StatusCode, b)
		}
	}
	start()
	poll := func() tokenResp {
		return post(t, tu, k, "", form("grant_type", grantDeviceCode, "device_code", da.DeviceCode, "client_id", "cli"))
	}
	wantOAuthError(t, poll(), 400, "authorization_pending")
	wantOAuthError(t, poll(), 400, "slow_down")
	now = now.Add(3 * time.Second)
	wantOAuthError(t, poll(), 400, "slow_down") // interval is now 11s
	now = now.Add(11 * time.Second)
	wantOAuthError(t, poll(), 400, "authorization_pending")
	if err := s.ApproveDevice(strings.ToLower(da.UserCode)); err != nil {
		t.Fatal(err)
	}
	tr := poll()
	if tr.status != 200 || tr.RT == "" || tr.Scope != "read" {
		t.Fatalf("token: %+v", tr)
	}
	wantOAuthError(t, poll(), 400, "invalid_grant")
	if err := s.ApproveDevice("BCDF-GHJK"); err == nil {
		t.Error("ApproveDevice(unknown) = nil; want error")
	}

	start()
	if resp, _ := send(t, "GET", da.Complete, nil, nil); resp.StatusCode != 200 {
		t.Errorf("verification_uri_complete: status %d", resp.StatusCode)
	}
	if tr := poll(); tr.status != 200 {
		t.Errorf("approved through the verification URI: %+v", tr)
	}

	start()
	now = now.Add(2 * time.Minute)
	wantOAuthError(t, poll(), 400, "expired_token")
}
