package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func testKeyBytes(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func newIssuer(t testing.TB, key []byte, step time.Duration) *NonceIssuer {
	t.Helper()
	n, err := NewNonceIssuer(key, step)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNonceIssuer(t *testing.T) {
	a := newIssuer(t, testKeyBytes(1), time.Minute)
	b := newIssuer(t, testKeyBytes(1), time.Minute) // another instance, same key
	other := newIssuer(t, testKeyBytes(2), time.Minute)
	now := testNow
	n := a.at(now).current
	if len(n) != nonceLen || strings.Trim(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Fatalf("nonce %q: want %d base64url characters", n, nonceLen)
	}
	if got := b.at(now).current; got != n {
		t.Errorf("instances with one key issue %q and %q; want the same", n, got)
	}
	for _, tt := range []struct {
		name string
		iss  *NonceIssuer
		at   time.Time
		ok   bool
	}{
		{"same instance", a, now, true},
		{"other instance", b, now, true},
		{"next step", b, now.Add(time.Minute), true},
		{"a step behind (clock ahead)", b, now.Add(-time.Minute), true},
		{"two steps later", b, now.Add(2 * time.Minute), false},
		{"two steps before", b, now.Add(-2 * time.Minute), false},
		{"other key", other, now, false},
	} {
		until, ok := tt.iss.check([]byte(n), tt.at)
		if ok != tt.ok {
			t.Errorf("%s: check = %v; want %v", tt.name, ok, tt.ok)
		}
		if ok && !until.After(tt.at) {
			t.Errorf("%s: accepted until %v, not after %v", tt.name, until, tt.at)
		}
	}
	// The acceptance ends at the end of the step after the one it was
	// issued in.
	step := now.UnixNano() / int64(time.Minute)
	if until, _ := a.check([]byte(n), now); !until.Equal(time.Unix(0, (step+2)*int64(time.Minute))) {
		t.Errorf("until = %v; want the end of the next step", until)
	}
	for _, bad := range []string{"", n[:nonceLen-1], n + "A", strings.Repeat("A", nonceLen), flipFirst(n)} {
		if _, ok := a.check([]byte(bad), now); ok {
			t.Errorf("check(%q) = ok", bad)
		}
	}
}

func flipFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func TestNonceIssuerRotate(t *testing.T) {
	a := newIssuer(t, testKeyBytes(1), time.Minute)
	old := a.at(testNow).current
	if err := a.Rotate(testKeyBytes(2)); err != nil {
		t.Fatal(err)
	}
	cur := a.at(testNow).current
	if cur == old {
		t.Fatal("Rotate did not change the nonce issued")
	}
	if _, ok := a.check([]byte(old), testNow); !ok {
		t.Error("the previous key's nonce is refused after one rotation")
	}
	b := newIssuer(t, testKeyBytes(2), time.Minute)
	if _, ok := b.check([]byte(cur), testNow); !ok {
		t.Error("an instance with the new key refuses the rotated nonce")
	}
	if err := a.Rotate(testKeyBytes(3)); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.check([]byte(old), testNow); ok {
		t.Error("a nonce two keys old is accepted")
	}
	if err := a.Rotate(make([]byte, 31)); err == nil {
		t.Error("Rotate accepts a 31-byte key")
	}
}

func TestNewNonceIssuerErrors(t *testing.T) {
	for _, tt := range []struct {
		key  []byte
		step time.Duration
	}{
		{make([]byte, 31), time.Minute}, {nil, time.Minute}, {testKeyBytes(1), time.Millisecond}, {testKeyBytes(1), 48 * time.Hour}, {testKeyBytes(1), -time.Minute},
	} {
		if _, err := NewNonceIssuer(tt.key, tt.step); err == nil || !strings.HasPrefix(err.Error(), "dpop: ") {
			t.Errorf("NewNonceIssuer(%d bytes, %v) = %v; want an error", len(tt.key), tt.step, err)
		}
	}
	key := testKeyBytes(1)
	n := newIssuer(t, key, 0)
	key[0] = 9 // the caller's slice is not kept
	if n.at(testNow).current != newIssuer(t, testKeyBytes(1), time.Minute).at(testNow).current {
		t.Error("NewNonceIssuer kept the caller's key slice, or step 0 is not one minute")
	}
	var zero NonceIssuer
	if zero.Nonce() != "" {
		t.Error("a zero NonceIssuer issues a nonce")
	}
	if _, ok := zero.check([]byte(strings.Repeat("A", nonceLen)), testNow); ok {
		t.Error("a zero NonceIssuer accepts a nonce")
	}
}

// nonceSetup is a setup whose Verifier issues nonces, required on /items.
func nonceSetup(t *testing.T) (*setup, *NonceIssuer) {
	n := newIssuer(t, testKeyBytes(7), time.Minute)
	s := newSetup(t, "ES256", func(c *Config) {
		c.Nonces = n
		c.RequireNonce = func(r *http.Request) bool { return r.URL.Path == "/items" }
	})
	return s, n
}

func TestCheckNonce(t *testing.T) {
	s, n := nonceSetup(t)
	nonce := n.at(testNow).current
	h := s.v.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	serve := func(c map[string]any, path string) *httptest.ResponseRecorder {
		r := s.request(s.key.proof(t, s.key.header(), c))
		if path != "" {
			r = httptest.NewRequest("GET", testBase+path, nil)
			r.Header.Set("Authorization", "DPoP "+s.token)
			r.Header.Set("DPoP", s.key.proof(t, s.key.header(), c))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	challenged := func(name string, w *httptest.ResponseRecorder) {
		t.Helper()
		if w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="use_dpop_nonce"`) || w.Header().Get("DPoP-Nonce") != nonce {
			t.Errorf("%s: %d %q DPoP-Nonce %q; want a use_dpop_nonce challenge with %q", name, w.Code, w.Header().Get("WWW-Authenticate"), w.Header().Get("DPoP-Nonce"), nonce)
		}
	}
	c := claims(s.token)
	challenged("no nonce", serve(c, ""))
	c = claims(s.token)
	c["nonce"] = strings.Repeat("A", nonceLen)
	challenged("forged nonce", serve(c, ""))
	c = claims(s.token)
	c["nonce"] = nonce
	if w := serve(c, ""); w.Code != 200 || w.Header().Get("DPoP-Nonce") != nonce {
		t.Errorf("with the nonce: %d, DPoP-Nonce %q; want 200 announcing %q (RFC 9449 §8.2)", w.Code, w.Header().Get("DPoP-Nonce"), nonce)
	}
	// A route that does not require one.
	c = claims(s.token)
	c["htu"] = testBase + "/open"
	if w := serve(c, "/open"); w.Code != 200 || w.Header().Get("DPoP-Nonce") != nonce {
		t.Errorf("route without nonce: %d, DPoP-Nonce %q", w.Code, w.Header().Get("DPoP-Nonce"))
	}
	// An iat off: a nonce challenge, not a refusal, since a nonce helps.
	c = claims(s.token)
	c["htu"] = testBase + "/open"
	c["iat"] = testNow.Add(-time.Hour).Unix()
	challenged("iat off on a route without nonce", serve(c, "/open"))
	// A valid nonce stands in for MaxAge (RFC 9449 §11.1) as far back as
	// it was accepted, and no further.
	until, _ := n.check([]byte(nonce), testNow)
	from := until.Add(-3 * time.Minute)
	for _, tt := range []struct {
		name string
		iat  time.Time
		want int
	}{
		{"iat older than MaxAge, as old as the nonce", from, 200},
		{"iat older than the nonce", from.Add(-time.Second), 401},
		{"iat an hour back", testNow.Add(-time.Hour), 401},
		{"iat an hour ahead", testNow.Add(time.Hour), 401},
	} {
		c = claims(s.token)
		c["nonce"] = nonce
		c["iat"] = tt.iat.Unix()
		w := serve(c, "")
		if w.Code != tt.want {
			t.Errorf("%s with a valid nonce: %d %q; want %d", tt.name, w.Code, w.Header().Get("WWW-Authenticate"), tt.want)
		}
		if tt.want == 401 && !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_dpop_proof"`) {
			t.Errorf("%s with a valid nonce: %q; want invalid_dpop_proof", tt.name, w.Header().Get("WWW-Authenticate"))
		}
	}
}

// TestCheckNonceReplayWindow checks that a proof accepted on the strength
// of its nonce is recorded as long as the nonce is accepted: a replay just
// before the nonce expires is refused, and the record is not kept longer
// than needed.
func TestCheckNonceReplayWindow(t *testing.T) {
	now := testNow
	n := newIssuer(t, testKeyBytes(7), time.Minute)
	s := newSetup(t, "ES256", func(c *Config) {
		c.Nonces = n
		c.Now = func() time.Time { return now }
	})
	s.store.now = func() time.Time { return now }
	nonce := n.at(now).current
	until, _ := n.check([]byte(nonce), now)
	c := claims(s.token)
	c["nonce"] = nonce
	c["iat"] = until.Add(-3 * time.Minute).Unix() // older than MaxAge, as old as the nonce
	p := s.key.proof(t, s.key.header(), c)
	if _, err := s.v.Check(s.request(p)); err != nil {
		t.Fatal(err)
	}
	now = until.Add(-time.Second)
	if _, err := s.v.Check(s.request(p)); reasonOf(err) != ReasonReplay {
		t.Errorf("replay while the nonce is accepted: %v; want a replay", err)
	}
	if len(s.store.seen) != 1 {
		t.Fatalf("store holds %d entries", len(s.store.seen))
	}
	now = until.Add(s.v.maxFuture + time.Second)
	s.store.sweep(now.UnixNano())
	if len(s.store.seen) != 0 {
		t.Errorf("store still holds the proof after its nonce expired")
	}
}

// FuzzNonceCheck checks that the nonce validator never panics and accepts
// only the nonces of the key.
func FuzzNonceCheck(f *testing.F) {
	n, _ := NewNonceIssuer(testKeyBytes(1), time.Minute)
	valid := n.at(testNow).current
	f.Add(valid)
	f.Add(strings.Repeat("A", nonceLen))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		_, ok := n.check([]byte(s), testNow)
		if ok && s != valid && s != nonceFor(n.keys[0], testNow.UnixNano()/int64(time.Minute)-1) &&
			s != nonceFor(n.keys[0], testNow.UnixNano()/int64(time.Minute)+1) {
			t.Fatalf("check(%q) = ok", s)
		}
	})
}

// TestNonceIssuerSecret checks that no way of printing an issuer shows
// its keys.
func TestNonceIssuerSecret(t *testing.T) {
	key := bytes.Repeat([]byte("k"), 32)
	n := newIssuer(t, key, time.Minute)
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, nil))
	l.Info("x", "issuer", n)
	js, _ := json.Marshal(struct{ N *NonceIssuer }{n})
	for _, out := range []string{
		fmt.Sprintf("%v %+v %#v %s %x %q", n, n, n, n, n, n), buf.String(), string(js),
		fmt.Sprint(struct{ N *NonceIssuer }{n}),
	} {
		if strings.Contains(out, string(key)) || strings.Contains(out, fmt.Sprintf("%x", key)) || strings.Contains(out, "107, 107") {
			t.Errorf("output shows the key: %s", out)
		}
	}
	if got := fmt.Sprint(n); got != "resource.NonceIssuer{step: 1m0s, keys: 1}" {
		t.Errorf("Sprint = %s", got)
	}
}
