package dpop_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
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

// trickle writes body one byte every 20 ms, until it is written or the
// client goes away.
func trickle(w http.ResponseWriter, r *http.Request, body []byte) {
	f := w.(http.Flusher)
	for i := range body {
		if _, err := w.Write(body[i : i+1]); err != nil {
			return
		}
		f.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// pipeTransport serves each request with h, in memory, in a goroutine: the
// response comes back once h has written its header, and its body streams
// what h writes as h writes it. Closing the body makes h's later writes
// fail, as when a client hangs up. In a synctest bubble, h's waits and the
// client's run on the bubble's fake clock.
type pipeTransport struct{ h http.Handler }

func (p pipeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	pr, pw := io.Pipe()
	w := &pipeWriter{req: r, header: http.Header{}, body: pr, pw: pw, ready: make(chan *http.Response, 1)}
	go func() {
		defer pw.Close()
		p.h.ServeHTTP(w, r)
		w.WriteHeader(http.StatusOK) // if h wrote nothing
	}()
	select {
	case resp := <-w.ready:
		return resp, nil
	case <-r.Context().Done():
		pr.Close()
		return nil, r.Context().Err()
	}
}

// pipeWriter is the http.ResponseWriter of pipeTransport.
type pipeWriter struct {
	req    *http.Request
	header http.Header
	body   *io.PipeReader
	pw     *io.PipeWriter
	ready  chan *http.Response
	wrote  bool
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	w.ready <- &http.Response{StatusCode: code, Status: http.StatusText(code), Header: w.header.Clone(),
		Body: w.body, ContentLength: -1, Request: w.req, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
}

func (w *pipeWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.pw.Write(b)
}

func (w *pipeWriter) Flush() {}

// TestSlowBodyDoesNotStall: a 401 nonce challenge whose 64 KiB body
// trickles in (which would take 20 minutes) is answered at once; a 400
// use_dpop_nonce whose JSON trickles is handed back unanswered, without
// waiting for its body, and its body reads whole, byte for byte. The
// server is in memory and the clock fake (synctest), so the test takes no
// real time and its deadlines do not depend on the machine's load.
func TestSlowBodyDoesNotStall(t *testing.T) {
	t.Run("401", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var n int
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n++
				if n == 1 {
					w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", algs="ES256"`)
					w.Header().Set("DPoP-Nonce", "n1")
					w.WriteHeader(http.StatusUnauthorized)
					trickle(w, r, bytes.Repeat([]byte("x"), 64<<10))
					return
				}
				io.WriteString(w, "ok")
			})
			hc := &http.Client{Transport: &dpop.Transport{Signer: newSigner(t), Base: pipeTransport{h}}}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "https://rs.test/api", nil)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("request with a 3 s deadline: %v; want the retry's answer", err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "ok" || err != nil {
				t.Errorf("answer %d %q, %v; want 200 \"ok\"", resp.StatusCode, body, err)
			}
			if n != 2 {
				t.Errorf("%d requests; want 2", n)
			}
		})
	})
	t.Run("400", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			want := []byte(`{"error":"use_dpop_nonce","error_description":"` + strings.Repeat("slow ", 20) + `"}`)
			var n int
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n++
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("DPoP-Nonce", "n1")
				w.WriteHeader(http.StatusBadRequest)
				trickle(w, r, want)
			})
			hc := &http.Client{Transport: &dpop.Transport{Signer: newSigner(t), Base: pipeTransport{h}}}
			// The body takes about 2.5 s to arrive; a client that waits for it
			// before it answers the challenge (or before it returns) takes
			// twice that.
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", "https://as.test/token", strings.NewReader("grant_type=x"))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("request with a 4 s deadline: %v; want the 400", err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !bytes.Equal(got, want) || err != nil {
				t.Errorf("answer %d %q, %v; want 400 %q", resp.StatusCode, got, err, want)
			}
			if n != 1 {
				t.Errorf("%d requests; want 1 (not answered: its body did not come in time)", n)
			}
		})
	})
}
