// A contract wallet's session speaks for its address on the chain it signed in on, nowhere else
// (issue 10, item 6; docs/auth.md). The app accepts two chain ids, 31337 and 1, both served by
// one anvil, so the same ERC-721 and the same EIP-1271 wallet answer on both: what differs is
// only which chain the session was verified on. An EOA's session is its key's on every chain.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { api, assertError, decodeJwt, getNonce, me, signIn, siweMessage, verify, viemSigner } from './lib/auth.js';
import { CHAIN_ID } from './lib/fixtures.js';
import { deployContract, fundedKey, readyVideo, startGateStack } from './lib/videos.js';
import { deployWallet } from './lib/wallet.js';

const OTHER_CHAIN = 1;

let stack;
let anvil;
let host;
let nft;
let walletOwner;
let wallet;
let creator;
let holder;

before(async () => {
  stack = await startGateStack({
    vars: ({ anvil }) => ({
      chain_rpc_urls: `${CHAIN_ID}=${anvil.url},${OTHER_CHAIN}=${anvil.url}`,
      gate_cache_positive_secs: '0',
      gate_cache_negative_secs: '0',
    }),
  });
  ({ anvil, host } = stack);
  const deployerKey = await fundedKey(anvil);
  nft = await deployContract(anvil, 'GateNFT', deployerKey);
  walletOwner = viemSigner(undefined, anvil.url);
  wallet = await deployWallet(anvil, walletOwner.address);
  creator = viemSigner(undefined, anvil.url);
  creator.token = (await signIn(host, creator)).token;
  holder = viemSigner(undefined, anvil.url);
  // The wallet holds token 1, the EOA holder token 2: both hold on "both" chains.
  await nft.write(deployerKey, 'mint', [wallet.address, 1n]);
  await nft.write(deployerKey, 'mint', [holder.address, 2n]);
});

after(async () => {
  await stack?.stop();
});

/** The contract wallet signs in (its owner signs) with `Chain ID: chainId`. */
async function walletSession(chainId) {
  const { nonce } = await getNonce(host.base);
  const message = siweMessage(host, { address: wallet.address, nonce, chainId });
  const res = await verify(host.base, message, await walletOwner.sign(message));
  assert.equal(res.status, 200, res.text);
  return res.json.token;
}

const rule = (chainId) => ({ chain_id: chainId, contract: nft.address, standard: 'erc721' });
const playback = (id, token) => api(host.base, 'POST', `/api/v1/videos/${id}/playback`, { token });

test('a contract wallet signed in on one chain is refused on a rule of another, and admitted after signing in there', async () => {
  const onHome = await readyVideo(host, creator.token, [rule(CHAIN_ID)]);
  const onOther = await readyVideo(host, creator.token, [rule(OTHER_CHAIN)]);
  const onEither = await readyVideo(host, creator.token, [rule(OTHER_CHAIN), rule(CHAIN_ID)]);

  const home = await walletSession(CHAIN_ID);
  assert.equal(decodeJwt(home).claims.wallet, 'contract');
  assert.equal(decodeJwt(home).claims.chain_id, CHAIN_ID);
  assert.equal((await me(host.base, home)).json.chain_id, CHAIN_ID);

  assert.equal((await playback(onHome, home)).status, 200, 'its own chain: the wallet holds');
  const refused = await playback(onOther, home);
  assertError(refused, 403, 'session_chain_mismatch');
  assert.match(refused.json.error, new RegExp(`Chain ID ${OTHER_CHAIN}\\b`));
  assert.equal((await playback(onEither, home)).status, 200, 'the rule on its own chain admits');

  // Signed in on the other chain, the same wallet is asked there, and only there.
  const other = await walletSession(OTHER_CHAIN);
  assert.equal(decodeJwt(other).claims.chain_id, OTHER_CHAIN);
  assert.equal((await playback(onOther, other)).status, 200);
  assertError(await playback(onHome, other), 403, 'session_chain_mismatch');
});

test("an EOA's session holds on every chain the app reads", async () => {
  const onOther = await readyVideo(host, creator.token, [rule(OTHER_CHAIN)]);
  const session = await signIn(host, holder);
  assert.equal(decodeJwt(session.token).claims.wallet, 'eoa');
  assert.equal(decodeJwt(session.token).claims.chain_id, CHAIN_ID);
  assert.equal((await playback(onOther, session.token)).status, 200);
  // And a stranger is still a stranger there.
  const stranger = await signIn(host, viemSigner(undefined, anvil.url));
  assertError(await playback(onOther, stranger.token), 403, 'not_token_holder');
});
