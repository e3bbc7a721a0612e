// Fixtures for the viewer's half end to end (playback_e2e.test.js and bench/playback.js): the
// whole pipeline (lib/pipeline.js) with the host's `stream_base_url` naming the host itself, an
// ERC-721 (contracts/GateNFT.sol, solc-js + OpenZeppelin) on its anvil, a real clip uploaded
// with tus-js-client and transcoded by the real worker, and EdgeAuth 2.0 tokens forged with
// node:crypto from DESIGN.md alone.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';

import { createPublicClient, createWalletClient, getAddress, http } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';

import { api, newKey, signIn, viemSigner } from './auth.js';
import { CHAIN_ID, sleep, tempDir } from './fixtures.js';
import { deriveKey, makeTestVideo, postEvent, signatureHeader, startPipeline, tusUpload } from './pipeline.js';
import { compile } from './wallet.js';

/**
 * The pipeline, an ERC-721 deployed on its chain, and three signed-in wallets: `creator`,
 * `holder` (viewer A, given token 1) and `stranger` (viewer B, no token). Each wallet is
 * `{ name, key, address, sign, token }`. `hostVars` adds Spin variables (`SPIN_VARIABLE_*`),
 * `originArgs` flags of `native-transcoder serve` (e.g. `--token-leeway-secs`), `hostArgs` flags of
 * `streamgate-host up` (e.g. `--max-concurrent-requests`).
 */
export async function startPlaybackStack({ hostVars = {}, originArgs = [], hostArgs = [] } = {}) {
  const stack = await startPipeline({
    originArgs,
    hostArgs,
    hostVars: (where) => ({
      stream_base_url: `http://${where.domain}`,
      ...(typeof hostVars === 'function' ? hostVars(where) : hostVars),
    }),
  });
  try {
    const keys = [newKey(), newKey(), newKey()];
    for (const key of keys) {
      await stack.anvil.rpc('anvil_setBalance', [privateKeyToAccount(key).address, '0x8ac7230489e80000']);
    }
    const transport = http(stack.anvil.url);
    const publicClient = createPublicClient({ chain: foundry, transport });
    const { abi, bytecode } = compile('GateNFT');
    const deployer = createWalletClient({ account: privateKeyToAccount(keys[0]), chain: foundry, transport });
    const receipt = await publicClient.waitForTransactionReceipt({
      hash: await deployer.deployContract({ abi, bytecode }),
    });
    assert.equal(receipt.status, 'success', 'GateNFT deployed');
    const nft = getAddress(receipt.contractAddress);

    const [creator, holder, stranger] = await Promise.all(
      keys.map(async (key) => {
        const signer = viemSigner(key, stack.anvil.url);
        return { ...signer, token: (await signIn(stack.host, signer)).token };
      }),
    );
    const mint = await publicClient.waitForTransactionReceipt({
      hash: await deployer.writeContract({ address: nft, abi, functionName: 'mint', args: [holder.address, 1n] }),
    });
    assert.equal(mint.status, 'success', 'token 1 minted to the holder');
    const owner = await publicClient.readContract({ address: nft, abi, functionName: 'ownerOf', args: [1n] });
    assert.equal(getAddress(owner), holder.address, 'the chain says the holder owns token 1');

    return { ...stack, nft, creator, holder, stranger, gate: [{ chain_id: CHAIN_ID, contract: nft, standard: 'erc721' }] };
  } catch (e) {
    await stack.stop();
    throw e;
  }
}

/**
 * The creator creates a video gated by `gate`, uploads a small generated clip (640x360, so the
 * ladder is 360p + 240p) with tus-js-client, and waits for `ready`. Returns the video.
 */
export async function uploadReadyVideo(stack, { gate, seconds = 4, size = '640x360', timeoutMs = 90_000 } = {}) {
  const clip = await makeTestVideo(tempDir('playback-clip'), { seconds, size, rate: 25 });
  const created = await api(stack.host.base, 'POST', '/api/v1/videos', {
    token: stack.creator.token,
    json: { title: 'Gated playback', gate: gate ?? stack.gate },
  });
  assert.equal(created.status, 201, `create: ${created.status} ${created.text}`);
  const done = await tusUpload(clip, { endpoint: created.json.upload.url, chunkSize: 1024 * 1024, resume: 'none' });
  assert.equal(done.ok, true, `upload: ${done.error ?? ''}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // As the owner: until it is ready, the video is invisible to anyone else (docs/api.md).
    const res = await api(stack.host.base, 'GET', `/api/v1/videos/${created.json.id}`, { token: stack.creator.token });
    assert.equal(res.status, 200, res.text);
    if (res.json.status === 'ready') return res.json;
    if (res.json.status === 'failed' || Date.now() > deadline) {
      throw new Error(`video ${created.json.id} is ${res.json.status} (${res.json.error ?? ''})\n${stack.logs()}`);
    }
    await sleep(100);
  }
}

let eventCounter = 0;

/**
 * A second, public video made ready through signed events alone (no transcode): enough for a
 * real playback token of another video. Its segments do not exist on the origin.
 */
export async function eventOnlyReadyVideo(stack) {
  const created = await api(stack.host.base, 'POST', '/api/v1/videos', {
    token: stack.creator.token,
    json: { title: 'Other video', gate: [] },
  });
  assert.equal(created.status, 201, created.text);
  const id = created.json.id;
  const key = deriveKey(stack.eventsSecret, 'events');
  const send = async (type, data) => {
    const body = JSON.stringify({ id: `playback-e2e-${process.pid}-${++eventCounter}`, type, video_id: id, data });
    const res = await postEvent(stack.eventsUrl, body, signatureHeader(key, Math.floor(Date.now() / 1000), body));
    assert.equal(res.status, 200, `${type}: ${res.status} ${res.text}`);
  };
  await send('upload.completed', { size: 1, source: `sources/${id}` });
  await send('transcode.started', { attempt: 1 });
  await send('transcode.completed', {
    duration: 4,
    renditions: [
      {
        name: '360p', width: 640, height: 360, bandwidth: 900_000, average_bandwidth: 800_000, frame_rate: 25,
        codecs: 'avc1.64001e,mp4a.40.2', init: '360p/init.mp4', segments: [{ uri: '360p/seg_00001.m4s', duration: 4 }],
      },
    ],
  });
  return id;
}

/** POST /api/v1/videos/{id}/playback as `who`. */
export function playback(stack, id, who) {
  return api(stack.host.base, 'POST', `/api/v1/videos/${id}/playback`, { token: who.token });
}

/** The `hdnts` value of a signed URL, exactly as it appears (not decoded). */
export function tokenOf(url) {
  const m = /[?&]hdnts=([^&]*)/.exec(url);
  assert.ok(m, `no hdnts in ${url}`);
  return m[1];
}

/** `url` with its hdnts value replaced by `token`. */
export function withToken(url, token) {
  return url.replace(/([?&]hdnts=)[^&]*/, `$1${token}`);
}

/**
 * An EdgeAuth 2.0 token for video `id`, signed like the playback component signs:
 * HMAC-SHA256 (key = the playback secret's bytes) over `st=…~exp=…~acl=…[~data=…]`.
 */
export function forgeToken(secret, { id, st, exp, data }) {
  let fields = `st=${st}~exp=${exp}~acl=/stream/${id}/*!/media/${id}/*`;
  if (data) fields += `~data=${data}`;
  const hmac = createHmac('sha256', Buffer.from(secret, 'utf8')).update(fields).digest('hex');
  return `${fields}~hmac=${hmac}`;
}

/** The URI lines of a playlist (not tags, not blank), resolved against `base`. */
export function playlistUris(text, base) {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => new URL(l, base).href);
}

/** The init segment URI of a media playlist (`#EXT-X-MAP:URI="…"`), resolved against `base`. */
export function mapUri(text, base) {
  const m = /#EXT-X-MAP:URI="([^"]+)"/.exec(text);
  assert.ok(m, 'the media playlist has an EXT-X-MAP');
  return new URL(m[1], base).href;
}
