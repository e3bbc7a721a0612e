// The chain's RPC is down: signature checks fail closed with 503 signature_check_unavailable,
// never as a good or a bad signature, and the nonce is not spent, so the client can retry.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { assertError, getNonce, me, siweMessage, verify, viemSigner } from './lib/auth.js';
import { closedPort, startAnvil, startHost } from './lib/fixtures.js';

const cleanups = [];
after(async () => {
  for (const stop of cleanups.reverse()) await stop();
});

test('anvil stopped after start-up: 503 signature_check_unavailable; retry once it is back: 200', async () => {
  const anvil = await startAnvil();
  cleanups.push(() => anvil.stop());
  const host = await startHost({ anvil });
  cleanups.push(() => host.stop());

  const signer = viemSigner();
  const { nonce } = await getNonce(host.base);
  const message = siweMessage(host, { address: signer.address, nonce });
  const signature = await signer.sign(message);

  await anvil.stop();
  assert.equal(anvil.running, false);
  assertError(await verify(host.base, message, signature), 503, 'signature_check_unavailable');

  // The same chain endpoint comes back: the same signed message now signs in.
  const revived = await startAnvil({ port: anvil.port });
  cleanups.push(() => revived.stop());
  const res = await verify(host.base, message, signature);
  assert.equal(res.status, 200, `after the chain is back: ${res.status} ${res.text}`);
  assert.equal((await me(host.base, res.json.token)).json?.address, signer.address);
});

test('chain RPC URL on a closed port: 503 signature_check_unavailable', async () => {
  const port = await closedPort();
  const host = await startHost({
    vars: { chain_rpc_urls: `31337=http://127.0.0.1:${port}`, chain_rpc_http_host: `127.0.0.1:${port}` },
  });
  cleanups.push(() => host.stop());
  const signer = viemSigner();
  const { nonce } = await getNonce(host.base);
  const message = siweMessage(host, { address: signer.address, nonce });
  assertError(await verify(host.base, message, await signer.sign(message)), 503, 'signature_check_unavailable');
});
