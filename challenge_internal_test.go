package dpop

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// countingBody counts its reads; it is not safe for concurrent use, as
// bodies of a user's Base may not be.
type countingBody struct {
	r      io.Reader
	reads  int
	closed int
}

func (b *countingBody) Read(p []byte) (int, error) { b.reads++; return b.r.Read(p) }
func (b *countingBody) Close() error               { b.closed++; return nil }

// TestDrainClose: a challenge's body of known small length is read to its
// end; one larger than maxDrain is closed unread; each is closed once.
func TestDrainClose(t *testing.T) {
	for _, tt := range []struct {
		name      string
		length    int64
		size      int
		wantReads bool
	}{
		{"small", 100, 100, true},
		{"unknown length", -1, 100, true},
		{"empty", 0, 0, false},
		{"large", maxDrain + 1, maxDrain + 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := &countingBody{r: strings.NewReader(strings.Repeat("x", tt.size))}
			drainClose(&http.Response{ContentLength: tt.length, Body: b})
			if (b.reads > 0) != tt.wantReads || b.closed != 1 {
				t.Errorf("%d reads, closed %d times; want reads %t, closed once", b.reads, b.closed, tt.wantReads)
			}
		})
	}
}

// TestPeekOnlyJSON: a 400 whose Content-Type is not JSON is not read to
// find a DPoP error code (RFC 6749 §5.2 error bodies are JSON).
func TestPeekOnlyJSON(t *testing.T) {
	for _, tt := range []struct {
		ct   string
		want bool
	}{
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"application/problem+json", true},
		{"", true},
		{"text/html", false},
		{"text/plain", false},
		{"application/json; bad=", false},
	} {
		body := &countingBody{r: strings.NewReader(`{"error":"use_dpop_nonce"}`)}
		resp := &http.Response{StatusCode: 400, Header: http.Header{"Dpop-Nonce": {"n1"}}, Body: body}
		if tt.ct != "" {
			resp.Header.Set("Content-Type", tt.ct)
		}
		ce := responseError(resp)
		if got := ce != nil; got != tt.want {
			t.Errorf("Content-Type %q: challenge found %t; want %t", tt.ct, got, tt.want)
		}
		if !tt.want && body.reads != 0 {
			t.Errorf("Content-Type %q: body read %d times; want 0", tt.ct, body.reads)
		}
	}
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
