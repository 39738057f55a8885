package dpop_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
)

// TestCheckResponseNil: CheckResponse of a nil response is an error that
// says so; a response without a header or without a body is read for what
// it has: no DPoP error, or the challenge its headers carry. None panics.
func TestCheckResponseNil(t *testing.T) {
	challenge := http.Header{"Www-Authenticate": {`DPoP error="use_dpop_nonce"`}, "Dpop-Nonce": {"n1"}}
	for _, tt := range []struct {
		name string
		resp *http.Response
		want string // CheckResponse's error text; "" for none
	}{
		{"nil", nil, "dpop: CheckResponse: response is nil"},
		{"no header", &http.Response{StatusCode: 401}, ""},
		{"no body, 400", &http.Response{StatusCode: 400, Header: http.Header{"Dpop-Nonce": {"n1"}}}, ""},
		{"no body, 400 JSON", &http.Response{StatusCode: 400, Header: http.Header{"Content-Type": {"application/json"}}}, ""},
		{"no body, 401 challenge", &http.Response{StatusCode: 401, Header: challenge}, "use_dpop_nonce"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if p := noPanic(func() { err = dpop.CheckResponse(tt.resp) }); p != nil {
				t.Fatalf("panic: %v", p)
			}
			var ce *dpop.ChallengeError
			switch {
			case tt.want == "":
				if err != nil {
					t.Errorf("CheckResponse = %v; want nil", err)
				}
			case tt.resp == nil:
				if err == nil || errors.As(err, &ce) || err.Error() != tt.want {
					t.Errorf("CheckResponse = %v; want the error %q", err, tt.want)
				}
			default:
				if !errors.As(err, &ce) || ce.StatusCode != 401 || ce.ErrorCode != tt.want || ce.Nonce != "n1" {
					t.Errorf("CheckResponse = %#v; want a 401 *ChallengeError %s with nonce n1", err, tt.want)
				}
			}
		})
	}
}

// FuzzCheckResponse feeds CheckResponse arbitrary statuses, challenge,
// nonce and Date headers and bodies: it must not panic, a challenge it
// reports has the response's status, and resp.Body still reads the whole
// body byte for byte.
func FuzzCheckResponse(f *testing.F) {
	f.Add(401, `DPoP error="use_dpop_nonce", algs="ES256 EdDSA"`, "n1", "", []byte(nil))
	f.Add(400, "", "n1", "Mon, 02 Jan 2006 15:04:05 GMT", []byte(`{"error":"use_dpop_nonce"}`))
	f.Add(400, "", "", "Mon, 02 Jan 2006 15:04:05 GMT", []byte(`{"error":"invalid_dpop_proof","error_description":"iat"}`))
	f.Add(401, `Bearer, DPoP error="invalid_dpop_proof", error_description="\u202e"`, "bad nonce", "x", []byte("body"))
	f.Add(200, "DPoP", "n", "", bytes.Repeat([]byte("{"), 5000))
	f.Fuzz(func(t *testing.T, status int, wwwAuth, nonce, date string, body []byte) {
		status = 100 + (status%900+900)%900
		h := http.Header{}
		for k, v := range map[string]string{"WWW-Authenticate": wwwAuth, "DPoP-Nonce": nonce, "Date": date} {
			if v != "" {
				h.Set(k, v)
			}
		}
		resp := &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body))}
		err := dpop.CheckResponse(resp)
		var ce *dpop.ChallengeError
		if err != nil && (!errors.As(err, &ce) || ce.StatusCode != status) {
			t.Fatalf("CheckResponse = %v; want nil or a ChallengeError with status %d", err, status)
		}
		got, rerr := io.ReadAll(resp.Body)
		if rerr != nil || !bytes.Equal(got, body) {
			t.Fatalf("body after CheckResponse: %q, %v; want %q", got, rerr, body)
		}
	})
}

// trickle writes body one byte every 20 ms, until it is written, the
// client goes away or done is closed.
func trickle(w http.ResponseWriter, r *http.Request, body []byte, done <-chan struct{}) {
	f := w.(http.Flusher)
	for i := range body {
		if _, err := w.Write(body[i : i+1]); err != nil {
			return
		}
		f.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-done:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestSlowBodyDoesNotStall: a 401 nonce challenge whose 64 KiB body
// trickles in (which would take 20 minutes) is answered at once; a 400
// use_dpop_nonce whose JSON trickles is handed back unanswered, without
// waiting for its body, and its body reads whole, byte for byte.
func TestSlowBodyDoesNotStall(t *testing.T) {
	t.Run("401", func(t *testing.T) {
		done := make(chan struct{})
		var n atomic.Int32
		rs := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", algs="ES256"`)
				w.Header().Set("DPoP-Nonce", "n1")
				w.WriteHeader(http.StatusUnauthorized)
				trickle(w, r, bytes.Repeat([]byte("x"), 64<<10), done)
				return
			}
			io.WriteString(w, "ok")
		})
		t.Cleanup(func() { close(done) })
		hc := &http.Client{Transport: &dpop.Transport{Signer: newSigner(t)}}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", rs.URL+"/api", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("request with a 3 s deadline: %v; want the retry's answer", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" || err != nil {
			t.Errorf("answer %d %q, %v; want 200 \"ok\"", resp.StatusCode, body, err)
		}
		if got := n.Load(); got != 2 {
			t.Errorf("%d requests; want 2", got)
		}
	})
	t.Run("400", func(t *testing.T) {
		done := make(chan struct{})
		want := []byte(`{"error":"use_dpop_nonce","error_description":"` + strings.Repeat("slow ", 20) + `"}`)
		var n atomic.Int32
		as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("DPoP-Nonce", "n1")
			w.WriteHeader(http.StatusBadRequest)
			trickle(w, r, want, done)
		})
		t.Cleanup(func() { close(done) })
		hc := &http.Client{Transport: &dpop.Transport{Signer: newSigner(t)}}
		// The body takes about 2.5 s to arrive; a client that waits for it
		// before it answers the challenge (or before it returns) takes
		// twice that.
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", as.URL+"/token", strings.NewReader("grant_type=x"))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("request with a 4 s deadline: %v; want the 400", err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !bytes.Equal(got, want) || err != nil {
			t.Errorf("answer %d %q, %v; want 400 %q", resp.StatusCode, got, err, want)
		}
		if got := n.Load(); got != 1 {
			t.Errorf("%d requests; want 1 (not answered: its body did not come in time)", got)
		}
	})
}
