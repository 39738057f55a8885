// Resource server for the interop tests: node:http + jose, independent of the
// Go SDK. Every path under /api/ requires a DPoP-bound JWT access token from the
// AS and a DPoP proof carrying a nonce this server issued (RFC 9449 §7, §9).
//
// Environment:
//   RS_PORT        port to listen on (default 0 = a free port chosen by the kernel).
//   RS_URL_FILE    when set, the base URL is written there once listening.
//   AS_ISSUER      issuer of the access tokens, or
//   AS_ISSUER_FILE a file holding it (read lazily, on the first /api/ request, so
//                  the RS can start before the AS, whose config needs the RS URL).
//   AS_FAPI_ISSUER_FILE  optional: a file holding a second trusted issuer (the
//                  FAPI 2.0 AS), read lazily the same way. A token is checked
//                  against the JWKS of the AS its iss names.
// Prints "rs=<base url>" on stdout. Listens on 127.0.0.1 only.
//
// Nonces: a random 128-bit value; it rotates after every NONCE_ROTATE_EVERY (5)
// accepted requests. The current nonce and the one just before it are accepted;
// any other (or none) gets 401 use_dpop_nonce. Every response carries the current
// nonce in DPoP-Nonce. POST /_rs/rotate-nonce (no auth) rotates twice, so the
// nonce the client holds is no longer accepted (forces a use_dpop_nonce challenge).
//
// Success: 200 application/json
//   {method, path, sub, client_id, scope, jkt, body_sha256, body_len}
// body_sha256 is the hex SHA-256 of the whole request body (streamed, ≤ 16 MiB).

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import http from 'node:http';

import * as jose from 'jose';

const HOST = '127.0.0.1';
const MAX_BODY = 16 << 20;
const IAT_WINDOW = 60; // seconds, both directions
const NONCE_ROTATE_EVERY = 5;
const ALGS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'RS256'];
const ALGS_PARAM = ALGS.join(' ');

const log = (...a) => console.error('rs:', ...a);

// --- issuers / JWKS (lazy) --------------------------------------------------------
// Each trusted AS is known by its issuer, given directly or in a file (read
// lazily: the AS starts after the RS, whose URL its configuration needs).
const trusted = [
  { env: process.env.AS_ISSUER, file: process.env.AS_ISSUER_FILE },
  { file: process.env.AS_FAPI_ISSUER_FILE },
].filter((t) => t.env || t.file);

async function loadAS(t) {
  if (t.state) return t.state;
  let issuer = t.env;
  if (!issuer && t.file) {
    try {
      issuer = readFileSync(t.file, 'utf8').trim();
    } catch {
      // not there yet
    }
  }
  if (!issuer) return undefined;
  const res = await fetch(`${issuer}/.well-known/openid-configuration`);
  if (!res.ok) throw new Error(`AS discovery: HTTP ${res.status}`);
  const meta = await res.json();
  if (meta.issuer !== issuer) throw new Error(`AS discovery: issuer mismatch ${meta.issuer}`);
  t.state = { issuer, jwks: jose.createRemoteJWKSet(new URL(meta.jwks_uri)) };
  log(`trusting issuer ${issuer}, jwks ${meta.jwks_uri}`);
  return t.state;
}

// getAS returns the trusted AS that issued token (by its unverified iss; the
// signature is then checked against that AS's JWKS), or undefined.
async function getAS(token) {
  let iss;
  try {
    iss = jose.decodeJwt(token).iss;
  } catch {
    return undefined;
  }
  for (const t of trusted) {
    const as = await loadAS(t);
    if (as && as.issuer === iss) return as;
  }
  return undefined;
}

// --- nonces ------------------------------------------------------------------------
const newNonce = () => randomBytes(16).toString('base64url');
let nonce = newNonce();
let previousNonce;
let acceptedSinceRotation = 0;
function rotate() {
  previousNonce = nonce;
  nonce = newNonce();
  acceptedSinceRotation = 0;
}

// --- jti replay cache: jti → expiry (ms) ----------------------------------------
const seenJti = new Map();
function sweepJti(now) {
  for (const [k, exp] of seenJti) {
    if (exp < now) seenJti.delete(k);
  }
}

class Fail extends Error {
  constructor(error, description, status = 401) {
    super(description);
    this.error = error;
    this.status = status;
  }
}

const b64sha256 = (s) => createHash('sha256').update(s).digest('base64url');

function normaliseHtu(u) {
  const parsed = URL.parse(u);
  if (!parsed) return undefined;
  parsed.search = '';
  parsed.hash = '';
  return parsed.href;
}

let baseURL; // set once listening

async function authorize(req, path) {
  // Authorization: DPoP <token>
  const authz = req.headers.authorization;
  if (!authz) throw new Fail(undefined, undefined); // RFC 6750 §3.1: no error code
  const m = /^(\S+)\s+(\S+)$/.exec(authz);
  if (!m) throw new Fail('invalid_request', 'malformed Authorization header', 400);
  if (m[1].toLowerCase() !== 'dpop') {
    throw new Fail('invalid_token', `access token must be presented with the DPoP scheme, not ${m[1]}`);
  }
  const token = m[2];

  // exactly one DPoP header
  const raw = req.headersDistinct.dpop;
  if (!raw || raw.length === 0) throw new Fail('invalid_dpop_proof', 'DPoP header missing');
  if (raw.length !== 1 || raw[0].includes(',')) throw new Fail('invalid_dpop_proof', 'more than one DPoP header');
  const proof = raw[0].trim();

  // the access token (JWT from oidc-provider)
  const as = await getAS(token);
  if (!as) throw new Fail('invalid_token', 'access token: not a JWT from a trusted issuer');
  const { issuer, jwks } = as;
  let at;
  try {
    ({ payload: at } = await jose.jwtVerify(token, jwks, {
      issuer,
      audience: baseURL,
      typ: 'at+jwt',
      algorithms: ['ES256'],
    }));
  } catch (err) {
    throw new Fail('invalid_token', `access token: ${err.code || ''} ${err.message}`.trim());
  }
  const jkt = at.cnf?.jkt;
  if (typeof jkt !== 'string') throw new Fail('invalid_token', 'access token is not DPoP-bound (no cnf.jkt)');

  // the proof
  let header;
  let claims;
  try {
    ({ payload: claims, protectedHeader: header } = await jose.jwtVerify(proof, jose.EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: ALGS,
    }));
  } catch (err) {
    throw new Fail('invalid_dpop_proof', `proof: ${err.code || ''} ${err.message}`.trim());
  }
  if (header.jwk.d !== undefined || header.jwk.k !== undefined) {
    throw new Fail('invalid_dpop_proof', 'proof jwk must be a public key');
  }
  if (typeof claims.jti !== 'string' || claims.jti.length < 16) {
    throw new Fail('invalid_dpop_proof', 'proof jti missing or too short');
  }
  if (typeof claims.iat !== 'number') throw new Fail('invalid_dpop_proof', 'proof iat missing');
  const now = Date.now();
  if (Math.abs(now / 1000 - claims.iat) > IAT_WINDOW) {
    throw new Fail('invalid_dpop_proof', `proof iat not within ${IAT_WINDOW}s of now`);
  }
  if (claims.htm !== req.method) throw new Fail('invalid_dpop_proof', `htm mismatch (want ${req.method})`);
  const wantHtu = normaliseHtu(baseURL + path);
  if (typeof claims.htu !== 'string' || normaliseHtu(claims.htu) !== wantHtu) {
    throw new Fail('invalid_dpop_proof', `htu mismatch (want ${wantHtu})`);
  }
  if (claims.ath !== b64sha256(token)) throw new Fail('invalid_dpop_proof', 'ath mismatch');
  const thumbprint = await jose.calculateJwkThumbprint(header.jwk, 'sha256');
  if (thumbprint !== jkt) throw new Fail('invalid_token', 'proof key does not match the token\'s cnf.jkt');

  // replay: a signed, otherwise valid proof is used up even when its nonce is refused
  sweepJti(now);
  const jtiKey = `${thumbprint}:${claims.jti}`;
  if (seenJti.has(jtiKey)) throw new Fail('invalid_dpop_proof', 'proof jti replayed');
  seenJti.set(jtiKey, now + 2 * IAT_WINDOW * 1000);

  // nonce: current or previous
  if (claims.nonce === undefined) throw new Fail('use_dpop_nonce', 'resource server requires a nonce in the DPoP proof');
  if (claims.nonce !== nonce && (previousNonce === undefined || claims.nonce !== previousNonce)) {
    throw new Fail('use_dpop_nonce', 'stale or unknown DPoP nonce');
  }

  acceptedSinceRotation += 1;
  if (acceptedSinceRotation >= NONCE_ROTATE_EVERY) rotate();

  return { at, jkt: thumbprint };
}

// Reads the whole body, hashing as it streams. Rejects above MAX_BODY.
function readBody(req) {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let len = 0;
    let tooBig = false;
    req.on('data', (chunk) => {
      len += chunk.length;
      if (len > MAX_BODY) tooBig = true; // keep draining, stop hashing
      if (!tooBig) h.update(chunk);
    });
    req.on('end', () => resolve({ len, sha256: h.digest('hex'), tooBig }));
    req.on('error', reject);
  });
}

function send(res, status, obj, extra = {}) {
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'dpop-nonce': nonce,
    ...extra,
  });
  res.end(body);
}

async function handle(req, res) {
  const path = req.url.split('?')[0].split('#')[0];

  if (path === '/healthz') {
    await readBody(req);
    return send(res, 200, { ok: true });
  }
  if (path === '/_rs/rotate-nonce' && req.method === 'POST') {
    await readBody(req);
    rotate();
    rotate();
    return send(res, 200, { rotated: true });
  }
  if (!path.startsWith('/api/')) {
    await readBody(req);
    return send(res, 404, { error: 'not_found' });
  }

  const body = await readBody(req);
  if (body.tooBig) return send(res, 413, { error: 'request body larger than 16 MiB' });

  let result;
  try {
    result = await authorize(req, path);
  } catch (err) {
    if (!(err instanceof Fail)) throw err;
    const parts = [];
    if (err.error) {
      parts.push(`error="${err.error}"`);
      if (err.message) parts.push(`error_description="${err.message.replace(/["\\]/g, '')}"`);
    }
    parts.push(`algs="${ALGS_PARAM}"`);
    log(`${req.method} ${path} → ${err.status} ${err.error || '(no credentials)'}: ${err.message}`);
    return send(res, err.status, { error: err.error || 'unauthorized', error_description: err.message || undefined }, {
      'www-authenticate': `DPoP ${parts.join(', ')}`,
    });
  }
  const { at, jkt } = result;
  send(res, 200, {
    method: req.method,
    path,
    sub: at.sub,
    client_id: at.client_id,
    scope: at.scope,
    jkt,
    body_sha256: body.sha256,
    body_len: body.len,
  });
}

const server = http.createServer((req, res) => {
  const started = Date.now();
  res.on('finish', () => {
    log(`${req.method} ${req.url.split('?')[0]} → ${res.statusCode} (${Date.now() - started}ms)`);
  });
  handle(req, res).catch((err) => {
    log(`internal error: ${err.stack || err}`);
    if (!res.headersSent) send(res, 500, { error: 'server_error', error_description: String(err.message) });
    else res.destroy();
  });
});
server.requestTimeout = 60_000;

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(process.env.RS_PORT || 0), HOST, resolve);
});
baseURL = `http://${HOST}:${server.address().port}`;
if (process.env.RS_URL_FILE) {
  const tmp = `${process.env.RS_URL_FILE}.tmp`;
  writeFileSync(tmp, `${baseURL}\n`);
  renameSync(tmp, process.env.RS_URL_FILE);
}
console.log(`rs=${baseURL}`);
log(`listening on ${baseURL}`);

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
