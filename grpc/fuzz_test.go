package dpopgrpc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dpopkit/dpop"
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
