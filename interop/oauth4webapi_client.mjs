// A DPoP client written by someone else than this SDK's authors: panva's
// oauth4webapi. It gets a DPoP-bound access token from oidc-provider with
// the client credentials grant, then calls examples/api (the Go resource
// server under test), meeting its use_dpop_nonce challenge with one retry
// as RFC 9449 §9 says. Run by api_test.go; prints one JSON line:
//   {"alg", "jkt", "exchanges": [{"method","status","error","nonce"}...], "bodies": [...]}
//
// Environment: ISSUER, CLIENT_ID, CLIENT_SECRET, API (base URL of examples/api),
// ALG (ES256 by default).
import * as oauth from 'oauth4webapi';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const issuer = new URL(env('ISSUER'));
const api = env('API');
const alg = process.env.ALG || 'ES256';
const insecure = { [oauth.allowInsecureRequests]: true }; // loopback http only

const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oidc' }));
const client = { client_id: env('CLIENT_ID') };
const clientAuth = oauth.ClientSecretBasic(env('CLIENT_SECRET'));
const keyPair = await oauth.generateKeyPair(alg);
const DPoP = oauth.DPoP(client, keyPair);

// The token: the AS asks for its nonce first; retry once.
let token;
for (let i = 0; ; i++) {
  try {
    const res = await oauth.clientCredentialsGrantRequest(as, client, clientAuth, { scope: 'api:read' }, { ...insecure, DPoP });
    token = await oauth.processClientCredentialsResponse(as, client, res);
    break;
  } catch (err) {
    if (i === 0 && oauth.isDPoPNonceError(err)) continue;
    throw err;
  }
}
if (token.token_type.toLowerCase() !== 'dpop') throw new Error(`token_type ${token.token_type}`);

// The API: every exchange recorded; a use_dpop_nonce challenge retried once.
const exchanges = [];
const bodies = [];
async function call(method, path, body) {
  for (let i = 0; ; i++) {
    try {
      const res = await oauth.protectedResourceRequest(token.access_token, method, new URL(path, api), new Headers({ 'content-type': 'application/json' }), body, { ...insecure, DPoP });
      exchanges.push({ method, status: res.status, error: '', nonce: res.headers.get('dpop-nonce') || '' });
      bodies.push(await res.json());
      return;
    } catch (err) {
      const status = err.status || 0;
      const error = err.cause?.[0]?.parameters?.error || String(err.message || err);
      exchanges.push({ method, status, error, nonce: err.response?.headers.get('dpop-nonce') || '' });
      if (i === 0 && oauth.isDPoPNonceError(err)) continue;
      throw err;
    }
  }
}
await call('GET', '/api/items?page=1');
await call('POST', '/api/items', JSON.stringify({ name: 'x' }));
await call('GET', '/api/items/7');

// The key's thumbprint (RFC 7638), for the Go side to compare with jkt.
const jwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey);
const members = { EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'], RSA: ['e', 'kty', 'n'] }[jwk.kty];
const canon = JSON.stringify(Object.fromEntries(members.map((k) => [k, jwk[k]])));
const jkt = Buffer.from(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canon))).toString('base64url');

process.stdout.write(JSON.stringify({ alg, jkt, exchanges, bodies }) + '\n');
