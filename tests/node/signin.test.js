// Wallet sign-in (EIP-4361) as real clients do it: viem, ethers v6 and Python eth-account sign
// a message the `siwe` package built; the real host and auth component verify it against a real
// chain (anvil); the session token then works on /me and stops working after logout.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { privateKeyToAccount } from 'viem/accounts';

import {
  api,
  assertError,
  assertJsonType,
  decodeJwt,
  ethersSigner,
  getNonce,
  hs256Verifies,
  kidOf,
  me,
  pythonSigner,
  rfc3339Seconds,
  signIn,
  viemSigner,
} from './lib/auth.js';
import { CHAIN_ID, startStack } from './lib/fixtures.js';

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

const now = () => Math.floor(Date.now() / 1000);

/** What a client checks once signed in: /me names the account, and the token is ours. */
async function assertSignedIn(host, session, address) {
  const res = await me(host.base, session.token);
  assert.equal(res.status, 200, `/me: ${res.status} ${res.text}`);
  assertJsonType(res);
  assert.equal(res.json.address, address, '/me names the checksummed address that signed in');
  assert.equal(res.json.chain_id, CHAIN_ID, '/me names the chain of the message');
  assert.equal(res.json.expires_at, session.expires_at, '/me and verify agree on when the session ends');

  const { header, claims } = decodeJwt(session.token);
  assert.deepEqual(
    { alg: header.alg, typ: header.typ, kid: header.kid },
    { alg: 'HS256', typ: 'JWT', kid: kidOf(host.vars.session_secret) },
  );
  assert.ok(hs256Verifies(session.token, host.vars.session_secret), 'HS256 over the session secret');
  assert.equal(claims.sub, address);
  assert.equal(claims.chain_id, CHAIN_ID);
  assert.equal(claims.exp, rfc3339Seconds(session.expires_at), 'exp is the answer expires_at');
  assert.ok(Math.abs(claims.iat - now()) < 60, `iat is now: ${claims.iat}`);
  assert.ok(claims.exp > claims.iat);
  assert.equal(typeof claims.jti, 'string');
  assert.ok(claims.jti.length >= 16, `jti is a unique id: ${claims.jti}`);
}

test('nonce: 22 alphanumerics, fresh each time, valid for 300 s, with or without an address', async () => {
  const { host } = stack;
  const t0 = now();
  const a = await getNonce(host.base);
  const b = await getNonce(host.base, {});
  const c = await getNonce(host.base, { address: privateKeyToAccount(viemSigner().key).address });
  assert.equal(new Set([a.nonce, b.nonce, c.nonce]).size, 3, 'nonces never repeat');
  for (const n of [a, b, c]) {
    const lifetime = rfc3339Seconds(n.expires_at) - t0;
    assert.ok(lifetime >= 295 && lifetime <= 305, `nonce lifetime ${lifetime} s, expected 300 s`);
  }
});

test('viem + siwe: EOA sign-in; /me shows the checksummed address and chain id', async () => {
  const { host, anvil } = stack;
  const signer = viemSigner(undefined, anvil.url);
  const session = await signIn(host, signer);
  await assertSignedIn(host, session, signer.address);
});

test('ethers v6 Wallet.signMessage: EOA sign-in with a nonce asked for that address', async () => {
  const { host } = stack;
  const signer = ethersSigner();
  const session = await signIn(host, signer, { bindNonce: true });
  await assertSignedIn(host, session, signer.address);
});

test('Python eth-account (independent signer): EOA sign-in', async () => {
  const { host } = stack;
  const signer = await pythonSigner();
  assert.equal(signer.address, privateKeyToAccount(signer.key).address, 'eth-account and viem derive one address');
  const session = await signIn(host, signer);
  await assertSignedIn(host, session, signer.address);
});

test('optional fields: no statement, URI below siwe_uri, expiration, not-before, request id, resources', async () => {
  const { host } = stack;
  const signer = ethersSigner();
  const session = await signIn(host, signer, {
    messageFields: {
      statement: undefined,
      uri: `${host.uri}/app/login?next=%2Fvideos`,
      issuedAt: new Date(Date.now() - 5_000),
      expirationTime: new Date(Date.now() + 10 * 60_000),
      notBefore: new Date(Date.now() - 5_000),
      requestId: 'req-42',
      resources: [`${host.uri}/api/v1/videos`, 'ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'],
    },
  });
  await assertSignedIn(host, session, signer.address);
});

test('clock skew: issued-at and not-before up to 60 s ahead are accepted', async () => {
  const { host } = stack;
  const signer = viemSigner();
  const ahead = new Date(Date.now() + 30_000);
  const session = await signIn(host, signer, { messageFields: { issuedAt: ahead, notBefore: ahead } });
  await assertSignedIn(host, session, signer.address);
});

test('logout: 204, then that token is refused with token_revoked; another session goes on', async () => {
  const { host } = stack;
  const signer = viemSigner();
  const first = await signIn(host, signer);
  const second = await signIn(host, signer);

  const out = await api(host.base, 'POST', '/api/v1/auth/logout', { token: first.token });
  assert.equal(out.status, 204, `logout: ${out.status} ${out.text}`);
  assert.equal(out.text, '', '204 has no body');

  assertError(await me(host.base, first.token), 401, 'token_revoked');
  assertError(await api(host.base, 'POST', '/api/v1/auth/logout', { token: first.token }), 401, 'token_revoked');
  const still = await me(host.base, second.token);
  assert.equal(still.status, 200, `the other session: ${still.status} ${still.text}`);
});

test('/me and logout without a token: 401 missing_token', async () => {
  const { host } = stack;
  assertError(await api(host.base, 'GET', '/api/v1/auth/me'), 401, 'missing_token');
  assertError(await api(host.base, 'POST', '/api/v1/auth/logout'), 401, 'missing_token');
});
