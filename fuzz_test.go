package dpop

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"testing/iotest"
	"time"
)

// FuzzValidNonce checks that every nonce validNonce admits goes into a
// proof and comes back out of the JSON unchanged, and that it admits
// exactly the NQCHAR strings of RFC 9449 §8.1.
func FuzzValidNonce(f *testing.F) {
	for _, s := range []string{"abc", `a"b`, `a\b`, "a b", "", "\x7f", "~!#[]"} {
		f.Add(s)
	}
	s := newTestSigner(f, algEdDSA)
	f.Fuzz(func(t *testing.T, nonce string) {
		want := len(nonce) > 0 && len(nonce) <= maxNonceLen
		for i := 0; i < len(nonce); i++ {
			c := nonce[i]
			if !(c == 0x21 || (0x23 <= c && c <= 0x5b) || (0x5d <= c && c <= 0x7e)) {
				want = false
			}
		}
		if got := validNonce(nonce); got != want {
			t.Fatalf("validNonce(%q) = %v; want %v", nonce, got, want)
		}
		if !want {
			return
		}
		proof, err := s.Proof("GET", "https://example.com/", &ProofOptions{Nonce: nonce})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := verifyJOSE(t, proof, algEdDSA)
		if c.Nonce != nonce {
			t.Fatalf("nonce round trip: %q; want %q", c.Nonce, nonce)
		}
	})
}

// FuzzResponseChallenge feeds arbitrary 400 bodies and WWW-Authenticate
// values to the challenge detection: it must not panic, must detect a
// use_dpop_nonce JSON error exactly when encoding/json sees one in a body
// within the peek limit, and must leave the body reading byte for byte.
func FuzzResponseChallenge(f *testing.F) {
	f.Add([]byte(`{"error":"use_dpop_nonce"}`), `DPoP error="use_dpop_nonce"`, true)
	f.Add([]byte(`{"error":"invalid_grant","error_description":"x"}`), `Bearer, DPoP algs="ES256"`, false)
	f.Add([]byte(`not json`), `DPoP error=`, true)
	f.Add(bytes.Repeat([]byte("x"), maxPeek+10), `dpop ERROR=use_dpop_nonce, Basic abc=`, false)
	f.Fuzz(func(t *testing.T, body []byte, wwwAuth string, halfReader bool) {
		var r io.Reader = bytes.NewReader(body)
		if halfReader {
			r = iotest.HalfReader(r)
		}
		resp := &http.Response{StatusCode: 400, Header: http.Header{"Dpop-Nonce": {"n"}}, Body: io.NopCloser(r)}
		ce := responseChallenge(resp, time.Now())
		got, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("body after peek: %q, %v; want %q", got, err, body)
		}
		var e struct {
			Error string `json:"error"`
		}
		want := len(body) <= maxPeek && json.Unmarshal(body, &e) == nil && (e.Error == CodeUseNonce || e.Error == CodeInvalidProof)
		if (ce != nil) != want {
			t.Fatalf("challenge = %+v; want detected=%v for %q", ce, want, body)
		}

		resp = &http.Response{StatusCode: 401, Header: http.Header{"Www-Authenticate": {wwwAuth}}, Body: http.NoBody}
		if ce := responseChallenge(resp, time.Now()); ce != nil && ce.StatusCode != 401 {
			t.Fatalf("401 challenge with status %d", ce.StatusCode)
		}
	})
}

// truncatedBody yields some bytes, then fails as a body cut short does.
type truncatedBody struct{ r io.Reader }

func (t *truncatedBody) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// TestPeekKeepsReadError: a 400 body cut short keeps its error for the
// caller after the peek, instead of looking complete.
func TestPeekKeepsReadError(t *testing.T) {
	resp := &http.Response{StatusCode: 400, Header: http.Header{}, Body: io.NopCloser(&truncatedBody{bytes.NewReader([]byte(`{"error":"inv`))})}
	if ce := responseChallenge(resp, time.Now()); ce != nil {
		t.Errorf("challenge %+v from a truncated body", ce)
	}
	got, err := io.ReadAll(resp.Body)
	if string(got) != `{"error":"inv` || err != io.ErrUnexpectedEOF {
		t.Errorf("after peek: %q, %v; want the bytes and io.ErrUnexpectedEOF", got, err)
	}
}
