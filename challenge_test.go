package dpop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode"

	"github.com/dpopkit/dpop"
	"golang.org/x/oauth2"
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
// reports has the response's status and only short, printable strings,
// and resp.Body still reads the whole body byte for byte.
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
		if ce != nil {
			checkClean(t, "ErrorCode", ce.ErrorCode, 80)
			checkClean(t, "Description", ce.Description, 300)
			for _, a := range ce.Algs {
				checkClean(t, "an alg", a, 80)
			}
			checkCleanText(t, "Error()", ce.Error(), 2<<10)
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

// hostileText is what a hostile server puts in a string it chooses: a
// bidi override, terminal escapes, a line break, invalid UTF-8 and 64 KiB.
var hostileText = "\u202eevil\x1b[2J\r\ninjected\xff" + strings.Repeat("A", 64<<10)

// checkClean fails unless s, a server's string as a field of an error or
// a trace event holds it, is at most max bytes and only printable.
func checkClean(t *testing.T, name, s string, max int) {
	t.Helper()
	if len(s) > max {
		t.Errorf("%s is %d bytes; want at most %d", name, len(s), max)
	}
	for i, r := range s {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar && !strings.HasPrefix(s[i:], "\uFFFD") {
			t.Errorf("%s = %.80q…; has the raw character %U", name, s, r)
			return
		}
	}
}

// checkCleanText fails unless text, an error's text or a log line, is at
// most max bytes and free of control and bidi characters.
func checkCleanText(t *testing.T, name, text string, max int) {
	t.Helper()
	if len(text) > max {
		t.Errorf("%s is %d bytes; want at most %d", name, len(text), max)
	}
	for _, r := range text {
		if unicode.IsControl(r) && r != '\n' || unicode.Is(unicode.Bidi_Control, r) {
			t.Errorf("%s = %.200q…; has the raw character %U", name, text, r)
			return
		}
	}
}

// TestChallengeErrorServerStrings: the server's strings a ChallengeError
// holds (error code, description, algs) are cut short and hold no
// control, bidi or invalid character, however they came (a 401 challenge,
// a 400 JSON body): a program that logs a field, or marshals the error,
// gets no 64 KiB line with terminal escapes.
func TestChallengeErrorServerStrings(t *testing.T) {
	// A quoted-string carries no control character, but any other byte.
	quoted := `"` + strings.NewReplacer("\x1b", "", "\r", "", "\n", "").Replace(hostileText) + `"`
	header := `DPoP error=` + quoted + `, error_description=` + quoted + `, algs="` + strings.Repeat("ES256 ", 10000) + "\u202eRS256\""
	// A 400 body is looked at only when it is small (a few KiB).
	body, _ := json.Marshal(map[string]string{"error": dpop.CodeInvalidProof, "error_description": hostileText[:3000]})
	for name, resp := range map[string]*http.Response{
		"401": {StatusCode: 401, Header: http.Header{"Www-Authenticate": {header}}, Body: http.NoBody},
		"400": {StatusCode: 400, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(string(body)))},
	} {
		t.Run(name, func(t *testing.T) {
			err := dpop.CheckResponse(resp)
			ce, ok := errors.AsType[*dpop.ChallengeError](err)
			if !ok {
				t.Fatalf("CheckResponse = %v; want a *ChallengeError", err)
			}
			checkClean(t, "ErrorCode", ce.ErrorCode, 80)
			checkClean(t, "Description", ce.Description, 300)
			if len(ce.Algs) > 16 {
				t.Errorf("%d algs kept; want at most 16", len(ce.Algs))
			}
			for _, a := range ce.Algs {
				checkClean(t, "an alg", a, 80)
			}
			checkCleanText(t, "Error()", ce.Error(), 2<<10)
			b, err := json.Marshal(ce)
			if err != nil {
				t.Fatal(err)
			}
			checkCleanText(t, "json.Marshal", string(b), 2<<10)
		})
	}
}

// TestCheckResponseNotDPoP: an API that does not speak DPoP (a 401 with
// a Bearer challenge only, or Basic from a proxy) says so: CheckResponse
// returns a ChallengeError naming the scheme, whose text says what it
// means; the Transport tells its Trace, and does not retry (a new token
// would not help).
func TestCheckResponseNotDPoP(t *testing.T) {
	for _, tt := range []struct {
		header, scheme string
	}{
		{`Bearer realm="api", error="invalid_token", error_description="token is not a Bearer token"`, "Bearer"},
		{`bearer`, "Bearer"},
		{`Basic realm="corp proxy"`, "Basic"},
		{`Bearer realm="api", DPoP algs="ES256"`, "DPoP"},
	} {
		t.Run(tt.header, func(t *testing.T) {
			var requests int
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				requests++
				return &http.Response{StatusCode: 401, Header: http.Header{"Www-Authenticate": {tt.header}}, Body: http.NoBody, Request: r}, nil
			})
			var rec traceRecorder
			c := &http.Client{Transport: &dpop.Transport{Base: base, Signer: newSigner(t), Trace: rec.trace(), Source: renewable{}}}
			resp, err := c.Get("https://api.example/items")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if requests != 1 {
				t.Errorf("%d requests; want 1 (no retry)", requests)
			}
			err = dpop.CheckResponse(resp)
			ce, ok := errors.AsType[*dpop.ChallengeError](err)
			if !ok {
				t.Fatalf("CheckResponse = %v; want a *ChallengeError", err)
			}
			if ce.Scheme != tt.scheme || ce.StatusCode != 401 {
				t.Errorf("Scheme, StatusCode = %q, %d; want %q, 401", ce.Scheme, ce.StatusCode, tt.scheme)
			}
			if len(rec.challenges) != 1 || rec.challenges[0].Scheme != tt.scheme {
				t.Errorf("ChallengeReceived = %+v; want one, scheme %s", rec.challenges, tt.scheme)
			}
			if tt.scheme == "DPoP" {
				return
			}
			if msg := err.Error(); !strings.Contains(msg, tt.scheme) || !strings.Contains(msg, "does not accept DPoP") {
				t.Errorf("Error() = %q; want it to name %s and say the server does not accept DPoP", msg, tt.scheme)
			}
		})
	}
}

// renewable is a TokenSource that can always replace its token.
type renewable struct{}

func (renewable) Token() (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: accessSecret, TokenType: "DPoP"}, nil
}
func (r renewable) TokenContext(context.Context) (*oauth2.Token, error) { return r.Token() }
func (renewable) Invalidate(*oauth2.Token) bool                         { return true }

// TestRefusedAlgPointsAtChooseAlg: a refusal of the proof's algorithm
// says where to look: ChooseAlg for a key the server accepts, and
// Metadata.CheckSigner to find out before the first request.
func TestRefusedAlgPointsAtChooseAlg(t *testing.T) {
	errs := map[string]error{
		"challenge with algs": &dpop.ChallengeError{StatusCode: 401, ErrorCode: dpop.CodeInvalidProof, Algs: []string{"ES384", "PS256"}},
		"challenge about alg": &dpop.ChallengeError{StatusCode: 400, ErrorCode: dpop.CodeInvalidProof, Description: "unsupported alg"},
		"CheckSigner":         (&dpop.Metadata{DPoPSigningAlgValuesSupported: []string{"ES384"}}).CheckSigner(newSigner(t)),
	}
	as := newHostile(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_dpop_proof","error_description":"Unsupported DPoP proof alg ES256"}`)
	})
	cfg := &dpop.Config{OAuth2: &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: as.URL + "/token"}}, Signer: newSigner(t)}
	_, errs["token endpoint"] = cfg.Exchange(context.Background(), "code")
	for name, err := range errs {
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "ChooseAlg") {
			t.Errorf("%s: %q; want a pointer to ChooseAlg", name, msg)
		}
	}
}
