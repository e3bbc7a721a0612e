// Hosted Spin's job hand-off, end to end with real parts: the app runs with
// job_transport = "http" and no Redis it can reach (redis_address / redis_host name a port where
// nothing listens), so a creator's upload can only become a job through the media origin's
// signed POST /internal/v1/jobs, which appends it to the local Redis stream; the real worker
// and ffmpeg then make the video ready. Forged, stale, oversized and replayed POSTs are refused.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';

import { api, signIn, viemSigner } from './lib/auth.js';
import {
  REPO_ROOT,
  firstLine,
  freePort,
  randomSecret,
  sleep,
  startAnvil,
  startHost,
  stopChild,
  tempDir,
  track,
} from './lib/fixtures.js';
import {
  NATIVE_BIN,
  deriveKey,
  makeTestVideo,
  signatureHeader,
  startRedis,
  startWorker,
  tusUpload,
} from './lib/pipeline.js';

const parts = [];
let redis;
let host;
let origin;
let worker;
let eventsSecret;
let root;
let originLog;
let anvil;

/** The origin with job intake on: its Redis user is the app's, given in the environment. */
async function startJobOrigin(port, mediaDir, eventsUrl, playbackSecret) {
  originLog = path.join(root, `origin-${port}.log`);
  const logFd = fs.openSync(originLog, 'a');
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('SPIN_VARIABLE_') && !k.startsWith('STREAMGATE_')),
  );
  Object.assign(env, {
    STREAMGATE_EVENTS_SECRET: eventsSecret,
    STREAMGATE_PLAYBACK_SECRET: playbackSecret,
    STREAMGATE_JOBS_REDIS_URL: redis.appUrl,
    RUST_LOG: 'info',
    NO_COLOR: '1',
  });
  const child = track(
    spawn(
      NATIVE_BIN,
      ['serve', '--listen', `127.0.0.1:${port}`, '--media-dir', mediaDir, '--events-url', eventsUrl],
      { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', logFd] },
    ),
  );
  fs.closeSync(logFd);
  const line = await firstLine(child, 20_000);
  assert.match(line, /^native-transcoder origin listening on http:\/\//, fs.readFileSync(originLog, 'utf8'));
  child.stdout.resume();
  return { base: `http://127.0.0.1:${port}`, stop: () => stopChild(child) };
}

function logs() {
  return [
    `--- origin\n${fs.readFileSync(originLog, 'utf8').slice(-4000)}`,
    `--- worker\n${worker.log().slice(-3000)}`,
    `--- host\n${host.log().slice(-4000)}`,
  ].join('\n');
}

before(async () => {
  root = tempDir('hosted-jobs');
  eventsSecret = randomSecret();
  anvil = await startAnvil();
  parts.push(anvil);
  redis = await startRedis();
  parts.push(redis);
  const originPort = await freePort();
  const originBase = `http://127.0.0.1:${originPort}`;
  host = await startHost({
    anvil,
    vars: {
      events_secret: eventsSecret,
      media_base_url: originBase,
      job_transport: 'http',
      job_origin_url: originBase,
      // No Redis for the app: a closed port, in the URL and in its allowed host.
      redis_address: 'redis://127.0.0.1:1',
      redis_host: '127.0.0.1:1',
    },
  });
  parts.push(host);
  const mediaDir = path.join(root, 'media');
  const eventsUrl = `${host.base}/internal/v1/events`;
  origin = await startJobOrigin(originPort, mediaDir, eventsUrl, host.vars.playback_secret);
  parts.push(origin);
  worker = await startWorker({ mediaDir, eventsUrl, redisUrl: redis.workerUrl, secret: eventsSecret, logDir: root });
  parts.push(worker);
});

after(async () => {
  for (const p of parts.reverse()) await p.stop().catch(() => {});
});

const now = () => Math.floor(Date.now() / 1000);

async function streamLength() {
  return Number(await redis.command('XLEN', 'streamgate:jobs'));
}

test('an upload is transcoded to ready through the origin, the app never reaching Redis', async () => {
  const creator = await signIn(host, viemSigner(undefined, anvil.url));
  const clip = await makeTestVideo(root, { seconds: 4, size: '640x360' });
  const created = await api(host.base, 'POST', '/api/v1/videos', {
    json: { title: 'through the origin', gate: [] },
    token: creator.token,
  });
  assert.equal(created.status, 201, created.text);
  const before = await streamLength();
  const upload = await tusUpload(clip, { endpoint: created.json.upload.url, chunkSize: 512 * 1024, resume: 'none' });
  assert.ok(upload.ok, `upload: ${upload.error}`);

  let video;
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    video = (await api(host.base, 'GET', `/api/v1/videos/${created.json.id}`, { token: creator.token })).json;
    if (video.status === 'ready' || video.status === 'failed') break;
    await sleep(250);
  }
  assert.equal(video.status, 'ready', `the video ends ready, not ${video.status}\n${logs()}`);
  assert.equal((await streamLength()) - before, 1, 'exactly one job reached the stream');
  const originText = fs.readFileSync(originLog, 'utf8');
  assert.match(originText, /job taken from the app/, 'the job came through the origin');
  // The upload's trace survives the hand-off: the origin's upload, the job it took from the app
  // and the worker's processing of it share one trace id (docs/operations.md).
  const uploadTrace = originText.match(/upload complete .*trace_id=([0-9a-f]{32})/)?.[1];
  assert.ok(uploadTrace, `the origin logs the upload's trace id\n${originText}`);
  assert.match(originText, new RegExp(`job taken from the app .*trace_id=${uploadTrace}`), 'the job carries it');
  assert.match(worker.log(), new RegExp(`job\\{trace_id=${uploadTrace}\\}: .* probed`), 'the worker processes it under it');
  assert.doesNotMatch(host.log(), /Outbound network destination not allowed: redis/, 'the app never tried Redis');
});

test('the origin refuses forged, stale, oversized and replayed jobs', async () => {
  const url = `${origin.base}/internal/v1/jobs`;
  const key = deriveKey(eventsSecret, 'jobs');
  const post = async (body, signature, extra = {}) => {
    const headers = { 'content-type': 'application/json', ...extra };
    if (signature) headers['StreamGate-Signature'] = signature;
    const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    return { status: res.status, text, json: text ? JSON.parse(text) : null };
  };
  const job = (id) =>
    JSON.stringify({ job_id: id, fields: [['action', 'delete'], ['video_id', `nosuch${id.slice(0, 8)}`]] });
  const id = randomBytes(16).toString('hex');
  const body = job(id);
  const before = await streamLength();

  // Signed with another key (the events key, or another secret's): refused, nothing enqueued.
  for (const wrong of [deriveKey(eventsSecret, 'events'), deriveKey(randomSecret(), 'jobs')]) {
    const forged = await post(body, signatureHeader(wrong, now(), body));
    assert.equal(forged.status, 401, forged.text);
    assert.equal(forged.json.code, 'bad_event_signature');
  }
  const unsigned = await post(body, null);
  assert.equal(unsigned.status, 401, unsigned.text);
  const stale = await post(body, signatureHeader(key, now() - 1000, body));
  assert.equal(stale.status, 401, stale.text);
  assert.equal(stale.json.code, 'stale_event');
  // A body past the limit is refused on its declared length, before it is read.
  const big = JSON.stringify({ job_id: id, fields: [['action', 'x'.repeat(10_000)]] });
  const tooBig = await post(big, signatureHeader(key, now(), big));
  assert.equal(tooBig.status, 413, tooBig.text);
  assert.equal(await streamLength(), before, 'nothing refused was enqueued');

  // The genuine request is taken once; the very same bytes again are a replay.
  const signature = signatureHeader(key, now(), body);
  const first = await post(body, signature);
  assert.equal(first.status, 200, first.text);
  assert.match(first.json.stream_id, /^\d+-\d+$/);
  const replay = await post(body, signature);
  assert.equal(replay.status, 409, replay.text);
  assert.equal(replay.json.code, 'duplicate_job');
  assert.equal(replay.json.stream_id, first.json.stream_id);
  // Re-signed with a fresh timestamp it is still the same job id: still refused.
  const resigned = await post(body, signatureHeader(key, now(), body));
  assert.equal(resigned.status, 409, resigned.text);
  assert.equal(await streamLength(), before + 1, 'the job is in the stream once');

  // A signed job the worker could not take is refused with a reason, not enqueued.
  const bad = JSON.stringify({ job_id: randomBytes(16).toString('hex'), fields: [['video_id', 'v']] });
  const invalid = await post(bad, signatureHeader(key, now(), bad));
  assert.equal(invalid.status, 422, invalid.text);
  assert.equal(invalid.json.code, 'invalid_job');
  // Of the right shape but a job the worker would only dead-letter: refused with its reason.
  for (const [fields, why] of [
    [[['action', 'resize'], ['video_id', 'v']], /unknown action `resize`/],
    [[['action', 'delete'], ['video_id', '../v']], /no valid video_id/],
    [[['action', 'transcode'], ['video_id', 'v'], ['source', 'sources/w']], /not the video's own upload/],
  ]) {
    const unusable = JSON.stringify({ job_id: randomBytes(16).toString('hex'), fields });
    const refused = await post(unusable, signatureHeader(key, now(), unusable));
    assert.equal(refused.status, 422, refused.text);
    assert.equal(refused.json.code, 'invalid_job');
    assert.match(refused.json.error, why);
  }
  const notPost = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  assert.equal(notPost.status, 405);
  assert.equal(await streamLength(), before + 1);
});
