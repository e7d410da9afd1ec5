// An independent OIDC provider for the tests: panva's `oidc-provider` (a certified
// implementation), not written by us and not `oidc-provider-mock`.
//
//   node oidc-server.mjs PORT [ISSUER] [KEYS_FILE]
//
// ISSUER defaults to http://localhost:PORT (give one ending in "/" to test exact issuer
// comparison). KEYS_FILE, when given, holds the signing keys so that two providers can share
// them (as tenants of one multi-tenant provider do); it is created when missing.
//
// Test-only routes, beside the protocol:
//   PUT  /test/users/:sub   the person's claims (email, name, groups ...), JSON
//   POST /test/rotate       new signing keys with new key ids, at once (the old ones are gone)
//   GET  /test/keys         the private signing keys now in use (to forge tokens in tests)
// Login is automatic: the authorization request's `login_hint` names the person.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = process.argv[3] || `http://localhost:${port}`;
const keysFile = process.argv[4] || '';
const REDIRECT = 'http://localhost/callback';
const ALGS = { rs256: 'RS256', ps256: 'PS256', es256: 'ES256', eddsa: 'EdDSA', ed25519: 'Ed25519' };

const users = new Map();
let generation = 0;

function newKeys() {
  generation += 1;
  const jwk = (pair, extra) => ({ ...pair.privateKey.export({ format: 'jwk' }), ...extra });
  return [
    jwk(crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }), { kid: `rsa-${generation}`, use: 'sig' }),
    jwk(crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }), { kid: `ec-${generation}`, use: 'sig' }),
    jwk(crypto.generateKeyPairSync('ed25519'), { kid: `ed-${generation}`, use: 'sig' }),
  ];
}

function initialKeys() {
  if (keysFile && fs.existsSync(keysFile)) return JSON.parse(fs.readFileSync(keysFile, 'utf8'));
  const keys = newKeys();
  if (keysFile) fs.writeFileSync(keysFile, JSON.stringify(keys));
  return keys;
}

function clients() {
  const base = {
    client_secret: 'secret',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  };
  const list = Object.entries(ALGS).map(([name, alg]) => ({
    ...base,
    client_id: `signoff-${name}`,
    id_token_signed_response_alg: alg,
  }));
  // Tokens that expire a second after they are issued (see ttl below).
  list.push({ ...base, client_id: 'signoff-short', id_token_signed_response_alg: 'RS256' });
  return list;
}

function build(keys) {
  const provider = new Provider(issuer, {
    clients: clients(),
    jwks: { keys },
    enabledJWA: { idTokenSigningAlgValues: Object.values(ALGS) },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups', 'roles', 'realm_access'],
    },
    scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
    features: { devInteractions: { enabled: false }, claimsParameter: { enabled: true } },
    pkce: { required: () => false },
    ttl: {
      IdToken: (ctx, token, client) => (client.clientId === 'signoff-short' ? 1 : 3600),
      AccessToken: 3600,
      Session: 3600,
      Interaction: 600,
      Grant: 3600,
    },
    findAccount: async (ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, ...(users.get(sub) || {}) }),
    }),
    // Every client may have every scope and claim: no consent screen.
    loadExistingGrant: async (ctx) => {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email profile groups');
      grant.addOIDCClaims(['email', 'email_verified', 'name', 'groups', 'roles', 'realm_access']);
      await grant.save();
      return grant;
    },
  });
  provider.proxy = false;
  return provider;
}

let currentKeys = initialKeys();
let provider = build(currentKeys);

async function body(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function testRoute(req, res, url) {
  if (req.method === 'PUT' && url.pathname.startsWith('/test/users/')) {
    users.set(decodeURIComponent(url.pathname.slice('/test/users/'.length)), JSON.parse(await body(req)));
    res.writeHead(204).end();
    return true;
  }
  if (req.method === 'POST' && url.pathname === '/test/rotate') {
    currentKeys = newKeys();
    provider = build(currentKeys);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kids: currentKeys.map((k) => k.kid) }));
    return true;
  }
  if (req.method === 'GET' && url.pathname === '/test/keys') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: currentKeys }));
    return true;
  }
  return false;
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const accountId = details.params.login_hint;
  if (!accountId) {
    res.writeHead(400).end('login_hint names the person to log in');
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
}

http
  .createServer(async (req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    try {
      if (url.pathname.startsWith('/test/') && (await testRoute(req, res, url))) return;
      if (url.pathname.startsWith('/interaction/')) {
        await interaction(req, res);
        return;
      }
      provider.callback()(req, res);
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  })
  .listen(port, '127.0.0.1', () => {
    process.stdout.write(`listening ${issuer}\n`);
  });
