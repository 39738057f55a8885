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
// [Transport.RoundTrip] takes the token from its Source, signs a proof with
// a new jti (128 random bits), the request's method (htm) and URL (htu:
// scheme, host and path as sent, without query or fragment), the time
// (iat), the token's SHA-256 (ath) and the origin's current server nonce,
// and sends a clone of the request with "Authorization: DPoP <token>" and
// "DPoP: <proof>". The caller's request is never modified. The header and
// public key of the proof are encoded once per key; a proof costs one
// signature and one allocation beyond it.
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
// # Retries
//
// When a response is a use_dpop_nonce challenge (a resource server's 401
// with a DPoP WWW-Authenticate challenge, or an authorization server's 400
// JSON error) with a nonce other than the one just sent, the Transport
// closes it and sends the request once more with a new proof carrying the
// new nonce. It retries at most once per request, only when the body can be
// sent again (no body, or Request.GetBody, which http.NewRequest sets for
// in-memory bodies), and never with the nonce just refused. Anything else
// is returned to the caller untouched: a 400 body peeked to find its error
// code still reads in full. [CheckResponse] describes a DPoP error in a
// response the Transport handed back.
//
// One retry covers a server that rotates its nonce from time to time. A
// server that rotates faster than a client's concurrent requests complete,
// and accepts few old nonces, may refuse a retry too; that second challenge
// is returned, never retried again ([NonceFromError] and [CheckResponse]
// tell the caller, who may resend).
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
// Proofs are verified in this module's tests by go-jose, never only by the
// code that made them; the dpoptest package is a strict authorization and
// resource server for tests of code that uses this package.
//
// [RFC 9449]: https://www.rfc-editor.org/rfc/rfc9449
package dpop
