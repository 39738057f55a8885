package dpop_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"
)

// Secrets the hostile-server tests send and then look for where they must
// not be: in error text, in %v output, at a server they must not reach.
const (
	clientSecret   = "cs-S3cretClientSecretValue"
	refreshSecret  = "rt-S3cretRefreshTokenValue"
	accessSecret   = "at-S3cretAccessTokenValue"
	codeSecret     = "code-S3cretAuthorizationCode"
	verifierSecret = "cv-S3cretCodeVerifierValue-0123456789abcdefghijklmnop"
)

// hostileServer is an httptest server on 127.0.0.1 that counts the
// requests it receives.
type hostileServer struct {
	*httptest.Server
	n atomic.Int32
}

// newHostile starts a server answering with h (over TLS when tls is set);
// the test closes it.
func newHostile(t *testing.T, tls bool, h http.HandlerFunc) *hostileServer {
	t.Helper()
	s := &hostileServer{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.n.Add(1)
		h(w, r)
	})
	if tls {
		s.Server = httptest.NewTLSServer(handler)
	} else {
		s.Server = httptest.NewServer(handler)
	}
	t.Cleanup(s.Close)
	return s
}

// requests returns how many requests s received.
func (s *hostileServer) requests() int { return int(s.n.Load()) }

// withClient returns a context whose oauth2.HTTPClient is hc.
func withClient(hc *http.Client) context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, hc)
}

// roundTripFunc is a Base answering requests in memory.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
