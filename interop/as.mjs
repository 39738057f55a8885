// Authorization server for the interop tests: panva's oidc-provider, configured
// for DPoP with server-issued nonces required everywhere, and a headless
// (browser-free) login of the test user "alice".
//
// Two profiles, one process each (run.sh starts both):
//   dpop   (default) clients "backend" (client_secret_basic, client credentials)
//          and "cli" (public native app: code+PKCE, refresh, device grant).
//   fapi2  features.fapi profile "2.0": PAR required, PKCE S256, DPoP (PS256,
//          ES256, EdDSA) required, private_key_jwt only; one confidential native
//          client "fapi" (code, refresh, client credentials) whose key pairs are
//          generated at start; the private keys are written to AS_CLIENT_KEY_DIR.
// The interaction (headless login), account, keys and resource server are the
// same code in both, so the headless login path cannot drift between them.
//
// Environment:
//   RS_URL         resource server base URL, e.g. http://127.0.0.1:40001 (required);
//                  it is the only resource indicator, the default resource, and the
//                  audience of the JWT access tokens.
//   AS_PROFILE     "dpop" (default) or "fapi2".
//   AS_CLIENT_KEY_DIR (fapi2, required) directory for the client's private keys:
//                  fapi-client.jwk (ES256) and fapi-client.jwks (ES256, PS256, EdDSA;
//                  each with kid and alg), written before the issuer file.
//   AS_PORT        port to listen on (default 0 = a free port chosen by the kernel).
//   AS_ISSUER_FILE when set, the issuer URL is written there once listening.
// The issuer URL is also printed on stdout as "issuer=<url>".
// Listens on 127.0.0.1 only. Logs one line per request to stderr.

import { randomBytes } from 'node:crypto';
import { writeFileSync, renameSync } from 'node:fs';
import http from 'node:http';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const HOST = '127.0.0.1';
const RS_URL = process.env.RS_URL;
if (!RS_URL || !/^http:\/\/127\.0\.0\.1:\d+$/.test(RS_URL)) {
  console.error('as: RS_URL must be set to http://127.0.0.1:<port> (no trailing slash)');
  process.exit(2);
}
const RS_SCOPE = 'api:read api:write';
const TEST_ACCOUNT = 'alice';

const log = (...a) => console.error('as:', ...a);

// --- keys: generated at start, never persisted --------------------------------
async function signingJwk(alg, opts) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true, ...opts });
  const jwk = await jose.exportJWK(privateKey);
  return { ...jwk, alg, use: 'sig', kid: await jose.calculateJwkThumbprint(jwk) };
}
const jwks = {
  keys: [
    await signingJwk('ES256'), // access tokens (JWT) and ID tokens
    await signingJwk('RS256', { modulusLength: 2048 }), // ID tokens for clients that default to RS256
  ],
};

// --- the test account ----------------------------------------------------------
async function findAccount(_ctx, sub) {
  if (sub !== TEST_ACCOUNT) return undefined;
  return {
    accountId: sub,
    async claims() {
      return { sub, name: 'Alice Interop', email: 'alice@example.test', email_verified: true };
    },
  };
}

// --- minimal HTML pages (stable, easy to parse headlessly) -------------------
const page = (title, body) => `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${title}</title></head>
<body>${body}</body></html>`;

// --- start listening first: the issuer needs the real port ----------------------
const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(process.env.AS_PORT || 0), HOST, resolve);
});
const { port } = server.address();
const ISSUER = `http://${HOST}:${port}`;

// --- the two profiles ------------------------------------------------------------
// dpop: today's configuration. fapi2: the FAPI 2.0 Security Profile (final,
// 2025) as oidc-provider implements it, plus what the profile asks of the AS
// that oidc-provider leaves to configuration (PAR required, DPoP required with
// nonces, private_key_jwt only, PS256/ES256/EdDSA only).
const PROFILE = process.env.AS_PROFILE || 'dpop';
const FAPI_ALGS = ['ES256', 'PS256', 'EdDSA'];

async function dpopProfile() {
  return {
    clients: [
      {
        // Confidential backend: client credentials only.
        client_id: 'backend',
        client_secret: 'backend-secret',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        dpop_bound_access_tokens: true,
      },
      {
        // Public native app (CLI): code + PKCE on a loopback redirect (any port),
        // refresh tokens, device grant.
        client_id: 'cli',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: [
          'authorization_code',
          'refresh_token',
          'urn:ietf:params:oauth:grant-type:device_code',
        ],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
        id_token_signed_response_alg: 'ES256',
        dpop_bound_access_tokens: true,
      },
    ],
    features: {
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false },
      deviceFlow: { enabled: true, ...deviceFlowPages },
    },
    enabledJWA: {
      dPoPSigningAlgValues: ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'RS256'],
    },
    issueRefreshToken: async (_ctx, client) => client.clientId === 'cli' && client.grantTypeAllowed('refresh_token'),
  };
}

// writeClientKeys generates the FAPI client's key pairs (one per alg) and
// writes the private JWKs to dir; it returns the public JWK Set to register.
async function writeClientKeys(dir) {
  const priv = [];
  for (const [alg, opts] of [['ES256'], ['PS256', { modulusLength: 2048 }], ['EdDSA', { crv: 'Ed25519' }]]) {
    const { privateKey } = await jose.generateKeyPair(alg, { extractable: true, ...opts });
    const jwk = await jose.exportJWK(privateKey);
    const { d, p, q, dp, dq, qi, ...pub } = jwk;
    priv.push({ ...jwk, alg, use: 'sig', kid: await jose.calculateJwkThumbprint(pub) });
  }
  const write = (name, obj) => {
    const file = `${dir}/${name}`;
    writeFileSync(`${file}.tmp`, `${JSON.stringify(obj)}\n`, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  };
  write('fapi-client.jwk', priv[0]);
  write('fapi-client.jwks', { keys: priv });
  return {
    keys: priv.map(({ d, p, q, dp, dq, qi, ...pub }) => pub),
  };
}

async function fapi2Profile() {
  const dir = process.env.AS_CLIENT_KEY_DIR;
  if (!dir) {
    console.error('as: AS_PROFILE=fapi2 needs AS_CLIENT_KEY_DIR');
    process.exit(2);
  }
  return {
    clients: [
      {
        // Confidential native app: private_key_jwt, code + PKCE through PAR on
        // a loopback redirect (any port, as for "cli"), refresh tokens, client
        // credentials.
        client_id: 'fapi',
        application_type: 'native',
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: await writeClientKeys(dir),
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
        id_token_signed_response_alg: 'ES256',
        dpop_bound_access_tokens: true,
      },
    ],
    clientAuthMethods: ['private_key_jwt'],
    features: {
      fapi: { enabled: true, profile: '2.0' },
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: true },
      deviceFlow: { enabled: false },
    },
    enabledJWA: {
      dPoPSigningAlgValues: FAPI_ALGS,
      clientAuthSigningAlgValues: FAPI_ALGS,
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  };
}

// --- device flow pages (dpop profile) -------------------------------------------
const deviceFlowPages = {
  // GET /device (no user_code): a form a headless client can fill.
  async userCodeInputSource(ctx, form, _out, err) {
    const msg = err ? `<p id="error">${err.name || 'error'}: ${err.message || ''}</p>` : '';
    ctx.body = page('device: enter code', `<h1>Enter the code</h1>${msg}${form}<button type="submit" form="op.deviceInputForm">Continue</button>`);
  },
  // POST /device (user_code, no confirm): form with hidden xsrf, user_code, confirm=yes.
  async userCodeConfirmSource(ctx, form, client, _deviceInfo, userCode) {
    ctx.body = page('device: confirm', `<h1>Confirm device</h1><p>client <b>${client.clientId}</b> code <code id="user_code">${userCode}</code></p>${form}<button type="submit" form="op.deviceConfirmForm">Continue</button>`);
  },
  async successSource(ctx) {
    ctx.body = page('device: approved', '<h1 id="device-approved">DEVICE APPROVED</h1>');
  },
};

let profile;
switch (PROFILE) {
  case 'dpop': profile = await dpopProfile(); break;
  case 'fapi2': profile = await fapi2Profile(); break;
  default:
    console.error(`as: AS_PROFILE must be dpop or fapi2, not ${PROFILE}`);
    process.exit(2);
}

const provider = new Provider(ISSUER, {
  clients: profile.clients,
  ...(profile.clientAuthMethods && { clientAuthMethods: profile.clientAuthMethods }),
  jwks,
  findAccount,
  responseTypes: ['code'],
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    ...profile.features,
    devInteractions: { enabled: false },
    dPoP: {
      enabled: true,
      nonceSecret: randomBytes(32),
      requireNonce: () => true,
    },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: false },
    resourceIndicators: {
      enabled: true,
      // Requests without a resource parameter get the RS.
      defaultResource: async () => RS_URL,
      // Token endpoint (code, refresh, device): use the resource granted at
      // authorization time even when "openid" was requested, so that the
      // access token is always the RS's JWT and no resource parameter is needed.
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (resourceIndicator !== RS_URL) {
          throw new Provider.errors.InvalidTarget(`unknown resource indicator; the only one is ${RS_URL}`);
        }
        return {
          scope: RS_SCOPE,
          audience: RS_URL,
          accessTokenTTL: 10 * 60,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  enabledJWA: profile.enabledJWA,
  issueRefreshToken: profile.issueRefreshToken,
  // Always rotate refresh tokens: clients must keep the newest one.
  rotateRefreshToken: () => true,
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: {
    AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL || 10 * 60,
    ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL || 10 * 60,
    DeviceCode: 10 * 60,
    Grant: 60 * 60,
    IdToken: 10 * 60,
    Interaction: 10 * 60,
    RefreshToken: 24 * 60 * 60,
    Session: 60 * 60,
  },
  clientBasedCORS: () => false,
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('error', `<h1 id="error">${out.error}</h1><p id="error_description">${out.error_description || ''}</p>`);
  },
});

for (const ev of ['server_error', 'grant.error', 'authorization.error', 'backchannel.error',
  'pushed_authorization_request.error', 'device_authorization.error', 'code_verification.error',
  'revocation.error', 'userinfo.error', 'introspection.error']) {
  provider.on(ev, (ctx, err) => {
    const detail = err?.error_detail ? ` (${err.error_detail})` : '';
    log(`${ev}: ${err?.error || err?.name}: ${err?.error_description || err?.message}${detail}` + (ev === 'server_error' ? `\n${err?.stack}` : ''));
  });
}

// --- headless interactions --------------------------------------------------------
// GET /interaction/:uid finishes the pending prompt right away:
//   login   → { login: { accountId: 'alice' } }
//   consent → a Grant with every missing OIDC scope/claim and resource scope.
// oidc-provider answers with a 303 to the resume endpoint (/auth/:uid or
// /device/:uid), which continues to the next prompt or to the redirect_uri /
// device success page.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  let result;
  switch (prompt.name) {
    case 'login':
      result = { login: { accountId: TEST_ACCOUNT } };
      break;
    case 'consent': {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const d = prompt.details;
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      if (d.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
      }
      result = { consent: { grantId: await grant.save() } };
      break;
    }
    default:
      result = { error: 'access_denied', error_description: `unsupported prompt ${prompt.name}` };
  }
  log(`interaction ${details.uid}: ${prompt.name} → ${Object.keys(result).join(',')}`);
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

const callback = provider.callback();
server.on('request', (req, res) => {
  const started = Date.now();
  res.on('finish', () => {
    log(`${req.method} ${req.url.split('?')[0]} → ${res.statusCode} (${Date.now() - started}ms)`);
  });
  const path = req.url.split('?')[0];
  if (req.method === 'GET' && /^\/interaction\/[^/]+$/.test(path)) {
    interaction(req, res).catch((err) => {
      log(`interaction failed: ${err.stack || err}`);
      if (!res.headersSent) {
        res.writeHead(400, { 'content-type': 'text/plain' });
      }
      res.end(`interaction failed: ${err.message}\n`);
    });
    return;
  }
  callback(req, res);
});

if (process.env.AS_ISSUER_FILE) {
  const tmp = `${process.env.AS_ISSUER_FILE}.tmp`;
  writeFileSync(tmp, `${ISSUER}\n`);
  renameSync(tmp, process.env.AS_ISSUER_FILE);
}
console.log(`issuer=${ISSUER}`);
log(`listening, profile ${PROFILE}, issuer ${ISSUER}, resource ${RS_URL}`);

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
