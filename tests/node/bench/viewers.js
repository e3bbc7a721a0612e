// Viewers at scale (issue 15, item 1), run by `scripts/bench viewers [N]`: the real stack of
// lib/playback.js (anvil + GateNFT, Redis, the embedded host with its default limits, the
// `native-transcoder serve` origin and `work` worker), a clip made by ffmpeg, uploaded with
// tus-js-client and transcoded, and a pool of sessions: the NFT holder signs in
// BENCH_VIEWERS_SESSIONS times, each a real SIWE message signed by viem (signing in per viewer
// would bench the verify route, not viewing). Then target/release/bench-viewers plays N
// viewers against it (tools/bench-viewers/src/main.rs says how a viewer behaves) and reports.
//
// Environment: BENCH_VIEWERS (1000), BENCH_VIEWERS_RAMP_SECS (30), BENCH_VIEWERS_WATCH_SECS
// (60), BENCH_VIEWERS_SEEK (0.2, the share of viewers that seek once), BENCH_VIEWERS_SESSIONS
// (16), BENCH_VIEWERS_CLIP_SECONDS (40: ten 4 s segments per rendition). The gate cache
// lifetime is raised to 600 s and playback tokens to 900 s, so the run measures viewing, not
// chain reads or token expiry.

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { signIn } from '../lib/auth.js';
import { tempDir } from '../lib/fixtures.js';
import { startPlaybackStack, uploadReadyVideo } from '../lib/playback.js';

const run = promisify(execFile);
const VIEWERS = Number(process.env.BENCH_VIEWERS ?? 1000);
const RAMP = Number(process.env.BENCH_VIEWERS_RAMP_SECS ?? 30);
const WATCH = Number(process.env.BENCH_VIEWERS_WATCH_SECS ?? 60);
const SEEK = Number(process.env.BENCH_VIEWERS_SEEK ?? 0.2);
const SESSIONS = Number(process.env.BENCH_VIEWERS_SESSIONS ?? 16);
const CLIP = Number(process.env.BENCH_VIEWERS_CLIP_SECONDS ?? 40);
// Extra flags for the host, e.g. `--max-concurrent-requests 32 --queue-timeout-ms 250` (the
// pool and queue sweep in docs/benchmarks.md).
const HOST_ARGS = (process.env.BENCH_VIEWERS_HOST_ARGS ?? '').split(/\s+/).filter(Boolean);
const TOOL = path.resolve(import.meta.dirname, '../../../target/release/bench-viewers');

process.env.RUST_LOG = process.env.RUST_LOG ?? 'warn';

/** The pid of the process listening on 127.0.0.1:`port` (ours, so `ss -p` may show it). */
async function listener(port) {
  const { stdout } = await run('ss', ['-ltnpH', `sport = :${port}`]);
  const pid = /pid=(\d+)/.exec(stdout)?.[1];
  if (!pid) throw new Error(`no process of ours listens on port ${port}: ${stdout}`);
  return pid;
}

async function main() {
  if (!fs.existsSync(TOOL)) throw new Error(`${TOOL} is not built (cargo build --release -p bench-viewers)`);
  const t = Date.now();
  const stack = await startPlaybackStack({
    hostVars: { gate_cache_positive_secs: '600', playback_token_secs: '900' },
    hostArgs: HOST_ARGS,
  });
  try {
    const video = await uploadReadyVideo(stack, { seconds: CLIP, timeoutMs: 300_000 });
    const tokens = [stack.holder.token];
    while (tokens.length < SESSIONS) tokens.push((await signIn(stack.host, stack.holder)).token);
    const dir = tempDir('bench-viewers');
    const tokenFile = path.join(dir, 'sessions.txt');
    fs.writeFileSync(tokenFile, `${tokens.join('\n')}\n`, { mode: 0o600 });
    const hostPid = await listener(stack.host.port);
    const originPid = await listener(stack.origin.port);
    console.error(
      `setup ${((Date.now() - t) / 1000).toFixed(1)} s${HOST_ARGS.length ? ` (host ${HOST_ARGS.join(' ')})` : ''}: video ${video.id} (${CLIP} s; ${video.renditions
        .map((r) => r.name)
        .join(', ')}), ${tokens.length} sessions; host pid ${hostPid}, origin pid ${originPid}`,
    );
    const args = [
      '--base', stack.host.base, '--video', video.id, '--tokens', tokenFile,
      '--viewers', String(VIEWERS), '--ramp-secs', String(RAMP), '--watch-secs', String(WATCH),
      '--seek-fraction', String(SEEK), '--pid', `host=${hostPid}`, '--pid', `origin=${originPid}`,
    ];
    const code = await new Promise((resolve, reject) => {
      const child = spawn(TOOL, args, { stdio: ['ignore', 'inherit', 'inherit'] });
      child.on('error', reject);
      child.on('exit', (c, signal) => resolve(c ?? signal));
    });
    if (code !== 0) throw new Error(`bench-viewers exited with ${code}\n${stack.logs()}`);
    const warnings = stack.host.log().split('\n').filter((l) => /WARN|ERROR/.test(l));
    if (warnings.length) console.log(`host log: ${warnings.length} warnings/errors, last: ${warnings.at(-1).slice(0, 300)}`);
  } finally {
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
