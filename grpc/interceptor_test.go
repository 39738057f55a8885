package dpopgrpc_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpopkit/dpop"
	dpopgrpc "github.com/dpopkit/dpop/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A server that requires a nonce challenges the first RPC once; the
// interceptor answers with the nonce, and the next RPCs carry it.
func TestUnaryNonceChallenge(t *testing.T) {
	bothServers(t, func(t *testing.T, dt bool) {
		srv, clientTLS := newTestServer(t, serverOptions{requireNonce: true, dpoptest: dt})
		signer := newSigner(t, true)
		conn := dial(t, srv, clientTLS, &dpopgrpc.Credentials{Signer: signer, Source: &tokenSource{srv: srv, signer: signer}})
		for i := range 3 {
			if _, err := echo(t.Context(), conn, "hi"); err != nil {
				t.Fatalf("RPC %d: %v", i, err)
			}
		}
		want := []string{"use_dpop_nonce", "ok", "ok", "ok"}
		if got := srv.outcomes(); !slices.Equal(got, want) {
			t.Errorf("server saw %v; want %v", got, want)
		}
	})
}

// A client meets the server's nonce once per rotation: after each
// rotation one challenge, then the RPCs go through with the new nonce.
func TestUnaryNonceOncePerRotation(t *testing.T) {
	bothServers(t, func(t *testing.T, dt bool) {
		srv, clientTLS := newTestServer(t, serverOptions{requireNonce: true, dpoptest: dt})
		signer := newSigner(t, false)
		conn := dial(t, srv, clientTLS, &dpopgrpc.Credentials{Signer: signer, Source: &tokenSource{srv: srv, signer: signer}})
		const rotations, perRotation = 4, 3
		for r := range rotations {
			for i := range perRotation {
				if _, err := echo(t.Context(), conn, "hi"); err != nil {
					t.Fatalf("rotation %d, RPC %d: %v", r, i, err)
				}
			}
			srv.rotate()
		}
		if got, want := srv.count("use_dpop_nonce"), rotations; got != want {
			t.Errorf("%d challenges for %d nonces; want %d", got, rotations, want)
		}
		if got, want := srv.count("ok"), rotations*perRotation; got != want {
			t.Errorf("%d RPCs served; want %d", got, want)
		}
	})
}

// Concurrent first RPCs to a server whose nonce is not known yet pay one
// challenge between them: the others wait for the first one's answer.
func TestUnaryNonceColdStart(t *testing.T) {
	bothServers(t, func(t *testing.T, dt bool) {
		defer dpopgrpc.SetProbeWait(time.Minute)() // the test counts challenges, not time
		srv, clientTLS := newTestServer(t, serverOptions{requireNonce: true, dpoptest: dt})
		signer := newSigner(t, false)
		conn := dial(t, srv, clientTLS, &dpopgrpc.Credentials{Signer: signer, Source: &tokenSource{srv: srv, signer: signer}})
		const n = 8
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				_, err := echo(t.Context(), conn, "hi")
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if got := srv.count("use_dpop_nonce"); got != 1 {
			t.Errorf("%d challenges for %d concurrent first RPCs; want 1 (outcomes %v)", got, n, srv.outcomes())
		}
	})
}

// A server that challenges every proof with a new nonce gets one retry,
// and the caller its refusal.
func TestUnaryNonceRetryBound(t *testing.T) {
	srv, clientTLS := newTestServer(t, serverOptions{alwaysChallenge: true, dpoptest: true})
	signer := newSigner(t, false)
	conn := dial(t, srv, clientTLS, &dpopgrpc.Credentials{Signer: signer, Source: &tokenSource{srv: srv, signer: signer}})
	_, err := echo(t.Context(), conn, "hi")
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("err = %v; want Unauthenticated", err)
	}
	if got := srv.outcomes(); len(got) != 2 {
		t.Errorf("server saw %v; want 2 attempts", got)
	}
}

// A refused token is replaced once, by a source that can (RFC 6750 §3.1);
// a second refusal goes to the caller.
func TestUnaryRefusedToken(t *testing.T) {
	bothServers(t, func(t *testing.T, dt bool) {
		srv, clientTLS := newTestServer(t, serverOptions{dpoptest: dt})
		signer := newSigner(t, false)
		src := &tokenSource{srv: srv, signer: signer}
		var retries []dpop.RetryInfo
		creds := &dpopgrpc.Credentials{Signer: signer, Source: src, Trace: &dpop.Trace{
			Retry: func(ri dpop.RetryInfo) { retries = append(retries, ri) },
		}}
		conn := dial(t, srv, clientTLS, creds)
		if _, err := echo(t.Context(), conn, "hi"); err != nil {
			t.Fatal(err)
		}
		old, _ := src.Token()
		srv.revoke(old.AccessToken)
		if _, err := echo(t.Context(), conn, "hi"); err != nil {
			t.Fatalf("RPC after the token was revoked: %v", err)
		}
		if got := src.fetched(); got != 2 {
			t.Errorf("%d tokens fetched; want 2", got)
		}
		want := []string{"ok", "invalid_token", "ok"}
		if got := srv.outcomes(); !slices.Equal(got, want) {
			t.Errorf("server saw %v; want %v", got, want)
		}
		if len(retries) != 1 || retries[0].Reason != dpop.RetryInvalidToken || retries[0].Attempt != 2 || retries[0].Origin != "https://"+srv.addr {
			t.Errorf("retries traced: %+v; want one invalid_token, attempt 2, origin https://%s", retries, srv.addr)
		}

		// Every token refused: one retry only.
		srv.mu.Lock()
		srv.refuseTokens = true
		srv.mu.Unlock()
		_, err := echo(t.Context(), conn, "hi")
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("err = %v; want Unauthenticated", err)
		}
		if got := srv.outcomes()[3:]; !slices.Equal(got, []string{"invalid_token", "invalid_token"}) {
			t.Errorf("server saw %v; want two refusals", got)
		}
	})
}

// A refusal that challenges for Bearer only, from a server that does not
// speak DPoP, is not a DPoP invalid_token: no new token is fetched and the
// RPC is not sent again.
func TestUnaryBearerChallengeNotRetried(t *testing.T) {
	srv, clientTLS := newTestServer(t, serverOptions{bearerOnly: true, dpoptest: true})
	signer := newSigner(t, false)
	src := &tokenSource{srv: srv, signer: signer}
	conn := dial(t, srv, clientTLS, &dpopgrpc.Credentials{Signer: signer, Source: src})
	srv.mu.Lock()
	srv.refuseTokens = true
	srv.mu.Unlock()
	if _, err := echo(t.Context(), conn, "hi"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("err = %v; want Unauthenticated", err)
	}
	if got := srv.outcomes(); !slices.Equal(got, []string{"invalid_token"}) {
		t.Errorf("server saw %v; want one refusal, not retried", got)
	}
	if got := src.fetched(); got != 1 {
		t.Errorf("%d tokens fetched; want 1", got)
	}
}

// A proof refused for another reason than the nonce, the clock or the
// token (here its htu: the server's public URL is another) is not sent
// again.
func TestUnaryRefusedProof(t *testing.T) {
	bothServers(t, func(t *testing.T, dt bool) {
		srv, clientTLS := newTestServer(t, serverOptions{base: "https://api.example.com", dpoptest: dt})
		signer := newSigner(t, false)
		conn := dial(t, srv, clientTLS, &dpopgrpc.Credentials{Signer: signer, Source: &tokenSource{srv: srv, signer: signer}})
		_, err := echo(t.Context(), conn, "hi")
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("err = %v; want Unauthenticated", err)
		}
		if got := srv.outcomes(); !slices.Equal(got, []string{"invalid_dpop_proof"}) {
			t.Errorf("server saw %v; want one invalid_dpop_proof", got)
		}
	})
}

// A proof sent again, as an attacker who saw it would, is refused
// (RFC 9449 §11.1); the client itself never sends one twice.
func TestReplayedProof(t *testing.T) {
	bothServers(t, func(t *testing.T, dt bool) {
		srv, clientTLS := newTestServer(t, serverOptions{requireNonce: true, dpoptest: dt})
		signer := newSigner(t, false)
		conn := dial(t, srv, clientTLS, &dpopgrpc.Credentials{Signer: signer, Source: &tokenSource{srv: srv, signer: signer}})
		if _, err := echo(t.Context(), conn, "hi"); err != nil {
			t.Fatal(err)
		}
		proof, auth := srv.lastProof()

		attacker := dialRaw(t, srv, clientTLS, grpc.WithPerRPCCredentials(staticCreds{"dpop": proof, "authorization": auth}))
		_, err := echo(t.Context(), attacker, "hi")
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("replay: err = %v; want Unauthenticated", err)
		}
		want := []string{"use_dpop_nonce", "ok", "invalid_dpop_proof"}
		if got := srv.outcomes(); !slices.Equal(got, want) {
			t.Errorf("server saw %v; want %v", got, want)
		}
		seen := map[string]bool{}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for _, p := range srv.proofs[:2] {
			if seen[p] {
				t.Error("the client sent one proof twice")
			}
			seen[p] = true
		}
	})
}

// A server whose clock is 10 minutes ahead refuses the first proof's iat
// and sends its date; the client re-signs on the server's clock, then and
// for the next RPCs (RFC 9449 §11.1).
func TestUnaryClockOffset(t *testing.T) {
	bothServers(t, func(t *testing.T, dt bool) {
		srv, clientTLS := newTestServer(t, serverOptions{dpoptest: dt})
		srv.mu.Lock()
		srv.clockOffset = 10 * time.Minute
		srv.mu.Unlock()
		signer := newSigner(t, true)
		var offsets []time.Duration
		creds := &dpopgrpc.Credentials{Signer: signer, Source: &tokenSource{srv: srv, signer: signer}, Trace: &dpop.Trace{
			ClockOffsetLearned: func(ci dpop.ClockOffsetInfo) { offsets = append(offsets, ci.Offset) },
		}}
		conn := dial(t, srv, clientTLS, creds)
		for i := range 2 {
			if _, err := echo(t.Context(), conn, "hi"); err != nil {
				t.Fatalf("RPC %d: %v", i, err)
			}
		}
		want := []string{"invalid_dpop_proof", "ok", "ok"}
		if got := srv.outcomes(); !slices.Equal(got, want) {
			t.Errorf("server saw %v; want %v", got, want)
		}
		if len(offsets) != 1 || offsets[0] < 9*time.Minute || offsets[0] > 11*time.Minute {
			t.Errorf("offsets learned: %v; want one of about 10m", offsets)
		}
		proof, _ := srv.lastProof()
		iat := time.Unix(int64(claims(t, proof)["iat"].(float64)), 0)
		if d := time.Until(iat); d < 9*time.Minute || d > 11*time.Minute {
			t.Errorf("iat is %v from now; want about 10m", d)
		}

		// The clocks agree again: the server refuses the shifted iat, and the
		// client learns the offset is gone.
		srv.mu.Lock()
		srv.clockOffset = 0
		srv.mu.Unlock()
		if _, err := echo(t.Context(), conn, "hi"); err != nil {
			t.Fatal(err)
		}
		if len(offsets) != 2 || offsets[1] < -time.Minute || offsets[1] > time.Minute {
			t.Errorf("offsets learned: %v; want a second one of about 0", offsets)
		}
	})
}

// A refusal of the iat without the server's date is not retried: the
// client cannot know which way the clocks differ.
func TestUnaryClockWithoutDate(t *testing.T) {
	srv, clientTLS := newTestServer(t, serverOptions{dpoptest: true})
	srv.mu.Lock()
	srv.clockOffset = 10 * time.Minute
	srv.noDate = true
	srv.mu.Unlock()
	signer := newSigner(t, false)
	conn := dial(t, srv, clientTLS, &dpopgrpc.Credentials{Signer: signer, Source: &tokenSource{srv: srv, signer: signer}})
	if _, err := echo(t.Context(), conn, "hi"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("err = %v; want Unauthenticated", err)
	}
	if got := srv.outcomes(); !slices.Equal(got, []string{"invalid_dpop_proof"}) {
		t.Errorf("server saw %v; want one refusal", got)
	}
}

// A stream is never sent again: a stream refused for its nonce returns
// the refusal, and teaches the client the nonce for the next one.
func TestStreamNonce(t *testing.T) {
	bothServers(t, func(t *testing.T, dt bool) {
		srv, clientTLS := newTestServer(t, serverOptions{requireNonce: true, dpoptest: dt})
		signer := newSigner(t, true)
		conn := dial(t, srv, clientTLS, &dpopgrpc.Credentials{Signer: signer, Source: &tokenSource{srv: srv, signer: signer}})
		_, err := count(t.Context(), conn, 3)
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "use_dpop_nonce") {
			t.Errorf("first stream: err = %v; want Unauthenticated use_dpop_nonce", err)
		}
		got, err := count(t.Context(), conn, 3)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, []string{"1", "2", "3"}) {
			t.Errorf("stream = %v; want [1 2 3]", got)
		}
		if _, err := echo(t.Context(), conn, "hi"); err != nil {
			t.Fatal(err)
		}
		want := []string{"use_dpop_nonce", "ok", "ok"}
		if got := srv.outcomes(); !slices.Equal(got, want) {
			t.Errorf("server saw %v; want %v", got, want)
		}
		proof, _ := srv.lastProof()
		if n := claims(t, proof)["htu"]; n != "https://"+srv.addr+echoMethod {
			t.Errorf("htu = %v", n)
		}
	})
}

// A stream learns a rotated nonce from its response headers: the server
// still accepts the previous one, and announces the new one.
func TestStreamNonceFromHeader(t *testing.T) {
	bothServers(t, func(t *testing.T, dt bool) {
		srv, clientTLS := newTestServer(t, serverOptions{requireNonce: true, acceptPrevious: true, dpoptest: dt})
		signer := newSigner(t, false)
		conn := dial(t, srv, clientTLS, &dpopgrpc.Credentials{Signer: signer, Source: &tokenSource{srv: srv, signer: signer}})
		if _, err := echo(t.Context(), conn, "hi"); err != nil {
			t.Fatal(err)
		}
		srv.rotate()
		if _, err := count(t.Context(), conn, 2); err != nil {
			t.Fatal(err)
		}
		proof, _ := srv.lastProof()
		if claims(t, proof)["nonce"] == srv.currentNonce() {
			t.Fatal("the stream carried the new nonce before it was announced")
		}
		if _, err := echo(t.Context(), conn, "hi"); err != nil {
			t.Fatal(err)
		}
		proof, _ = srv.lastProof()
		if got, want := claims(t, proof)["nonce"], srv.currentNonce(); got != want {
			t.Errorf("nonce after the stream = %v; want the announced %v", got, want)
		}
		if got := srv.count("use_dpop_nonce"); got != 1 {
			t.Errorf("%d challenges; want 1 (the first RPC)", got)
		}
	})
}

// The Trace hears of proofs, challenges, retries and nonces, with the
// gRPC origin and no secret.
func TestTrace(t *testing.T) {
	bothServers(t, func(t *testing.T, dt bool) {
		srv, clientTLS := newTestServer(t, serverOptions{requireNonce: true, dpoptest: dt})
		signer := newSigner(t, false)
		var mu sync.Mutex
		var events []string
		add := func(e string) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e)
		}
		origin := "https://" + srv.addr
		creds := &dpopgrpc.Credentials{Signer: signer, Source: &tokenSource{srv: srv, signer: signer}, Trace: &dpop.Trace{
			ProofSigned: func(pi dpop.ProofInfo) {
				add("proof " + pi.Method + " " + strings.TrimPrefix(pi.HTU, origin) + " " + boolStr(pi.Nonce, "nonce") + " " + boolStr(pi.ATH, "ath"))
			},
			ChallengeReceived: func(ci dpop.ChallengeInfo) {
				add("challenge " + ci.ErrorCode + " " + strings.TrimPrefix(ci.Origin, origin) + " " + http401(ci.StatusCode))
			},
			Retry:        func(ri dpop.RetryInfo) { add("retry " + string(ri.Reason)) },
			NonceLearned: func(ni dpop.NonceInfo) { add("nonce " + boolStr(ni.Changed, "changed")) },
		}}
		conn := dial(t, srv, clientTLS, creds)
		if _, err := echo(t.Context(), conn, "hi"); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"proof POST " + echoMethod + " - ath",
			"nonce -",
			"challenge use_dpop_nonce  401",
			"retry nonce",
			"proof POST " + echoMethod + " nonce ath",
		}
		if !slices.Equal(events, want) {
			t.Errorf("events:\n%s\nwant:\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
		}
	})
}

func boolStr(b bool, s string) string {
	if b {
		return s
	}
	return "-"
}

func http401(code int) string {
	if code == 401 {
		return "401"
	}
	return "not 401"
}
