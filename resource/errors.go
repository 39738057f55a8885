package resource

import (
	"errors"
	"net/http"
	"strconv"
)

// ErrorCode is the error code of a refusal, sent in the error parameter of
// the WWW-Authenticate challenge (RFC 6750 §3.1, RFC 9449 §7.1).
type ErrorCode string

// Error codes of a refusal. A request that carries no credentials the
// server understands gets a challenge without a code (RFC 6750 §3.1).
const (
	ErrorInvalidRequest ErrorCode = "invalid_request"    // malformed request: 400
	ErrorInvalidToken   ErrorCode = "invalid_token"      // the token is refused: 401
	ErrorInvalidProof   ErrorCode = "invalid_dpop_proof" // the DPoP proof is refused: 401
	ErrorUseNonce       ErrorCode = "use_dpop_nonce"     // a fresh server nonce is needed (§9): 401
)

// Reason says why a request was refused, in a word fit for logs and
// metric labels: the check that failed. The set is small and fixed.
type Reason string

// Reasons of a refusal, about in the order the checks run.
const (
	ReasonMissingToken     Reason = "missing_token"     // no Authorization header
	ReasonScheme           Reason = "bad_scheme"        // an authentication scheme the server does not accept
	ReasonMalformed        Reason = "malformed"         // Authorization or DPoP header repeated or malformed (RFC 6750 §3.1)
	ReasonTooLarge         Reason = "too_large"         // a header longer than the server reads
	ReasonURL              Reason = "url"               // no public URL for the request (an unusable target or Host)
	ReasonForwarded        Reason = "forwarded"         // forwarding headers of a trusted proxy unusable or in conflict
	ReasonMissingProof     Reason = "missing_proof"     // no DPoP header (RFC 9449 §4.3 point 2)
	ReasonProofSyntax      Reason = "proof_syntax"      // not a JWT of JSON objects read one way (§4.3 point 2)
	ReasonProofHeader      Reason = "proof_header"      // typ, a forbidden header parameter, no jwk (§4.3 point 4)
	ReasonProofAlg         Reason = "proof_alg"         // an alg not accepted (§4.3 point 5)
	ReasonProofKey         Reason = "proof_key"         // a jwk that is not a public key of the alg's type and size (§4.3 points 6, 7)
	ReasonProofSignature   Reason = "proof_signature"   // the signature does not verify (§4.3 point 6)
	ReasonJTI              Reason = "jti"               // jti missing (§4.3 point 3)
	ReasonHTM              Reason = "htm"               // htm is not the request's method (§4.3 point 8)
	ReasonHTU              Reason = "htu"               // htu is not the request's public URL (§4.3 point 9)
	ReasonIAT              Reason = "iat"               // iat missing or outside the window (§4.3 point 11, §11.1)
	ReasonATH              Reason = "ath"               // ath missing or not the token's hash (§4.3 point 12)
	ReasonNonce            Reason = "nonce"             // a server nonce is required and missing or stale (§4.3 point 10, §9)
	ReasonToken            Reason = "token"             // the TokenVerifier refused the token
	ReasonTokenUnavailable Reason = "token_unavailable" // the TokenVerifier could not answer ([IssuerError], [ErrUnavailable])
	ReasonUnbound          Reason = "unbound_token"     // a token without cnf.jkt presented with DPoP (§7.1)
	ReasonBoundBearer      Reason = "bound_bearer"      // a DPoP-bound token presented as a Bearer token (§7.2)
	ReasonJKT              Reason = "jkt"               // the token is bound to another key than the proof's (§4.3 point 12)
	ReasonReplay           Reason = "replay"            // the proof was accepted before (§11.1)
	ReasonReplayQuota      Reason = "replay_quota"      // the proof key's share of the replay store is used up ([StoreFullError.PerKey])
	ReasonStoreUnavailable Reason = "store_unavailable" // the ReplayStore could not answer: fail closed
	ReasonCanceled         Reason = "canceled"          // the request's context ended during the checks
)

// Error is a refused request: every error [Verifier.Verify] and
// [Verifier.Check] return is one. Code and the status are what the client
// is told (RFC 9449 §7.1); Reason says which check failed; Err has the
// details for logs. Its text names the check and quotes what the client
// sent only escaped and cut short, never a token or a proof.
type Error struct {
	Code   ErrorCode // "" for a request without credentials the server accepts
	Reason Reason
	Err    error // the cause; may be nil

	bearer     bool // the request presented a Bearer token
	staleNonce bool // the proof carried a nonce not accepted
}

// Error returns "dpop: request refused: <reason>: <detail>".
func (e *Error) Error() string {
	msg := "dpop: request refused: " + string(e.Reason)
	if e.Err != nil {
		msg += ": " + trimPrefix(e.Err.Error())
	}
	return msg
}

// Unwrap returns the cause: a TokenVerifier's or ReplayStore's error
// ([ErrReplayed], [ErrUnavailable], a [*StoreFullError]), or a detail.
func (e *Error) Unwrap() error { return e.Err }

// Status returns the HTTP status of the answer: 400 for invalid_request,
// 503 when a TokenVerifier or the ReplayStore could not answer (the
// request may well be valid: the server fails closed), 401 otherwise.
func (e *Error) Status() int {
	switch {
	case e.Reason == ReasonStoreUnavailable || e.Reason == ReasonTokenUnavailable || e.Reason == ReasonCanceled:
		return http.StatusServiceUnavailable
	case e.Code == ErrorInvalidRequest:
		return http.StatusBadRequest
	}
	return http.StatusUnauthorized
}

// ErrUnavailable marks an error of a [TokenVerifier] that could not get an
// answer (a database or service it asks unreachable): the token may be
// valid, so the [Verifier] answers 503 instead of 401 invalid_token, and
// clients do not throw their tokens away. A TokenVerifier wraps it, or its
// error type's Is method reports it. The Verifier treats an
// [*IssuerError] of [JWTVerifier] and [Introspection] the same way.
var ErrUnavailable = errors.New("dpop: service unavailable")

// StoreFullError is the error of [MemoryStore.Claim] when recording one
// more proof would pass a bound: then the proof is refused, never a
// recorded one forgotten (that would let it be replayed).
type StoreFullError struct {
	// PerKey reports that the proof's key has MaxPerKey live proofs
	// recorded: that client is refused (401) and the others are not. When
	// false the whole store is full (MaxEntries) and the server answers
	// 503 until entries expire.
	PerKey bool
	Limit  int // the bound reached
}

// Error says which bound was reached.
func (e *StoreFullError) Error() string {
	if e.PerKey {
		return "dpop: replay store holds " + strconv.Itoa(e.Limit) + " live proofs of this key, its quota"
	}
	return "dpop: replay store full (" + strconv.Itoa(e.Limit) + " live proofs)"
}

func refuse(code ErrorCode, reason Reason, err error) *Error {
	return &Error{Code: code, Reason: reason, Err: err}
}

// proofErr is a refused proof (RFC 9449 §7.1 invalid_dpop_proof) with a
// fixed detail.
func proofErr(reason Reason, detail string) *Error {
	return &Error{Code: ErrorInvalidProof, Reason: reason, Err: errors.New(detail)}
}

func trimPrefix(s string) string {
	if len(s) >= 6 && s[:6] == "dpop: " {
		return s[6:]
	}
	return s
}
