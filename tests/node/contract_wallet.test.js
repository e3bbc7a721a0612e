// Contract-wallet sign-in (EIP-1271): a Solidity wallet compiled here with solc-js and
// OpenZeppelin, deployed on anvil, owned by an EOA. The SIWE message names the wallet's address
// and the owner personal_signs it; the server recovers a signer that is not the address, so it
// asks the wallet (eth_call isValidSignature(personal_sign digest, signature)).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { getAddress, serializeErc6492Signature } from 'viem';

import { assertError, getNonce, me, signIn, siweMessage, verify, viemSigner, ethersSigner } from './lib/auth.js';
import { CHAIN_ID, startStack } from './lib/fixtures.js';
import { compile, deployWallet } from './lib/wallet.js';

const MAGIC = '0x1626ba7e';

let stack;
let owner;
let wallet;
before(async () => {
  const compiled = compile();
  stack = await startStack();
  owner = viemSigner(undefined, stack.anvil.url);
  wallet = await deployWallet(stack.anvil, owner.address, compiled);
  assert.equal(await wallet.owner(), owner.address);
});
after(async () => {
  await stack?.stop();
});

test('owner-signed message for the wallet address: EIP-1271 sign-in; /me shows the contract', async () => {
  const { host } = stack;
  const { nonce } = await getNonce(host.base, { address: wallet.address });
  const message = siweMessage(host, { address: wallet.address, nonce });
  const signature = await owner.sign(message);
  // The test's own setup: the wallet itself accepts this signature for the personal_sign digest.
  assert.equal(await wallet.isValidSignature(message, signature), MAGIC);

  const res = await verify(host.base, message, signature);
  assert.equal(res.status, 200, `verify: ${res.status} ${res.text}`);
  assert.equal(res.json.address, wallet.address);
  const who = await me(host.base, res.json.token);
  assert.equal(who.status, 200, `/me: ${who.status} ${who.text}`);
  assert.equal(who.json.address, wallet.address, 'the session is the contract wallet, not its owner');
  assert.equal(who.json.chain_id, CHAIN_ID);
});

test('the same wallet through signIn(), signed by the owner with the ethers key', async () => {
  const { host } = stack;
  // Same owner key, another library: the wallet does not care which library signed.
  const ownerViaEthers = ethersSigner(owner.key);
  const session = await signIn(host, ownerViaEthers, { address: wallet.address });
  assert.equal(session.address, wallet.address);
});

test('wallet signature by a non-owner: 401 bad_signature', async () => {
  const { host } = stack;
  const intruder = viemSigner();
  const { nonce } = await getNonce(host.base);
  const message = siweMessage(host, { address: wallet.address, nonce });
  const signature = await intruder.sign(message);
  assert.notEqual(await wallet.isValidSignature(message, signature), MAGIC, 'the wallet refuses it itself');
  assertError(await verify(host.base, message, signature), 401, 'bad_signature');
});

test('owner signature over another text: 401 bad_signature', async () => {
  const { host } = stack;
  const { nonce } = await getNonce(host.base);
  const message = siweMessage(host, { address: wallet.address, nonce });
  const signature = await owner.sign(message.replace('Sign in to StreamGate.', 'Sign in to something else.'));
  assertError(await verify(host.base, message, signature), 401, 'bad_signature');
});

test('ERC-6492 signature for a wallet that is not deployed: 422 unsupported_signature', async () => {
  const { host } = stack;
  const counterfactual = getAddress(viemSigner().address); // an address with no code on this chain
  const { nonce } = await getNonce(host.base);
  const message = siweMessage(host, { address: counterfactual, nonce });
  const signature = serializeErc6492Signature({
    address: viemSigner().address, // the factory
    data: '0xdeadbeef', // its calldata
    signature: await owner.sign(message),
  });
  assertError(await verify(host.base, message, signature), 422, 'unsupported_signature');
});
