package dpoptest

import (
	"context"
	"net/http"
	"time"
)

// Kind is what a recorded [Request] was for.
type Kind string

// The kinds of request the [Server] records.
const (
	KindToken     Kind = "token"     // the token endpoint (RFC 6749 §3.2)
	KindPAR       Kind = "par"       // pushed authorization requests (RFC 9126)
	KindRevoke    Kind = "revoke"    // the revocation endpoint (RFC 7009)
	KindDevice    Kind = "device"    // device authorization and verification (RFC 8628)
	KindAuthorize Kind = "authorize" // the authorization endpoint (RFC 6749 §3.1)
	KindMetadata  Kind = "metadata"  // RFC 8414 and RFC 9728 metadata
	KindJWKS      Kind = "jwks"      // the access token signing keys
	KindResource  Kind = "resource"  // the resource server (RFC 9449 §7)
	KindOther     Kind = "other"     // anything else
)

// ClientAuth is how a client authenticated, named as its
// token_endpoint_auth_method (RFC 7591 §2).
type ClientAuth string

// The client authentication methods the [Server] accepts.
const (
	// ClientSecretBasic is a secret in a Basic header (RFC 6749 §2.3.1);
	// also recorded for a public client that sends its client_id there with
	// an empty password, as oauth2.AuthStyleInHeader does.
	ClientSecretBasic ClientAuth = "client_secret_basic"
	// ClientSecretPost is client_id and client_secret in the form body.
	ClientSecretPost ClientAuth = "client_secret_post"
	// ClientAuthNone is a public client sending only client_id in the body.
	ClientAuthNone ClientAuth = "none"
)

// Request is the server's record of one HTTP request, for tests that count
// round trips or want to know why a request failed.
type Request struct {
	Time   time.Time
	Method string
	Path   string

	// Kind is what the request was for.
	Kind Kind

	// Proof is the DPoP proof that passed [Verifier.Verify], nil if the
	// request carried none or an invalid one. A proof refused only for its
	// nonce is kept here; Error then says use_dpop_nonce.
	Proof *Proof

	// ProofErr is the verifier's error message for an invalid proof.
	ProofErr string

	// Nonce is the nonce claim the proof carried, "" if none.
	Nonce string

	// Status is the HTTP status code answered, 0 while in progress.
	Status int

	// Error is the OAuth error code answered (RFC 6749 §5.2, RFC 6750 §3.1,
	// RFC 9449 §7.1, §8, §9), e.g. "use_dpop_nonce"; "" on success.
	Error string

	// GrantType is the grant_type of a token request.
	GrantType string

	// ClientAuth is how the client authenticated at an endpoint that
	// authenticates clients, "" elsewhere or before authentication.
	ClientAuth ClientAuth

	// ClientID is the client the request was made for, when known.
	ClientID string
}

// Requests returns a copy of the records of every request the server has
// seen, in order of arrival.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.reqs))
	for i, r := range s.reqs {
		out[i] = *r
	}
	return out
}

// ResetRequests forgets the requests recorded so far.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = nil
}

type recKey struct{}

// serveHTTP records every request around the mux.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &Request{Time: s.now(), Method: r.Method, Path: r.URL.Path, Kind: KindOther}
	slot := new(Request)
	*slot = *rec
	s.mu.Lock()
	s.reqs = append(s.reqs, slot)
	s.mu.Unlock()

	// net/http would write its own, unshifted clock (RFC 9110 §6.6.1).
	w.Header().Set("Date", rec.Time.UTC().Format(http.TimeFormat))
	sw := &statusWriter{ResponseWriter: w}
	s.mux.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), recKey{}, rec)))
	rec.Status = sw.status
	if rec.Status == 0 {
		rec.Status = http.StatusOK
	}
	s.mu.Lock()
	*slot = *rec
	s.mu.Unlock()
}

// record returns the Request record of r, filled in by the handlers.
func record(r *http.Request) *Request {
	if rec, ok := r.Context().Value(recKey{}).(*Request); ok {
		return rec
	}
	return new(Request) // a handler used outside the Server
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush sends buffered data to the client, if the underlying writer can.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}
