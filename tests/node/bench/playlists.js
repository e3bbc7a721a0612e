// Kept playlists vs rendering per request (issue 15 item 3), run by `scripts/bench playlists`.
// One app, two hosts on the same state directory and secrets: one with the default
// `playlist_templates = on` (the kept text, stamped with the viewer's token), one with `off`
// (the stored tracks parsed and rendered on every request, the path before). Two public videos
// made ready through signed events, two renditions and an audio track each, 4 s segments: a 40 s
// one (the viewers bench's length, 10 segments a track) and a 2 h one (1 800 a track). For each
// video, wrk on the signed master playlist, the 360p media playlist and the MPD, against each
// host in turn, in interleaved rounds with the order alternating; the ratio kept/direct is taken
// within each round and the median round's reported, with each side's median req/s and p99.
//
// Environment: BENCH_SECONDS per wrk run (5), BENCH_ROUNDS (3), BENCH_CONNECTIONS (32),
// BENCH_THREADS (2). Hosts at RUST_LOG=warn.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import os from 'node:os';
import { promisify } from 'node:util';

import { api } from '../lib/auth.js';
import { startHost } from '../lib/fixtures.js';
import { deriveKey, postEvent, signatureHeader } from '../lib/pipeline.js';
import { playback, startPlaybackStack } from '../lib/playback.js';

const run = promisify(execFile);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));

process.env.RUST_LOG = process.env.RUST_LOG ?? 'warn';

async function wrk(url) {
  // A 2 h video's MPD is ~2 MB: rendered per request, 32 of them at once take longer than
  // wrk's default 2 s timeout, which would count as socket errors rather than latency.
  const { stdout } = await run('wrk', [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--timeout', '30s', '--latency', url], {
    maxBuffer: 4 * 1024 * 1024,
  });
  const rps = Number(/^Requests\/sec:\s+([0-9.]+)/m.exec(stdout)?.[1]);
  const p99raw = /^\s+99%\s+([0-9.]+)(us|ms|s)\s*$/m.exec(stdout);
  const p99 = p99raw ? Number(p99raw[1]) * { us: 0.001, ms: 1, s: 1000 }[p99raw[2]] : NaN;
  const failed = /Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout) ?? /Socket errors:.*/.exec(stdout);
  if (failed) throw new Error(`wrk ${url}: ${failed[0]}\n${stdout}`);
  return { rps, p99 };
}

const segments = (name, count) =>
  Array.from({ length: count }, (_, i) => ({ uri: `${name}/seg_${String(i + 1).padStart(5, '0')}.m4s`, duration: 4 }));

let eventCounter = 0;

/** A public video made ready through signed events, with `count` 4 s segments a track. */
async function readyVideo(stack, title, count) {
  const created = await api(stack.host.base, 'POST', '/api/v1/videos', {
    token: stack.creator.token,
    json: { title, gate: [] },
  });
  assert.equal(created.status, 201, created.text);
  const id = created.json.id;
  const key = deriveKey(stack.eventsSecret, 'events');
  const send = async (type, data) => {
    const body = JSON.stringify({ id: `bench-playlists-${process.pid}-${++eventCounter}`, type, video_id: id, data });
    const res = await postEvent(stack.eventsUrl, body, signatureHeader(key, Math.floor(Date.now() / 1000), body));
    assert.equal(res.status, 200, `${type}: ${res.status} ${res.text}`);
  };
  const rendition = (name, width, height, bandwidth) => ({
    name, width, height, bandwidth, average_bandwidth: Math.round(bandwidth * 0.9), frame_rate: 25,
    codecs: 'avc1.64001e', init: `${name}/init.mp4`, segments: segments(name, count),
  });
  await send('upload.completed', { size: 1, source: `sources/${id}` });
  await send('transcode.started', { attempt: 1 });
  await send('transcode.completed', {
    duration: count * 4,
    renditions: [rendition('360p', 640, 360, 900_000), rendition('240p', 426, 240, 500_000)],
    audio: [{
      name: 'audio', bandwidth: 130_000, average_bandwidth: 128_000, codecs: 'mp4a.40.2', channels: 2,
      sample_rate: 48_000, init: 'audio/init.mp4', segments: segments('audio', count),
    }],
  });
  return id;
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
const median = (xs) => quantile([...xs].sort((a, b) => a - b), 0.5);

async function main() {
  const stack = await startPlaybackStack();
  let direct;
  try {
    direct = await startHost({
      vars: { ...stack.host.vars, playlist_templates: 'off' },
      stateDir: stack.host.stateDir,
    });
    const videos = [
      ['40 s', await readyVideo(stack, 'bench 40 s', 10)],
      ['2 h', await readyVideo(stack, 'bench 2 h', 1800)],
    ];
    const routes = [];
    for (const [length, id] of videos) {
      const pb = await playback(stack, id, stack.holder);
      assert.equal(pb.status, 200, pb.text);
      const master = new URL(pb.json.hls);
      const mpd = new URL(pb.json.dash);
      const media = new URL(master);
      media.pathname = media.pathname.replace('master.m3u8', '360p.m3u8');
      for (const [file, url] of [['master', master], ['360p media', media], ['MPD', mpd]]) {
        const kept = url.href;
        const other = new URL(url);
        other.host = direct.domain;
        const [a, b] = await Promise.all([fetch(kept), fetch(other.href)]);
        assert.equal(a.status, 200, `${kept}: ${a.status}`);
        assert.equal(b.status, 200, `${other.href}: ${b.status}`);
        const strip = (t) => t.replace(/hdnts=[^"\n]*/g, 'hdnts=T');
        const [textA, textB] = [await a.text(), await b.text()];
        assert.equal(strip(textA), strip(textB), `${length} ${file}: kept and direct differ`);
        routes.push({ name: `${length} ${file}`, kept, direct: other.href, bytes: Buffer.byteLength(textA) });
      }
    }
    for (const r of routes) {
      await run('wrk', ['-t1', '-c4', '-d1s', r.kept]);
      await run('wrk', ['-t1', '-c4', '-d1s', r.direct]);
    }
    const rounds = [];
    for (let i = 0; i < ROUNDS; i++) {
      const round = [];
      for (const r of routes) {
        const order = i % 2 === 0 ? ['kept', 'direct'] : ['direct', 'kept'];
        const got = {};
        for (const side of order) got[side] = await wrk(r[side]);
        console.error(`  round ${i + 1} ${r.name}: kept ${got.kept.rps.toFixed(0)} req/s, direct ${got.direct.rps.toFixed(0)} req/s`);
        round.push(got);
      }
      rounds.push(round);
    }
    console.log(
      `kept (playlist_templates=on) vs direct render (off), wrk -t${THREADS} -c${CONNECTIONS} -d${SECONDS}s --latency, ${ROUNDS} interleaved rounds (medians); load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    );
    console.log(`  ${'playlist'.padEnd(16)} ${'bytes'.padStart(8)} ${'kept req/s'.padStart(11)} ${'p99 ms'.padStart(8)} ${'direct req/s'.padStart(13)} ${'p99 ms'.padStart(8)} ${'ratio'.padStart(6)}  ratio per round`);
    routes.forEach((r, i) => {
      const ratios = rounds.map((round) => round[i].kept.rps / round[i].direct.rps);
      const col = (side, k) => median(rounds.map((round) => round[i][side][k]));
      console.log(
        `  ${r.name.padEnd(16)} ${String(r.bytes).padStart(8)} ${col('kept', 'rps').toFixed(0).padStart(11)} ${col('kept', 'p99').toFixed(2).padStart(8)} ${col('direct', 'rps').toFixed(0).padStart(13)} ${col('direct', 'p99').toFixed(2).padStart(8)} ${median(ratios).toFixed(2).padStart(6)}  ${ratios.map((x) => x.toFixed(2)).join(' / ')}`,
      );
    });
  } finally {
    await direct?.stop();
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
