package dpoptest

import (
	"net/http"
	"testing"
	"time"
)

// TestClockOffset: a server whose clock is 2 minutes ahead says so in its
// Date header, checks iat against its own clock and dates its tokens by it.
func TestClockOffset(t *testing.T) {
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	offset := 2 * time.Minute
	s := newTestServer(t, &Config{Now: func() time.Time { return base }, ClockOffset: offset})
	server := base.Add(offset)
	k := newClientKey(t, "ES256")
	tu := s.Endpoint().TokenURL
	cc := form("grant_type", "client_credentials")
	auth := basic("backend", "backend-secret")
	iat := func(at time.Time) proofOpts {
		return withClaims(func(c map[string]any) { c["iat"] = at.Unix() })
	}

	// A client whose clock reads base is 2 minutes behind the server.
	tr := post(t, tu, k, auth, cc, iat(base))
	wantOAuthError(t, tr, 400, "invalid_dpop_proof")
	if got, want := tr.header.Get("Date"), server.Format(http.TimeFormat); got != want {
		t.Errorf("token endpoint Date = %q; want %q", got, want)
	}
	tr = post(t, tu, k, auth, cc, iat(server))
	if tr.status != 200 {
		t.Fatalf("proof on the server's clock: %+v", tr)
	}

	var issued time.Time
	s.Handle("/clock/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, _ := TokenFromContext(r.Context())
		issued = ti.IssuedAt
	}))
	u := s.URL + "/clock/x"
	hdr := map[string]string{"Authorization": "DPoP " + tr.AT, "DPoP": k.proof("GET", u, withToken(tr.AT), iat(server))}
	resp, _ := send(t, "GET", u, nil, hdr)
	if resp.StatusCode != 200 {
		t.Fatalf("resource: status %d", resp.StatusCode)
	}
	if !issued.Equal(server) {
		t.Errorf("token iat = %v; want the server's clock %v", issued, server)
	}
	hdr["DPoP"] = k.proof("GET", u, withToken(tr.AT), iat(base))
	resp, _ = send(t, "GET", u, nil, hdr)
	wantChallenge(t, resp, "invalid_dpop_proof")
	if got, want := resp.Header.Get("Date"), server.Format(http.TimeFormat); got != want {
		t.Errorf("resource server Date = %q; want %q", got, want)
	}
}

// TestDateHeaderFollowsNow: without an offset, Date is Config.Now.
func TestDateHeaderFollowsNow(t *testing.T) {
	base := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	s := newTestServer(t, &Config{Now: func() time.Time { return base }})
	resp, _ := send(t, "GET", s.URL+"/api/x", nil, nil)
	if got, want := resp.Header.Get("Date"), base.Format(http.TimeFormat); got != want {
		t.Errorf("Date = %q; want %q", got, want)
	}
}
