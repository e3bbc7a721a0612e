// Gated videos without a transcode: a creator's video made `ready` through the signed events the
// native side sends (docs/pipeline.md), and the token contracts (contracts/*.sol, solc-js +
// OpenZeppelin) deployed on anvil. For tests of the gate that need no media.

import assert from 'node:assert/strict';

import { createPublicClient, createWalletClient, getAddress, http } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';

import { api, newKey } from './auth.js';
import { startAnvil, startHost } from './fixtures.js';
import { deriveKey, postEvent, signatureHeader, startRedis } from './pipeline.js';
import { compile } from './wallet.js';

let eventCounter = 0;

/** Sends one signed event about `videoId` to the host's events route. */
export async function sendEvent(host, videoId, type, data) {
  const body = JSON.stringify({ id: `ready-${process.pid}-${++eventCounter}`, type, video_id: videoId, data });
  const key = deriveKey(host.vars.events_secret, 'events');
  const res = await postEvent(`${host.base}/internal/v1/events`, body, signatureHeader(key, Math.floor(Date.now() / 1000), body));
  assert.equal(res.status, 200, `${type}: ${res.status} ${res.text ?? ''}`);
}

const ONE_RENDITION = {
  name: '360p', width: 640, height: 360, bandwidth: 900_000, average_bandwidth: 800_000, frame_rate: 25,
  codecs: 'avc1.64001e,mp4a.40.2', init: '360p/init.mp4', segments: [{ uri: '360p/seg_00001.m4s', duration: 4 }],
};

/**
 * A video owned by the session `token`, gated by `gate`, made ready by events alone (by default
 * one rendition; the segments do not exist on any origin). The host needs Redis (the upload
 * event queues a job). Returns its id.
 */
export async function readyVideo(host, token, gate, { renditions = [ONE_RENDITION], duration = 4 } = {}) {
  const created = await api(host.base, 'POST', '/api/v1/videos', { token, json: { title: 'Gated', gate } });
  assert.equal(created.status, 201, created.text);
  const id = created.json.id;
  await sendEvent(host, id, 'upload.completed', { size: 1, source: `sources/${id}` });
  await sendEvent(host, id, 'transcode.started', { attempt: 1 });
  await sendEvent(host, id, 'transcode.completed', { duration, renditions });
  return id;
}

/**
 * What a gate test runs against: anvil, a private Redis and the host on both, the host's
 * variables being Redis's and `vars` (an object, or a function of `{ port, domain, anvil }`).
 * Returns `{ anvil, redis, host, stop }`; `stop()` ends all three.
 */
export async function startGateStack({ vars = {} } = {}) {
  const anvil = await startAnvil();
  let redis;
  try {
    redis = await startRedis();
    const host = await startHost({
      anvil,
      vars:
        typeof vars === 'function'
          ? (context) => ({ ...redis.hostVars, ...vars({ ...context, anvil }) })
          : { ...redis.hostVars, ...vars },
    });
    return {
      anvil,
      redis,
      host,
      stop: async () => {
        await host.stop();
        await redis.stop();
        await anvil.stop();
      },
    };
  } catch (e) {
    await redis?.stop();
    await anvil.stop();
    throw e;
  }
}

/** `key` (a fresh one by default) with 10 ETH on anvil, to deploy, mint and transfer from. */
export async function fundedKey(anvil, key = newKey()) {
  await anvil.rpc('anvil_setBalance', [privateKeyToAccount(key).address, '0x8ac7230489e80000']);
  return key;
}

/**
 * Deploys `contracts/<name>.sol` on anvil from `deployerKey` (funded by the caller). Returns
 * `{ address, abi, write(key, functionName, args) }`.
 */
export async function deployContract(anvil, name, deployerKey) {
  const transport = http(anvil.url);
  const publicClient = createPublicClient({ chain: foundry, transport });
  const wallet = (key) => createWalletClient({ account: privateKeyToAccount(key), chain: foundry, transport });
  const { abi, bytecode } = compile(name);
  const receipt = await publicClient.waitForTransactionReceipt({
    hash: await wallet(deployerKey).deployContract({ abi, bytecode }),
  });
  assert.equal(receipt.status, 'success', `${name} deployed`);
  const address = getAddress(receipt.contractAddress);
  return {
    address,
    abi,
    write: async (key, functionName, args) => {
      const hash = await wallet(key).writeContract({ address, abi, functionName, args });
      const r = await publicClient.waitForTransactionReceipt({ hash });
      assert.equal(r.status, 'success', `${name}.${functionName}`);
    },
  };
}
