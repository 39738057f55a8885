package interop

// Interop tests of the SDK's Transport against the jose resource server: the
// RS nonce challenge and its retry, large bodies, a forced nonce rotation, a
// body that cannot be sent twice, and CheckResponse on a key mismatch.
// Helpers are in sdk_test.go. None of these tests is parallel: they assert the
// exact exchanges of clients that reuse a nonce, and rotation affects everyone.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/dpopkit/dpop"
)

// TestSDKResourceServerNonce: GET and POST through ClientCredentials.Client:
// the RS's first challenge is answered with one retry, later calls reuse the
// nonce, and 1 MiB and 3 MiB bodies arrive whole.
func TestSDKResourceServerNonce(t *testing.T) {
	issuer, rs := requireInterop(t)
	md := sdkDiscover(t, issuer)
	s := sdkSigner(t, "ES256")
	cc := sdkBackend(t, md, s, "api:read api:write")
	ctx, rec := sdkContext(t)
	c := cc.Client(ctx)
	token := urlPath(t, md.TokenEndpoint)

	a := sdkCallRS(t, c, http.MethodGet, rs+"/api/get?q=1", nil)
	ex := rec.take()
	checkExchanges(t, "first GET", ex,
		"POST "+token+" 400 use_dpop_nonce", "POST "+token+" 200",
		"GET /api/get 401 use_dpop_nonce", "GET /api/get 200")
	if len(ex) == 4 {
		checkNonceRetry(t, "first GET", ex[2], ex[3])
	}
	if a.JKT != s.Thumbprint() {
		t.Errorf("RS jkt = %q; want %q", a.JKT, s.Thumbprint())
	}
	if id, _ := backendClient(t); a.ClientID != id {
		t.Errorf("RS client_id = %q; want %q", a.ClientID, id)
	}
	checkBody(t, a, nil)

	for _, n := range []int{1 << 20, 3 << 20} {
		body := randomBytes(t, n)
		a := sdkCallRS(t, c, http.MethodPost, rs+"/api/upload", body)
		checkBody(t, a, body)
		checkExchanges(t, fmt.Sprintf("POST %d bytes", n), rec.take(), "POST /api/upload 200")
	}

	a = sdkCallRS(t, c, http.MethodGet, rs+"/api/again", nil)
	checkExchanges(t, "GET after POSTs", rec.take(), "GET /api/again 200")
	if a.JKT != s.Thumbprint() {
		t.Errorf("RS jkt = %q; want %q", a.JKT, s.Thumbprint())
	}
}

// TestSDKResourceServerRotation: after POST /_rs/rotate-nonce the client's
// nonce is refused; the Transport retries once with the new one, for a GET
// and for a 3 MiB POST whose body is sent again whole. Not parallel: the
// rotation invalidates every client's nonce.
func TestSDKResourceServerRotation(t *testing.T) {
	issuer, rs := requireInterop(t)
	md := sdkDiscover(t, issuer)
	s := sdkSigner(t, "ES256")
	cc := sdkBackend(t, md, s)
	ctx, rec := sdkContext(t)
	c := cc.Client(ctx)

	sdkCallRS(t, c, http.MethodGet, rs+"/api/warm", nil)
	rec.take()

	rotateRSNonce(t, rs)
	sdkCallRS(t, c, http.MethodGet, rs+"/api/rotated", nil)
	ex := rec.take()
	checkExchanges(t, "GET after rotation", ex, "GET /api/rotated 401 use_dpop_nonce", "GET /api/rotated 200")
	if len(ex) == 2 {
		checkNonceRetry(t, "GET after rotation", ex[0], ex[1])
	}

	rotateRSNonce(t, rs)
	body := randomBytes(t, 3<<20)
	a := sdkCallRS(t, c, http.MethodPost, rs+"/api/rotated-upload", body)
	checkBody(t, a, body)
	ex = rec.take()
	checkExchanges(t, "POST after rotation", ex, "POST /api/rotated-upload 401 use_dpop_nonce", "POST /api/rotated-upload 200")
	if len(ex) == 2 {
		checkNonceRetry(t, "POST after rotation", ex[0], ex[1])
	}

	sdkCallRS(t, c, http.MethodGet, rs+"/api/settled", nil)
	checkExchanges(t, "GET after the retry", rec.take(), "GET /api/settled 200")
}

// TestSDKResourceServerUnrewindableBody: a body without GetBody cannot be sent
// twice, so the Transport hands the nonce challenge back; CheckResponse
// exposes it, and the next request carries the nonce.
func TestSDKResourceServerUnrewindableBody(t *testing.T) {
	issuer, rs := requireInterop(t)
	md := sdkDiscover(t, issuer)
	s := sdkSigner(t, "ES256")
	cc := sdkBackend(t, md, s)
	ctx, rec := sdkContext(t)
	c := cc.Client(ctx)

	body := randomBytes(t, 64<<10)
	req, err := http.NewRequest(http.MethodPost, rs+"/api/stream", io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unrewindable POST without a nonce: HTTP %d; want 401", resp.StatusCode)
	}
	err = dpop.CheckResponse(resp)
	var ce *dpop.ChallengeError
	if !errors.As(err, &ce) {
		t.Fatalf("CheckResponse = %v; want a *dpop.ChallengeError", err)
	}
	if ce.ErrorCode != dpop.CodeUseNonce {
		t.Errorf("ErrorCode = %q; want %q", ce.ErrorCode, dpop.CodeUseNonce)
	}
	if ce.Nonce != resp.Header.Get("DPoP-Nonce") {
		t.Errorf("ChallengeError.Nonce = %q; want %q", ce.Nonce, resp.Header.Get("DPoP-Nonce"))
	}
	ex := rec.take()
	if n := len(ex); n == 0 || ex[n-1].String() != "POST /api/stream 401 use_dpop_nonce" {
		t.Errorf("exchanges = %v; want the last to be one POST /api/stream 401 use_dpop_nonce", ex)
	}

	req, err = http.NewRequest(http.MethodPost, rs+"/api/stream", io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("second unrewindable POST: HTTP %d %s; want 200", resp.StatusCode, raw)
	}
	var a rsAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatal(err)
	}
	checkBody(t, a, body)
	ex = rec.take()
	checkExchanges(t, "second unrewindable POST", ex, "POST /api/stream 200")
	if len(ex) == 1 && ex[0].proofNonce != ce.Nonce {
		t.Errorf("second POST proof nonce = %q; want %q", ex[0].proofNonce, ce.Nonce)
	}
}

// TestSDKCheckResponseKeyMismatch: a token bound to one key presented with
// proofs of another. The RS compares the proof key with cnf.jkt before it
// looks at the nonce, and answers 401 invalid_token (not invalid_dpop_proof):
// the Transport does not retry and CheckResponse reports the challenge.
func TestSDKCheckResponseKeyMismatch(t *testing.T) {
	issuer, rs := requireInterop(t)
	md := sdkDiscover(t, issuer)
	s := sdkSigner(t, "ES256")
	ctx, rec := sdkContext(t)
	tok, err := sdkBackend(t, md, s).Token(ctx)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	rec.take()

	other := sdkSigner(t, "ES256")
	c := &http.Client{Transport: &dpop.Transport{
		Base:   rec,
		Source: oauth2.StaticTokenSource(tok),
		Signer: other,
	}}
	for _, nth := range []string{"first", "second"} {
		resp, err := c.Get(rs + "/api/mismatch")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s call with another key: HTTP %d; want 401", nth, resp.StatusCode)
		}
		// The second call carries the nonce of the first answer: the RS
		// still answers invalid_token, never use_dpop_nonce.
		checkExchanges(t, nth+" call with another key", rec.take(), "GET /api/mismatch 401 invalid_token")

		err = dpop.CheckResponse(resp)
		var ce *dpop.ChallengeError
		if !errors.As(err, &ce) {
			t.Fatalf("CheckResponse = %v; want a *dpop.ChallengeError", err)
		}
		if ce.StatusCode != http.StatusUnauthorized || ce.ErrorCode != dpop.CodeInvalidToken {
			t.Errorf("ChallengeError = %d %q; want 401 %q", ce.StatusCode, ce.ErrorCode, dpop.CodeInvalidToken)
		}
		if ce.Description == "" {
			t.Errorf("ChallengeError.Description is empty")
		}
		if ce.Nonce == "" || ce.Nonce != resp.Header.Get("DPoP-Nonce") {
			t.Errorf("ChallengeError.Nonce = %q; want the DPoP-Nonce %q", ce.Nonce, resp.Header.Get("DPoP-Nonce"))
		}
		for _, alg := range sdkAlgs {
			if !ce.AcceptsAlg(alg) {
				t.Errorf("AcceptsAlg(%s) = false; RS algs %q", alg, ce.Algs)
			}
		}
		if !strings.HasPrefix(err.Error(), "dpop: ") {
			t.Errorf("Error() = %q; want the prefix \"dpop: \"", err)
		}
	}

	// The same token with its own key is accepted.
	own := &http.Client{Transport: &dpop.Transport{Base: rec, Source: oauth2.StaticTokenSource(tok), Signer: s}}
	if a := sdkCallRS(t, own, http.MethodGet, rs+"/api/mismatch", nil); a.JKT != s.Thumbprint() {
		t.Errorf("RS jkt = %q; want %q", a.JKT, s.Thumbprint())
	}
}
