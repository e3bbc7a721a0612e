// Session tokens as an attacker would try them: forged with another key, with a kid that is not
// the server's, unsigned (alg "none"), tampered, expired; and key rotation between two hosts:
// A (session_secret = A) and B (session_secret = B, session_secret_previous = A).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { assertError, decodeJwt, forgeJwt, kidOf, me, sessionClaims, signIn, viemSigner } from './lib/auth.js';
import { randomSecret, startAnvil, startHost } from './lib/fixtures.js';

const SECRET_A = randomSecret();
const SECRET_B = randomSecret();

let anvil;
let hostA;
let hostB;
before(async () => {
  anvil = await startAnvil();
  hostA = await startHost({ anvil, vars: { session_secret: SECRET_A } });
  hostB = await startHost({ anvil, vars: { session_secret: SECRET_B, session_secret_previous: SECRET_A } });
});
after(async () => {
  await hostA?.stop();
  await hostB?.stop();
  await anvil?.stop();
});

const now = () => Math.floor(Date.now() / 1000);
const header = (secret, extra = {}) => ({ alg: 'HS256', typ: 'JWT', kid: kidOf(secret), ...extra });

test('a token forged with the real key and live claims works (the forging below is sound)', async () => {
  const address = viemSigner().address;
  const token = forgeJwt(header(SECRET_A), sessionClaims(address), SECRET_A);
  const res = await me(hostA.base, token);
  assert.equal(res.status, 200, `${res.status} ${res.text}`);
  assert.equal(res.json.address, address);
});

test('signed with another key under our kid: 401 invalid_token', async () => {
  const claims = sessionClaims(viemSigner().address);
  assertError(await me(hostA.base, forgeJwt(header(SECRET_A), claims, randomSecret())), 401, 'invalid_token');
});

test('signed with another key under its own kid: 401 unknown_key', async () => {
  const other = randomSecret();
  const claims = sessionClaims(viemSigner().address);
  assertError(await me(hostA.base, forgeJwt(header(other), claims, other)), 401, 'unknown_key');
});

test('alg "none" (unsigned): 401 invalid_token', async () => {
  const claims = sessionClaims(viemSigner().address);
  for (const alg of ['none', 'None', 'NONE']) {
    const token = forgeJwt({ alg, typ: 'JWT', kid: kidOf(SECRET_A) }, claims, null);
    assertError(await me(hostA.base, token), 401, 'invalid_token');
  }
});

test('a real token with its claims changed (another sub): 401 invalid_token', async () => {
  const victim = viemSigner();
  const session = await signIn(hostA, viemSigner());
  const [h, , s] = session.token.split('.');
  const claims = { ...decodeJwt(session.token).claims, sub: victim.address };
  const tampered = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
  assertError(await me(hostA.base, tampered), 401, 'invalid_token');
});

test('not a JWT: 401 invalid_token', async () => {
  for (const token of ['garbage', 'a.b.c', `${'x'.repeat(20)}.${'y'.repeat(20)}`]) {
    assertError(await me(hostA.base, token), 401, 'invalid_token');
  }
});

test('expired (real key, exp in the past): 401 token_expired', async () => {
  const t = now();
  const claims = sessionClaims(viemSigner().address, { iat: t - 7200, exp: t - 60 });
  assertError(await me(hostA.base, forgeJwt(header(SECRET_A), claims, SECRET_A)), 401, 'token_expired');
});

test('rotation: B (previous = A) accepts a token issued by A; A refuses B’s as unknown_key', async () => {
  const signer = viemSigner();
  const underA = await signIn(hostA, signer);
  assert.equal(decodeJwt(underA.token).header.kid, kidOf(SECRET_A));
  const onB = await me(hostB.base, underA.token);
  assert.equal(onB.status, 200, `A's token on B: ${onB.status} ${onB.text}`);
  assert.equal(onB.json.address, signer.address);

  const underB = await signIn(hostB, signer);
  assert.equal(decodeJwt(underB.token).header.kid, kidOf(SECRET_B), 'B signs with the current key');
  const ok = await me(hostB.base, underB.token);
  assert.equal(ok.status, 200, `${ok.status} ${ok.text}`);
  assertError(await me(hostA.base, underB.token), 401, 'unknown_key');
});
