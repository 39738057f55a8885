package dpoptest

import "time"

// Request is the server's record of one HTTP request, for tests that count
// round trips or want to know why a request failed.
type Request struct {
	Time   time.Time
	Method string
	Path   string

	// Kind is what the request was for: "token", "par", "device",
	// "authorize", "metadata", "resource", "jwks" or "other".
	Kind string

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

	// ClientAuth is how the client authenticated at the token, PAR or
	// device authorization endpoint: "basic" (client_secret_basic, or a
	// public client's client_id in a Basic header with an empty password),
	// "post" (client_secret_post) or "none" (a public client sending only
	// client_id in the body).
	ClientAuth string

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
