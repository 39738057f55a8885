package dpoptest

import (
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// deviceGrant is a pending device authorization (RFC 8628 §3.2).
type deviceGrant struct {
	clientID, scope, userCode string
	expiry                    time.Time
	interval                  time.Duration // minimum between polls, 0 = none
	lastPoll                  time.Time
	approved                  bool
}

// userCodeAlphabet has no vowels or look-alikes (RFC 8628 §6.1).
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

func newUserCode() string {
	b := make([]byte, 8)
	rand.Read(b)
	for i := range b {
		b[i] = userCodeAlphabet[int(b[i])%len(userCodeAlphabet)]
	}
	return string(b[:4]) + "-" + string(b[4:])
}

// normUserCode makes user codes compare without case and dashes
// (RFC 8628 §6.1).
func normUserCode(c string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(c))
}

// serveDeviceAuth is the device authorization endpoint (RFC 8628 §3.1,
// §3.2). Clients authenticate as at the token endpoint. A DPoP proof is
// not needed; if one is sent it must be valid, but no nonce is demanded.
func (s *Server) serveDeviceAuth(w http.ResponseWriter, r *http.Request) {
	rec := record(r)
	rec.Kind = KindDevice
	form, oe := parseForm(w, r)
	if oe != nil {
		s.writeError(w, r, oe)
		return
	}
	if len(r.Header.Values("DPoP")) > 0 {
		p, err := s.verifier.Verify(r.Header.Get("DPoP"), r.Method, requestURL(r), "")
		if err != nil || len(r.Header.Values("DPoP")) > 1 {
			if err != nil {
				rec.ProofErr = err.Error()
			}
			s.writeError(w, r, badRequest("invalid_dpop_proof", "invalid DPoP proof"))
			return
		}
		rec.Proof, rec.Nonce = p, p.Nonce
	}
	c, oe := s.authenticateClient(r, form)
	if oe != nil {
		s.writeError(w, r, oe)
		return
	}
	interval := s.cfg.DeviceInterval
	advertised := int64((interval + time.Second - 1) / time.Second)
	if interval < 0 {
		interval, advertised = 0, 1
	}
	g := &deviceGrant{
		clientID: c.ID,
		scope:    form.Get("scope"),
		userCode: newUserCode(),
		expiry:   s.now().Add(s.cfg.DeviceCodeTTL),
		interval: interval,
	}
	dc := randString(32)
	s.mu.Lock()
	s.devices[dc] = g
	s.users[normUserCode(g.userCode)] = dc
	s.mu.Unlock()
	s.writeAS(w, http.StatusOK, map[string]any{
		"device_code":               dc,
		"user_code":                 g.userCode,
		"verification_uri":          s.URL + pathDevice,
		"verification_uri_complete": s.URL + pathDevice + "?user_code=" + url.QueryEscape(g.userCode),
		"expires_in":                int64(s.cfg.DeviceCodeTTL / time.Second),
		"interval":                  advertised,
	})
}

// ApproveDevice approves the device authorization with this user code for
// TestUser, as a user would at the verification URI (RFC 8628 §3.3).
func (s *Server) ApproveDevice(userCode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.devices[s.users[normUserCode(userCode)]]
	if g == nil {
		return errors.New("dpoptest: unknown user code " + quote(userCode))
	}
	if !s.now().Before(g.expiry) {
		return errors.New("dpoptest: user code " + quote(userCode) + " expired")
	}
	g.approved = true
	return nil
}

// serveDeviceVerification is the verification URI: a GET with user_code
// approves it, standing in for the user's browser.
func (s *Server) serveDeviceVerification(w http.ResponseWriter, r *http.Request) {
	record(r).Kind = KindDevice
	if err := s.ApproveDevice(r.URL.Query().Get("user_code")); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("dpoptest: device approved for " + TestUser + "\n"))
}

// grantDevice runs the device access token request (RFC 8628 §3.4, §3.5).
func (s *Server) grantDevice(w http.ResponseWriter, c *Client, p *Proof, form url.Values) *oauthError {
	dc := form.Get("device_code")
	now := s.now()
	s.mu.Lock()
	g := s.devices[dc]
	var oe *oauthError
	switch {
	case dc == "" || g == nil:
		oe = badRequest("invalid_grant", "unknown or already used device_code")
	case g.clientID != c.ID:
		oe = badRequest("invalid_grant", "device_code issued to another client")
	case !now.Before(g.expiry):
		oe = badRequest("expired_token", "device_code expired")
		delete(s.devices, dc)
		delete(s.users, normUserCode(g.userCode))
	case g.approved:
		delete(s.devices, dc) // single use
		delete(s.users, normUserCode(g.userCode))
	case !g.lastPoll.IsZero() && now.Sub(g.lastPoll) < g.interval-pollTolerance:
		g.interval += 5 * time.Second // §3.5: for this and all later polls
		g.lastPoll = now
		oe = badRequest("slow_down", "polling faster than the interval")
	default:
		g.lastPoll = now
		oe = badRequest("authorization_pending", "the user has not approved yet")
	}
	s.mu.Unlock()
	if oe != nil {
		return oe
	}
	s.issue(w, c, p, TestUser, g.scope, true)
	return nil
}

// pollTolerance absorbs scheduling jitter of clients that poll on a ticker
// of exactly the interval, as x/oauth2 does.
const pollTolerance = 250 * time.Millisecond
