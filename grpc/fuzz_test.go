package dpopgrpc

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/dpopkit/dpop"
	"github.com/dpopkit/dpop/resource"
	"golang.org/x/oauth2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// FuzzAnswer feeds a server's answer to a unary RPC (its dpop-nonce,
// www-authenticate and date, as a hostile server may send them) to what
// the interceptor learns and decides: no panic, only a valid nonce
// stored, a retry only for the three challenges and once each, a clock
// offset within its bound.
func FuzzAnswer(f *testing.F) {
	f.Add("n-1", `DPoP error="use_dpop_nonce"`, "", true)
	f.Add("n-2", `DPoP error="invalid_dpop_proof", algs="ES256"`, "Mon, 02 Jan 2006 15:04:05 GMT", true)
	f.Add("", `DPoP error="invalid_token", error_description="revoked"`, "", true)
	f.Add("bad nonce", `Bearer realm="x", DPoP error=use_dpop_nonce`, "Sun, 06 Nov 1994 08:49:37 GMT", false)
	f.Add("\x7f", `DPoP error="use_dpop_nonce`, "yesterday", true)
	f.Fuzz(func(t *testing.T, nonce, challenge, date string, inTrailer bool) {
		c := &Credentials{Source: invalidatingSource{}}
		cl := &call{authority: "api.example.com", scheme: "https", nonce: "old", token: "tok"}
		md := metadata.MD{}
		for k, v := range map[string]string{mdNonce: nonce, mdWWWAuthenticate: challenge, mdDate: date} {
			if v != "" {
				md[k] = strings.Split(v, "\n")
			}
		}
		header, trailer := md, metadata.MD(nil)
		if inTrailer {
			header, trailer = nil, md
		}
		ctx := context.Background()
		err := status.Error(codes.Unauthenticated, "refused")
		retried := map[dpop.RetryReason]bool{}
		for range 4 {
			c.learn(ctx, cl, header, trailer)
			why := c.retryReason(ctx, cl, err, header, trailer)
			switch why {
			case "":
			case dpop.RetryNonce, dpop.RetryClock, dpop.RetryInvalidToken:
				if retried[why] {
					t.Fatalf("second retry for %s", why)
				}
				retried[why] = true
			default:
				t.Fatalf("retry reason %q", why)
			}
		}
		e, ok := c.servers.lookup(cl.authority)
		if ok && e.nonce != "" && mdNonceOf(metadata.MD{mdNonce: {e.nonce}}) == "" {
			t.Fatalf("stored invalid nonce %q", e.nonce)
		}
		if e.offset > maxClockOffset || e.offset < -maxClockOffset {
			t.Fatalf("offset %v beyond the bound", e.offset)
		}
		if c.retryReason(ctx, &call{authority: "a"}, errors.New("plain"), header, trailer) != "" {
			t.Fatal("retry for an error that is not Unauthenticated")
		}
	})
}

// invalidatingSource can always replace its token.
type invalidatingSource struct{}

func (invalidatingSource) Token() (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: "tok"}, nil
}
func (s invalidatingSource) TokenContext(context.Context) (*oauth2.Token, error) { return s.Token() }
func (invalidatingSource) Invalidate(*oauth2.Token) bool                         { return true }

// refusalMessage is the status message of a refusal: fixed words, a code
// and a reason, nothing a client sent (the challenge's own text is the
// resource package's, fuzzed there).
var refusalMessage = regexp.MustCompile(`^dpop: request refused(: [a-z_]+)? \([a-z_]+\)$`)

// FuzzServer feeds a call's metadata, as a hostile client may send it, to
// the Server's check: no panic, every refusal codes.Unauthenticated with
// one DPoP challenge, the date, and a status message of a fixed code and
// reason.
func FuzzServer(f *testing.F) {
	f.Add("api.example.com", "DPoP tok", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.c2ln")
	f.Add("", "Bearer tok", "")
	f.Add("[::1]:443", "DPoP a\nDPoP b", "x\ny")
	f.Add("a/b?c#d", "dpop   tok", "..")
	v, err := resource.NewVerifier(resource.Config{Tokens: noTokens{}})
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{Verifier: v}
	f.Fuzz(func(t *testing.T, authority, authorization, proof string) {
		md := metadata.MD{}
		for k, v := range map[string]string{":authority": authority, "authorization": authorization, "dpop": proof} {
			if v != "" {
				md[k] = strings.Split(v, "\n")
			}
		}
		ctx := metadata.NewIncomingContext(context.Background(), md)
		_, _, trailer, err := s.verify(ctx, "/dpop.test.Echo/Echo")
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("err = %v; want Unauthenticated", err)
		}
		if msg := status.Convert(err).Message(); !refusalMessage.MatchString(msg) {
			t.Fatalf("message %q is not made of a code and a reason only", msg)
		}
		if wa := trailer[mdWWWAuthenticate]; len(wa) != 1 || !strings.HasPrefix(wa[0], "DPoP ") {
			t.Fatalf("www-authenticate = %q; want one DPoP challenge", wa)
		}
		if d := trailer[mdDate]; len(d) != 1 {
			t.Fatalf("date = %q; want one", d)
		}
	})
}

// noTokens refuses every token.
type noTokens struct{}

func (noTokens) VerifyToken(context.Context, string) (*resource.AccessToken, error) {
	return nil, errors.New("no token is valid")
}
