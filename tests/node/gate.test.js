// The playback gate against real token contracts (ERC-721, ERC-1155, ERC-20 from OpenZeppelin,
// compiled with solc-js, on anvil), through the real host: a creator's video becomes ready
// (events signed as the native side signs them), viewers sign in with real wallets, and the
// gate asks the chain. Also the signed URLs the gate hands out, checked by the playlist routes.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';

import { api, assertError, newKey, signIn, viemSigner } from './lib/auth.js';
import { CHAIN_ID, sleep, startHost } from './lib/fixtures.js';
import { deployContract, fundedKey, readyVideo as makeReadyVideo, startGateStack } from './lib/videos.js';

// Fresh wallets, funded on anvil (anvil_setBalance) so they can pay for mints and transfers.
const KEYS = [newKey(), newKey(), newKey(), newKey()];
const POSITIVE_TTL = 2;

let stack;
let anvil;
let host;
let creator;
let holder;
let stranger;
let third;
let contracts;

before(async () => {
  stack = await startGateStack({
    vars: ({ domain }) => ({
      stream_base_url: `http://${domain}`,
      gate_cache_positive_secs: String(POSITIVE_TTL),
      gate_cache_negative_secs: '1',
    }),
  });
  ({ anvil, host } = stack);
  for (const key of KEYS) await fundedKey(anvil, key);
  contracts = {
    nft: await deployContract(anvil, 'GateNFT', KEYS[3]),
    multi: await deployContract(anvil, 'GateMulti', KEYS[3]),
    token: await deployContract(anvil, 'GateToken', KEYS[3]),
  };
  [creator, holder, stranger, third] = await Promise.all(
    [KEYS[0], KEYS[1], KEYS[2], undefined].map(async (key) => {
      const signer = viemSigner(key, anvil.url);
      return { ...signer, token: (await signIn(host, signer)).token };
    }),
  );
});

after(async () => {
  await stack?.stop();
});

// Two renditions, so a test can follow the master playlist to one of several variants.
const rendition = (name, height) => ({
  name, width: (height * 16) / 9, height, bandwidth: 1_000_000, average_bandwidth: 900_000, frame_rate: 30,
  codecs: 'avc1.64001f,mp4a.40.2', init: `${name}/init.mp4`,
  segments: [{ uri: `${name}/seg_00001.m4s`, duration: 4 }, { uri: `${name}/seg_00002.m4s`, duration: 2 }],
});

/** A ready video gated by `gate`, owned by the creator. */
const readyVideo = (gate) =>
  makeReadyVideo(host, creator.token, gate, { renditions: [rendition('720p', 720), rendition('360p', 360)], duration: 6 });

const playback = (id, who) => api(host.base, 'POST', `/api/v1/videos/${id}/playback`, { token: who.token });

test('ERC-721: a holder gets signed URLs that open the playlists; a non-holder gets 403 not_token_holder', async () => {
  await contracts.nft.write(KEYS[3], 'mint', [holder.address, 1n]);
  const id = await readyVideo([{ chain_id: CHAIN_ID, contract: contracts.nft.address, standard: 'erc721' }]);

  const ok = await playback(id, holder);
  assert.equal(ok.status, 200, ok.text);
  for (const url of [ok.json.hls, ok.json.dash]) {
    assert.ok(url.startsWith(`${host.base}/stream/${id}/`), url);
    assert.match(url, /\?hdnts=st=\d+~exp=\d+~acl=[^~]+~data=0x[0-9a-fA-F]{40}~hmac=[0-9a-f]{64}$/);
  }
  const master = await fetch(ok.json.hls);
  assert.equal(master.status, 200);
  assert.equal(master.headers.get('content-type'), 'application/vnd.apple.mpegurl');
  const text = await master.text();
  assert.equal((text.match(/#EXT-X-STREAM-INF/g) ?? []).length, 2);
  const variant = new URL(text.split('\n').find((l) => l.startsWith('720p.m3u8')), ok.json.hls);
  const media = await (await fetch(variant)).text();
  assert.match(media, /#EXT-X-MAP:URI="[^"]+\/media\/[^"]+\/720p\/init\.mp4\?hdnts=/);
  assert.equal((media.match(/#EXTINF:/g) ?? []).length, 2);
  const mpd = await fetch(ok.json.dash);
  assert.equal(mpd.status, 200);
  assert.match(await mpd.text(), /<SegmentTimeline>/);

  assertError(await playback(id, stranger), 403, 'not_token_holder');
  // The creator always may watch their own video.
  assert.equal((await playback(id, creator)).status, 200);
});

test('ERC-721 transfer: after the positive cache lifetime the seller is denied and the buyer admitted', async () => {
  await contracts.nft.write(KEYS[3], 'mint', [holder.address, 2n]);
  const id = await readyVideo([{ chain_id: CHAIN_ID, contract: contracts.nft.address, standard: 'erc721', token_id: '2' }]);
  assert.equal((await playback(id, holder)).status, 200, 'ownerOf(2) is the holder');
  assertError(await playback(id, stranger), 403, 'not_token_holder');

  await contracts.nft.write(KEYS[1], 'transferFrom', [holder.address, stranger.address, 2n]);
  await sleep((POSITIVE_TTL + 1) * 1000);
  assertError(await playback(id, holder), 403, 'not_token_holder');
  assert.equal((await playback(id, stranger)).status, 200);
});

test('ERC-1155 and ERC-20 gates admit holders of at least the minimum and refuse the rest', async () => {
  await contracts.multi.write(KEYS[3], 'mint', [holder.address, 7n, 2n]);
  await contracts.multi.write(KEYS[3], 'mint', [stranger.address, 7n, 1n]);
  const multi = await readyVideo([
    { chain_id: CHAIN_ID, contract: contracts.multi.address, standard: 'erc1155', token_id: '7', min_balance: '2' },
  ]);
  assert.equal((await playback(multi, holder)).status, 200);
  assertError(await playback(multi, stranger), 403, 'not_token_holder');

  await contracts.token.write(KEYS[3], 'mint', [stranger.address, 100n]);
  const erc20 = await readyVideo([
    { chain_id: CHAIN_ID, contract: contracts.token.address, standard: 'erc20', min_balance: '100' },
  ]);
  assert.equal((await playback(erc20, stranger)).status, 200);
  assertError(await playback(erc20, third), 403, 'not_token_holder');

  // Only the video's stored rules count: the stranger, short of the ERC-1155 minimum but holding
  // the ERC-20, names the ERC-20 rule (or an empty, i.e. public, gate) in the request: refused.
  for (const json of [
    { gate: [{ chain_id: CHAIN_ID, contract: contracts.token.address, standard: 'erc20', min_balance: '1' }] },
    { contract: contracts.token.address, standard: 'erc20', chain_id: CHAIN_ID },
    { gate: [] },
  ]) {
    const res = await api(host.base, 'POST', `/api/v1/videos/${multi}/playback`, { token: stranger.token, json });
    assertError(res, 403, 'not_token_holder');
  }
});

test('signed URLs: tampered, expired, other-video and missing tokens are 403 from the playlist routes', async () => {
  const id = await readyVideo([]);
  const other = await readyVideo([]);
  const ok = await playback(id, third);
  assert.equal(ok.status, 200, 'an empty gate is public');
  const url = new URL(ok.json.hls);
  const token = url.searchParams.get('hdnts') ?? url.search.slice('?hdnts='.length);

  const at = (path, hdnts) => fetch(`${host.base}${path}${hdnts === undefined ? '' : `?hdnts=${hdnts}`}`);
  assert.equal((await at(`/stream/${id}/master.m3u8`, token)).status, 200);
  const codeOf = async (res) => [res.status, (await res.json()).code];
  assert.deepEqual(await codeOf(await at(`/stream/${id}/master.m3u8`, token.replace(/hmac=([0-9a-f])/, (_, c) => `hmac=${c === '0' ? '1' : '0'}`))), [403, 'invalid_token']);
  assert.deepEqual(await codeOf(await at(`/stream/${other}/master.m3u8`, token)), [403, 'token_wrong_path']);
  assert.deepEqual(await codeOf(await at(`/stream/${id}/master.m3u8`)), [403, 'missing_token']);
  // A token correctly signed with the playback secret but already expired.
  const now = Math.floor(Date.now() / 1000);
  const fields = `st=${now - 600}~exp=${now - 300}~acl=/stream/${id}/*!/media/${id}/*`;
  const hmac = createHmac('sha256', host.vars.playback_secret).update(fields).digest('hex');
  assert.deepEqual(await codeOf(await at(`/stream/${id}/master.m3u8`, `${fields}~hmac=${hmac}`)), [403, 'token_expired']);
  // Unknown video: 404; not ready: 409 to its owner, and to anyone else exactly what an
  // unknown id gets (a video that is not ready is not shown to others).
  const fresh = await api(host.base, 'POST', '/api/v1/videos', { token: creator.token, json: { title: 'Not yet' } });
  assertError(await playback(fresh.json.id, creator), 409, 'not_ready');
  const unknown = await playback('no-such-video', creator);
  assertError(unknown, 404, 'not_found');
  const stranger = await playback(fresh.json.id, holder);
  assertError(stranger, 404, 'not_found');
  assert.equal(
    stranger.json.error,
    unknown.json.error.replace('no-such-video', fresh.json.id),
    'the same answer as for an unknown id',
  );
});

test('chain down: the gate fails closed with 503 gate_check_unavailable', async () => {
  const id = await readyVideo([{ chain_id: CHAIN_ID, contract: contracts.token.address, standard: 'erc20', min_balance: '5' }]);
  const down = await startHost({
    vars: ({ domain }) => ({
      ...host.vars,
      siwe_domain: domain,
      siwe_uri: `http://${domain}`,
      chain_rpc_urls: `${CHAIN_ID}=http://127.0.0.1:9`,
      chain_rpc_http_host: '127.0.0.1:9',
    }),
    stateDir: host.stateDir,
  });
  try {
    const res = await api(down.base, 'POST', `/api/v1/videos/${id}/playback`, { token: third.token });
    assertError(res, 503, 'gate_check_unavailable');
  } finally {
    await down.stop();
  }
});
