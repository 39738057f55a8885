// Package dpop makes the requests of an [http.Client] carry DPoP proofs
// (RFC 9449, OAuth 2.0 Demonstrating Proof of Possession) and obtains
// DPoP-bound tokens through [golang.org/x/oauth2].
//
// A DPoP-bound access token is useless without the private key it is bound
// to: every request must carry a fresh proof, a JWT signed with that key
// over the request's method and URL and the token's hash. A stolen token,
// or a captured proof, does not let anyone else call the API.
//
// A [Signer] holds the key. A [Transport] signs a proof for every request.
// A [Config] (authorization code, refresh, device grant, PAR) or a
// [ClientCredentials] gets the tokens and builds the client:
//
//	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // or keystore.LoadOrCreate
//	signer, _ := dpop.NewSigner(key, nil)
//	cfg := &dpop.Config{OAuth2: oauthConfig, Signer: signer}
//	url := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)) // adds dpop_jkt
//	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
//	client := cfg.Client(ctx, tok) // every request signed; tokens refreshed with the same key
//
// # The flow of a request
//
// [Transport.RoundTrip] checks the request, takes the token from its
// Source (waiting for it no longer than the request's context), signs a
// proof with a new jti (128 random bits), the request's method (htm) and
// URL (htu: scheme, host and path as sent, without query or fragment), the
// time (iat), the token's SHA-256 (ath) and the origin's current server
// nonce, and sends a clone of the request with "Authorization: DPoP
// <token>" and "DPoP: <proof>". The caller's request is never modified. It
// then hands the response to the retry policy, which either returns it or
// sends the request again with a new proof. The header and public key of
// the proof are encoded once per key; a proof costs one signature and one
// allocation beyond it.
//
// # Nonces
//
// Servers may require a nonce they chose in each proof (RFC 9449 §8, §9).
// The Transport remembers the valid DPoP-Nonce of every response, whatever
// its status, per origin (scheme, host and port) in a [NonceCache], and
// uses it in the next proof to that origin. The token machinery of Config
// and ClientCredentials keeps the authorization server's nonces apart from
// the resource server's, so servers that share an origin do not trade
// nonces at a round trip each.
//
// While the cache knows nothing of an origin, the first request to it goes
// alone and the others wait (at most a second, and no longer than their
// contexts) for its response headers, then go with what it learned: a
// nonce, or that the origin sent none. C concurrent first requests thus
// cost at most C+1 requests on the wire, and a server that needs no nonce
// costs the waiters one round trip, once.
//
// # Retries
//
// The retry policy sends a request again, with a new proof (new jti and
// iat), for three reasons, each with its own bound, so it never loops:
//
//   - a use_dpop_nonce challenge (a resource server's 401 with a DPoP
//     WWW-Authenticate challenge, or an authorization server's 400 JSON
//     error) with a nonce not yet tried for the request: once by default,
//     or as many times as [Transport.NonceRetries] returns for the request
//     (at most 5);
//   - an invalid_dpop_proof whose Date header shows that the client's clock
//     is 5 seconds or more from the server's (§11.1): once, and the
//     offset is kept for that origin only, until its responses agree
//     with the client's clock again (the client's clock is [Transport.Now];
//     when the retry is refused too, [ChallengeError.ClockSkew] says by
//     how much the clocks differ);
//   - a 401 invalid_token (RFC 6750 §3.1) for a token that the Source, a
//     [TokenSource], can replace: once, with one token request shared by
//     every request that saw the refusal.
//
// A request whose body cannot be sent again (a body without
// Request.GetBody, which http.NewRequest sets for in-memory bodies) is
// never retried: its response is returned as it is. A challenge's body is
// drained, briefly, and closed before the retry; any response not retried
// is returned untouched, and a 400 body peeked to find its error code
// still reads in full. [CheckResponse] describes a DPoP error the caller
// received.
//
// A server that rotates its nonce after a few proofs and accepts few old
// ones may challenge a retry again when many requests run at once; a
// larger NonceRetries answers that at the cost of more round trips.
//
// net/http itself may send an idempotent request again, with the same
// headers and therefore the same proof, when a kept-alive connection turns
// out to be closed. A server with a jti replay cache may then refuse the
// copy with invalid_dpop_proof; that error reaches the caller.
//
// # Keys
//
// Any [crypto.Signer] works: ECDSA P-256 (ES256, the default choice),
// P-384, P-521, Ed25519 (EdDSA) and RSA of 2048 bits or more (PS256, or
// RS256 by option), including keys held by an HSM, a KMS or a TPM. The
// keystore package keeps a key across runs (OS keychain or files), because
// a refresh token bound to a lost key is a lost login.
//
// # Redirects
//
// When an [http.Client] follows a redirect to an origin other than that of
// the first request of the chain, the Transport sends that hop a proof
// without ath and no access token: the token goes only to the origin the
// caller addressed. A redirect within that origin keeps the token.
//
// # Observability
//
// A [Trace] is told of each proof signed, challenge received, retry and its
// reason, nonce learned, clock offset learned, token request and refused
// Bearer token; set it on [Transport.Trace] or a grant's Trace field.
// A nil Trace costs nothing, and no callback is handed a secret. Each
// event says which server the request went to (the authorization server
// or the API) and the request's method and path, never its query.
// [NewLogTrace] logs the events with log/slog, refusals, downgrades and
// failed token requests at warn level, the routine at debug level; and
// [JoinTraces] combines traces. The module github.com/dpopkit/dpop/otel
// (its own go.mod, so this one needs no OpenTelemetry) turns a Trace into
// metrics and events on the caller's span.
//
// # Security properties
//
// DPoP protects against the use of a leaked or stolen access or refresh
// token without the private key (RFC 9449 §11), and a proof only fits the
// one method and URL it names, for a short time, once. It does not protect
// against an attacker who can use the key: malware in the client process,
// or one who can make the client sign (§11.4, pre-generated proofs need a
// server nonce to stop). It does not replace TLS, and it does not hide the
// request from whoever terminates TLS. Tokens of type Bearer are refused
// by default, since a server that ignores DPoP, or an attacker who strips
// the DPoP header in transit, would otherwise downgrade the client
// silently ([TokenTypeError]).
//
// Where secrets go, and where they never appear:
//
//   - The access token goes only to the origin the caller addressed; a
//     redirect to another origin (an IPv6 zone counts) gets a proof
//     without it. Requests that carry client credentials, codes, PKCE
//     verifiers, refresh tokens or client assertions (token, PAR, device
//     authorization, revocation) follow no redirect at all, and [Discover]
//     follows none to another origin and accepts only https endpoints
//     (http on loopback).
//   - No private key, token, client secret, client assertion or proof
//     appears in the text of an error or in what fmt (any verb), log/slog
//     or encoding/json make of a type of this package, nor a password or
//     query of an endpoint URL. A server's own words (an error code,
//     error_description, algs, a token_type, a host or path it
//     redirected to) reach an error's fields and a trace event cut short,
//     with every character that is not printable replaced, and an
//     error's text escaped; a server's response body never is shown
//     ([TokenError] keeps it reachable, on purpose, through its
//     [oauth2.RetrieveError]).
//   - [Trace] callbacks and [NewLogTrace] logs are given no secret.
//   - What a server chooses for a person to read (the device grant's user
//     code and verification URIs, the endpoints [Discover] accepts) is
//     printable text of bounded length, without control or bidirectional
//     characters, and its URIs are https (http on loopback).
//
// Printing follows one convention: every type that holds or reaches a
// secret ([Signer], [AssertionSigner], [ProofOptions], [Transport],
// [Config], [ClientCredentials], [DeviceStatus] and the token sources
// they return) shows the same summary (algorithm, thumbprint, client ID,
// endpoints without userinfo or query, which parts are set), never the
// secret, to every encoder: its Format method to every verb of package
// fmt (and no String), its LogValue method to log/slog's handlers, text
// and JSON, and its MarshalJSON method to encoding/json. The exported
// struct types other than Transport, which must not be copied, take value
// receivers, so a value and a pointer print alike.
//
// What is bounded:
//
//   - Waits: for a token, for the first request to an origin, and for a
//     retry, by the request's context; a token request that others wait for
//     by the context of its source, or a minute when that has no deadline;
//     every request of the grants by the caller's context; device polling
//     by the device code's expiry, and at most an hour.
//   - Bodies: a 400 body is peeked for at most 4 KiB and a second, a
//     challenge's body drained for at most 64 KiB and 50 ms; token, PAR,
//     device authorization and revocation error responses are read up to
//     256 KiB (a successful revocation's body is not read), metadata up to
//     1 MiB. Nonces are at most 512 bytes, a NonceCache holds a
//     bounded number of origins.
//   - Retries: as above, each reason its own small bound; a token request
//     the endpoint answered 429 or 5xx is tried once more, once for all
//     the callers waiting for it.
//
// Proofs are verified in this module's tests by go-jose, never only by the
// code that made them; the dpoptest package is a strict authorization and
// resource server for tests of code that uses this package.
//
// [RFC 9449]: https://www.rfc-editor.org/rfc/rfc9449
package dpop
