// An expired nonce: 401 nonce_expired. Waiting out the 300 s lifetime is too slow for a test, so
// the nonce is issued by a host whose wall clock runs 400 s behind (libfaketime, Debian's
// `faketime`), then used on a host with the true clock over the same state directory: to the
// server that nonce expired 100 s ago. Only the host's clock is shifted; the message, the
// signature and the chain are real.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';

import { assertError, getNonce, me, rfc3339Seconds, siweMessage, verify, viemSigner } from './lib/auth.js';
import { libfaketime, randomSecret, startAnvil, startHost, tempDir } from './lib/fixtures.js';

const cleanups = [];
after(async () => {
  for (const stop of cleanups.reverse()) await stop();
});

const skip = libfaketime() ? false : 'libfaketime is not installed (Debian package `faketime`; scripts/test installs it)';

test('a nonce used after its 300 s lifetime: 401 nonce_expired', { skip }, async () => {
  const stateDir = tempDir('nonce-expiry');
  cleanups.push(async () => fs.rmSync(stateDir, { recursive: true, force: true }));
  const anvil = await startAnvil();
  cleanups.push(() => anvil.stop());
  const vars = { session_secret: randomSecret() };

  const past = await startHost({ anvil, vars, stateDir, clockOffsetSeconds: -400 });
  let issued;
  try {
    issued = await getNonce(past.base);
  } finally {
    await past.stop();
  }
  const lateBy = Math.floor(Date.now() / 1000) - rfc3339Seconds(issued.expires_at);
  assert.ok(lateBy >= 90 && lateBy <= 110, `the nonce expired ~100 s ago by the true clock, not ${lateBy} s`);

  const host = await startHost({ anvil, vars, stateDir });
  cleanups.push(() => host.stop());
  const signer = viemSigner();
  const message = siweMessage(host, { address: signer.address, nonce: issued.nonce });
  assertError(await verify(host.base, message, await signer.sign(message)), 401, 'nonce_expired');

  // A fresh nonce from the same host and state signs the same signer in.
  const { nonce } = await getNonce(host.base);
  const fresh = siweMessage(host, { address: signer.address, nonce });
  const res = await verify(host.base, fresh, await signer.sign(fresh));
  assert.equal(res.status, 200, `${res.status} ${res.text}`);
  assert.equal((await me(host.base, res.json.token)).json?.address, signer.address);
});
