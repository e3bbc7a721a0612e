// The whole stack for tests/python/test_api_fuzz.py: anvil, a private redis-server, the host with
// the real spin.toml and components, the native origin (lib/playback.js; its worker is stopped,
// below), a GateNFT with token 1 minted to the holder, wallets signed in with viem + siwe, and
// three ready videos (gated on the NFT, public, gated on an address with no contract). Prints
// one JSON line with what the tests need, then runs until its standard input closes (the test's
// end, or the test process dying), and stops it all.
//
//   node tests/node/api_stack.js      (from the repository root, once the host is built)

import { randomBytes } from 'node:crypto';

import { getAddress } from 'viem';

import { startPlaybackStack } from './lib/playback.js';
import { readyVideo } from './lib/videos.js';

const stack = await startPlaybackStack({
  // The fuzzer creates many videos with one wallet: the pending-upload quota (its own tests are
  // in creator_flow) would otherwise answer 429 to all but the first five.
  hostVars: { max_pending_uploads_per_wallet: '1000000' },
});

// No worker: the ready videos are made by events alone and have no source, so a worker would
// keep failing their transcode jobs and send its own events while the test runs. Deletes still
// queue their jobs in the real Redis.
await stack.worker.stop();

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  await stack.stop().catch(() => {});
  process.exit(code);
}

try {
  const gated = await readyVideo(stack.host, stack.creator.token, stack.gate);
  const open = await readyVideo(stack.host, stack.creator.token, []);
  // Gated on an address that holds no contract (a creator's typo): what every viewer but the
  // owner is answered must still be a 4xx, never the chain's empty answer taken as an error.
  const nowhere = getAddress(`0x${randomBytes(20).toString('hex')}`);
  const codeless = await readyVideo(stack.host, stack.creator.token, [{ chain_id: 31337, contract: nowhere, standard: 'erc721' }]);
  const wallet = ({ address, key, token }) => ({ address, key, token });
  process.stdout.write(
    `${JSON.stringify({
      base: stack.host.base,
      domain: stack.host.domain,
      uri: stack.host.uri,
      chain_id: 31337,
      nft: stack.nft,
      creator: wallet(stack.creator),
      holder: wallet(stack.holder),
      stranger: wallet(stack.stranger),
      videos: { gated, public: open, codeless },
      state_dir: stack.host.stateDir,
    })}\n`,
  );
} catch (e) {
  process.stderr.write(`${e.stack ?? e}\n${stack.logs()}\n`);
  await stop(1);
}

process.stdin.on('end', () => stop(0));
process.stdin.on('error', () => stop(0));
process.stdin.resume();
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => stop(0));
