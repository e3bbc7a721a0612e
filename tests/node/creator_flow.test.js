// The creator's half of StreamGate end to end, with real parts only: a creator signs in with a
// real wallet (viem + siwe, anvil), creates a video on the real host running spin.toml, uploads
// a clip that ffmpeg made with the standard tus-js-client to `native-transcoder serve`, and the
// real `native-transcoder work` worker, fed through a private redis-server, drives the real
// ffmpeg until the video is ready; ffprobe then reads what it wrote. Also: a text file fails
// with a reason its owner alone sees (to anyone else the video does not exist), a SIGKILLed
// worker loses nothing, a non-owner cannot change the gate, and forged or stale events are
// refused.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { getAddress } from 'viem';

import { api, assertError, assertJsonType, newKey, signIn, viemSigner } from './lib/auth.js';
import { CHAIN_ID, sleep, tempDir } from './lib/fixtures.js';
import {
  cutPatch,
  deriveKey,
  ffprobe,
  listTree,
  makeTestVideo,
  postEvent,
  probeSegment,
  signatureHeader,
  startPipeline,
  tus,
  tusHead,
  tusUpload,
} from './lib/pipeline.js';

const CLIP_SECONDS = 6;
const CHUNK = 256 * 1024;
const LIFECYCLE = ['awaiting_upload', 'queued', 'transcoding', 'ready'];
/** 1280x720 source: every rung of the ladder at or below 720p (docs: no upscaling). */
const EXPECTED_RUNGS = ['720p', '480p', '360p', '240p'];

let stack;
let scratch;
let clip;
let creator;
/** A second wallet, signed in for real: someone else's videos are what it may try to see. */
let stranger;

before(async () => {
  scratch = tempDir('creator');
  let made;
  [stack, made] = await Promise.all([
    startPipeline(),
    makeTestVideo(scratch, { seconds: CLIP_SECONDS, size: '1280x720', rate: 30 }),
  ]);
  clip = made;
  creator = await signIn(stack.host, viemSigner(undefined, stack.anvil.url));
  stranger = await signIn(stack.host, viemSigner(newKey(), stack.anvil.url));
  assert.notEqual(stranger.address, creator.address);
});

after(async () => {
  await stack?.stop();
});

const now = () => Math.floor(Date.now() / 1000);
const sha256 = (file) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const show = (res) => `${res.status} ${res.text}`;

/** A failure message with every process's log tail attached. */
function withLogs(message) {
  return `${message}\n\n${stack.logs()}`;
}

function gateRule() {
  // A syntactically valid, checksummed contract address; nothing reads the chain here.
  return { chain_id: CHAIN_ID, contract: getAddress(`0x${randomBytes(20).toString('hex')}`), standard: 'erc721' };
}

async function createVideo(token, { title = 'A test clip', gate = [] } = {}) {
  const res = await api(stack.host.base, 'POST', '/api/v1/videos', { json: { title, gate }, token });
  assert.equal(res.status, 201, `create: ${show(res)}`);
  assertJsonType(res);
  assert.equal(res.json.status, 'awaiting_upload');
  assert.equal(res.json.upload.protocol, 'tus');
  const url = new URL(res.json.upload.url);
  assert.equal(url.origin, stack.origin.base, 'the upload URL is on the media origin (media_base_url)');
  assert.equal(url.pathname, `/uploads/${res.json.id}`, 'the upload URL names the video');
  assert.ok(url.searchParams.get('token'), 'the upload URL carries a signed token');
  return res.json;
}

/** The video as its owner sees it (until it is ready, nobody else sees it at all). */
async function getVideo(id, token = creator.token) {
  const res = await api(stack.host.base, 'GET', `/api/v1/videos/${id}`, { token });
  assert.equal(res.status, 200, `get ${id}: ${show(res)}`);
  return res.json;
}

/** The ids of one page of `GET /api/v1/videos?<query>` as `token` (anonymous without). */
async function listIds(query, token) {
  const res = await api(stack.host.base, 'GET', `/api/v1/videos?${query}`, { token });
  assert.equal(res.status, 200, `list ${query}: ${show(res)}`);
  return res.json.items.map((v) => v.id);
}

/**
 * Makes the video ready with the events the native side signs, without a transcode (its
 * segments do not exist): enough for who-sees-what.
 */
async function readyThroughEvents(id) {
  const eventKey = deriveKey(stack.eventsSecret, 'events');
  const send = async (type, data) => {
    const body = JSON.stringify({ id: `direct-${randomBytes(8).toString('hex')}`, type, video_id: id, data });
    const res = await postEvent(stack.eventsUrl, body, signatureHeader(eventKey, now(), body));
    assert.equal(res.status, 200, `${type}: ${show(res)}`);
  };
  await send('upload.completed', { size: 1, source: `sources/${id}` });
  await send('transcode.started', { attempt: 1 });
  await send('transcode.completed', {
    duration: 4,
    renditions: [{
      name: '360p', width: 640, height: 360, bandwidth: 900_000, average_bandwidth: 800_000, frame_rate: 25,
      codecs: 'avc1.64001e', init: '360p/init.mp4', segments: [{ uri: '360p/seg_00001.m4s', duration: 4 }],
    }],
  });
}

/**
 * What `token` (anonymous without) hears of video `id` is what it hears of an id that does not
 * exist: 404 not_found, the same sentence but for the id.
 */
async function assertHidden(id, token, who) {
  const unknownId = `nosuchvideo${randomBytes(4).toString('hex')}`;
  const hidden = await api(stack.host.base, 'GET', `/api/v1/videos/${id}`, { token });
  const unknown = await api(stack.host.base, 'GET', `/api/v1/videos/${unknownId}`, { token });
  assertError(unknown, 404, 'not_found');
  assertError(hidden, 404, 'not_found');
  assert.equal(
    hidden.text.replaceAll(id, '<id>'),
    unknown.text.replaceAll(unknownId, '<id>'),
    `${who} cannot tell the video from an unknown id`,
  );
}

/**
 * Polls GET /videos/{id} every `intervalMs` until `done(video)` or `timeoutMs`, recording each
 * change of (status, progress). `onPoll(video)` is called on every answer.
 */
async function watch(id, { done, timeoutMs = 90_000, intervalMs = 100, onPoll } = {}) {
  const samples = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const video = await getVideo(id);
    const last = samples.at(-1);
    if (!last || last.status !== video.status || last.progress !== video.progress) {
      samples.push({ status: video.status, progress: video.progress, at: Date.now() });
    }
    if (onPoll && (await onPoll(video))) return { video, samples };
    if (done(video)) return { video, samples };
    if (Date.now() > deadline) {
      throw new Error(
        withLogs(`video ${id} still ${video.status} after ${timeoutMs} ms; seen: ${JSON.stringify(samples)}`),
      );
    }
    await sleep(intervalMs);
  }
}

const settled = (v) => v.status === 'ready' || v.status === 'failed';

/** Statuses only move forward along the lifecycle; progress never goes back. */
function assertMonotone(samples) {
  const seen = samples.map((s) => `${s.status}:${s.progress ?? '-'}`).join(' → ');
  let index = -1;
  let progress = -1;
  for (const s of samples) {
    const i = LIFECYCLE.indexOf(s.status);
    assert.ok(i >= 0, `unexpected status ${s.status}: ${seen}`);
    assert.ok(i >= index, `status went backwards: ${seen}`);
    index = i;
    if (s.progress !== undefined && s.progress !== null) {
      assert.ok(Number.isInteger(s.progress) && s.progress >= 0 && s.progress <= 100, `progress ${s.progress}: ${seen}`);
      assert.ok(s.progress >= progress, `progress went backwards: ${seen}`);
      progress = s.progress;
    }
  }
  return seen;
}

/** The work directories (`media/.tmp-*`) under the media root. */
function tmpEntries() {
  const media = path.join(stack.mediaDir, 'media');
  return fs.existsSync(media) ? fs.readdirSync(media).filter((n) => n.startsWith('.tmp-')) : [];
}

/**
 * A ready video's ladder, checked from the files the worker wrote (segment serving through the
 * origin is a later issue, so the test reads `<media-dir>/media/<id>/` directly):
 * - the API lists ≥ 2 renditions, names unique, the ones the source size calls for;
 * - `ladder.json` (what the worker announced in transcode.completed) agrees with the API;
 * - every listed init and media segment exists and ffprobe reads it (init + segment): a
 *   rendition's segments hold an H.264 stream of the rendition's size and no audio; the one
 *   audio track's hold AAC and no video; no file on disk is unlisted;
 * - each track's segment durations (listed and measured) sum to the clip's length.
 */
async function assertLadder(video) {
  const names = video.renditions.map((r) => r.name);
  assert.ok(video.renditions.length >= 2, `≥ 2 renditions, got ${JSON.stringify(names)}`);
  assert.equal(new Set(names).size, names.length, `rendition names are unique: ${JSON.stringify(names)}`);
  assert.deepEqual([...names].sort(), [...EXPECTED_RUNGS].sort(), 'the ladder for a 720p source, nothing above it');

  const dir = path.join(stack.mediaDir, 'media', video.id);
  assert.ok(fs.existsSync(dir), `media/${video.id} exists`);
  const ladder = JSON.parse(fs.readFileSync(path.join(dir, 'ladder.json'), 'utf8'));
  assert.deepEqual(
    ladder.renditions.map((r) => r.name).sort(),
    [...names].sort(),
    'the published ladder and the API list the same renditions',
  );
  assert.ok(fs.statSync(path.join(dir, ladder.poster ?? 'poster.jpg')).size > 0, 'a poster image');
  const poster = await ffprobe(path.join(dir, ladder.poster ?? 'poster.jpg'));
  assert.equal(poster.streams[0].codec_type, 'video', 'the poster is an image ffprobe reads');

  const onDisk = new Set(listTree(dir).filter((f) => f.endsWith('.m4s') || f.endsWith('.mp4')));
  const listed = new Set();
  const report = [];
  for (const summary of video.renditions) {
    const r = ladder.renditions.find((x) => x.name === summary.name);
    for (const field of ['width', 'height', 'bandwidth', 'average_bandwidth', 'codecs']) {
      assert.equal(summary[field], r[field], `${r.name}.${field}: API and ladder agree`);
    }
    assert.ok(r.bandwidth >= r.average_bandwidth && r.average_bandwidth > 0, `${r.name}: bandwidths`);
    assert.match(r.codecs, /^avc1\.[0-9a-f]{6}$/, `${r.name}: codecs string (video only: audio is its own track)`);
    assert.ok(r.segments.length >= 2, `${r.name}: 2–4 s segments make ≥ 2 of a ${CLIP_SECONDS} s clip`);
    const init = path.join(dir, r.init);
    assert.ok(fs.existsSync(init), `${r.name}: init segment ${r.init} exists`);
    listed.add(r.init);
    let listedSum = 0;
    let probedSum = 0;
    for (const seg of r.segments) {
      const file = path.join(dir, seg.uri);
      assert.ok(fs.existsSync(file), `${r.name}: segment ${seg.uri} exists`);
      assert.ok(!listed.has(seg.uri), `${r.name}: segment ${seg.uri} listed once`);
      listed.add(seg.uri);
      assert.ok(seg.duration > 0 && seg.duration <= 4.5, `${seg.uri}: duration ${seg.duration} s`);
      const probe = await probeSegment(init, file, scratch);
      const v = probe.streams.find((s) => s.codec_type === 'video');
      const a = probe.streams.find((s) => s.codec_type === 'audio');
      assert.ok(v, `${seg.uri}: ffprobe finds a video stream`);
      assert.equal(v.codec_name, 'h264', `${seg.uri}: H.264`);
      assert.deepEqual([v.width, v.height], [r.width, r.height], `${seg.uri}: the rendition's size`);
      assert.equal(a, undefined, `${seg.uri}: no audio muxed into a video segment`);
      assert.ok(probe.frames > 0, `${seg.uri}: video frames`);
      assert.ok(
        Math.abs(probe.duration - seg.duration) < 0.25,
        `${seg.uri}: ffprobe measures ${probe.duration} s, the ladder lists ${seg.duration} s`,
      );
      listedSum += seg.duration;
      probedSum += probe.duration;
    }
    assert.ok(Math.abs(listedSum - CLIP_SECONDS) < 0.3, `${r.name}: listed durations sum to ${listedSum} s`);
    assert.ok(Math.abs(probedSum - CLIP_SECONDS) < 0.3, `${r.name}: measured durations sum to ${probedSum} s`);
    report.push(`${r.name} ${r.width}x${r.height} ${r.segments.length} segments ${probedSum.toFixed(3)} s`);
  }
  assert.equal(video.audio.length, 1, `one audio track: ${JSON.stringify(video.audio)}`);
  assert.equal(ladder.audio.length, 1, 'the ladder announced one audio track');
  const [audio] = ladder.audio;
  for (const field of ['name', 'bandwidth', 'average_bandwidth', 'codecs', 'channels', 'sample_rate']) {
    assert.equal(video.audio[0][field], audio[field], `audio.${field}: API and ladder agree`);
  }
  assert.deepEqual([audio.codecs, audio.channels, audio.sample_rate], ['mp4a.40.2', 2, 48000], 'AAC-LC stereo 48 kHz');
  assert.ok(audio.bandwidth >= audio.average_bandwidth && audio.average_bandwidth > 0, 'audio bandwidths');
  listed.add(audio.init);
  let audioSum = 0;
  for (const seg of audio.segments) {
    assert.ok(!listed.has(seg.uri), `audio segment ${seg.uri} listed once`);
    listed.add(seg.uri);
    const probe = await probeSegment(path.join(dir, audio.init), path.join(dir, seg.uri), scratch);
    const a = probe.streams.find((s) => s.codec_type === 'audio');
    assert.ok(a && a.codec_name === 'aac', `${seg.uri}: an AAC stream`);
    assert.equal(probe.streams.find((s) => s.codec_type === 'video'), undefined, `${seg.uri}: audio only`);
    assert.ok(Math.abs(probe.duration - seg.duration) < 0.1, `${seg.uri}: ffprobe ${probe.duration} s, listed ${seg.duration} s`);
    audioSum += probe.duration;
  }
  assert.ok(Math.abs(audioSum - CLIP_SECONDS) < 0.3, `audio: measured durations sum to ${audioSum} s`);
  report.push(`audio ${audio.codecs} ${audio.segments.length} segments ${audioSum.toFixed(3)} s`);
  assert.deepEqual([...onDisk].sort(), [...listed].sort(), 'every segment file on disk is listed, and only those');
  return report;
}

/** The job stream's consumer group: how many entries are pending, and the dead letters. */
async function queueState() {
  const pending = await stack.redis.command('XPENDING', 'streamgate:jobs', 'transcoders');
  const dead = await stack.redis.command('XRANGE', 'streamgate:jobs:dead', '-', '+');
  return { pending: Number(pending[0]), dead };
}

/** The job is acknowledged shortly after the app accepted its final event. */
async function assertQueueDrained(id) {
  const deadline = Date.now() + 10_000;
  let state;
  do {
    state = await queueState();
    if (state.pending === 0) break;
    await sleep(100);
  } while (Date.now() < deadline);
  assert.equal(state.pending, 0, withLogs('every job is acknowledged'));
  const deadForVideo = state.dead.filter(([, fields]) => fields.includes(id));
  assert.deepEqual(deadForVideo, [], `no dead letter for ${id}`);
}

/** Processes whose command line mentions `needle` (e.g. an ffmpeg writing into a work dir). */
function processesMentioning(needle) {
  const found = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(needle)) found.push(`${pid}: ${cmd.slice(0, 200)}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------

test('a creator uploads a clip with tus-js-client in chunks, interrupted (a stop and a dropped connection) and resumed; it becomes ready with a ladder ffprobe reads', async (t) => {
  const started = Date.now();
  const size = fs.statSync(clip).size;
  assert.ok(size > 4 * CHUNK, `the clip (${size} bytes) spans several ${CHUNK}-byte chunks`);
  const source = await ffprobe(clip);
  assert.ok(Math.abs(Number(source.format.duration) - CLIP_SECONDS) < 0.1, 'the generated clip is 6 s');

  const created = await createVideo(creator.token, { title: 'Resumed upload' });
  const id = created.id;
  const before = await getVideo(id);
  assert.equal(before.status, 'awaiting_upload');
  assert.equal(before.owner, creator.address);
  assert.deepEqual(before.renditions, []);
  const samples = [{ status: before.status, progress: before.progress }];

  // The uploader remembers upload URLs the way tus-js-client does across restarts: on disk.
  const urlStorage = new tus.FileUrlStorage(path.join(scratch, `tus-urls-${id}.json`));
  const endpoint = created.upload.url;

  // 1. First chunk acknowledged, then the uploader stops (a closed laptop lid).
  const first = await tusUpload(clip, {
    endpoint,
    chunkSize: CHUNK,
    urlStorage,
    onChunk: () => true,
  });
  assert.equal(first.aborted, true, `the first upload stops after one chunk: ${first.error ?? ''}`);
  assert.equal(first.accepted, CHUNK, 'one chunk acknowledged');
  assert.deepEqual(
    first.requests.map((r) => `${r.method} ${r.offset ?? ''}`.trim()),
    ['POST', 'PATCH 0'],
    'creation, then one PATCH',
  );
  const uploadUrl = first.upload.url;
  assert.ok(uploadUrl.startsWith(`${stack.origin.base}/uploads/${id}/`), `upload URL ${uploadUrl}`);
  let head = await tusHead(uploadUrl);
  assert.equal(head.status, 200, 'HEAD on the upload URL');
  assert.equal(head.offset, first.accepted, 'the server holds exactly the acknowledged bytes');
  assert.equal(head.length, size, 'Upload-Length is the file size');
  assert.equal((await getVideo(id)).status, 'awaiting_upload', 'an incomplete upload queues nothing');

  // 2. A new client finds the upload in its storage and resumes it (HEAD, then PATCH from the
  //    server's offset); it stops after one more chunk.
  const second = await tusUpload(clip, { endpoint, chunkSize: CHUNK, urlStorage, onChunk: () => true });
  assert.equal(second.aborted, true, `the second upload stops after one chunk: ${second.error ?? ''}`);
  assert.equal(second.upload.url, uploadUrl, 'the same upload was resumed');
  assert.deepEqual(
    second.requests.map((r) => `${r.method} ${r.offset ?? ''}`.trim()),
    ['HEAD', `PATCH ${first.accepted}`],
    'resuming: HEAD, then a PATCH at the server offset (no new creation, nothing re-sent from 0)',
  );
  assert.equal(second.accepted, first.accepted + CHUNK);
  head = await tusHead(uploadUrl);
  assert.equal(head.offset, second.accepted, 'the server holds exactly the acknowledged bytes');

  // 2b. The network drops in the middle of a PATCH body: the server keeps what arrived (and
  //     says so on HEAD), so the next resume does not send it again.
  const cutAt = second.accepted;
  const arrived = Math.floor(CHUNK / 2) + 123;
  await cutPatch(uploadUrl, clip, { offset: cutAt, sent: arrived, declared: CHUNK });
  head = await tusHead(uploadUrl);
  assert.equal(head.status, 200, 'HEAD after the cut');
  assert.equal(head.offset, cutAt + arrived, 'a cut PATCH keeps the bytes that arrived, durably');
  t.diagnostic(
    `offsets: first stop ${first.accepted}; second stop ${second.accepted}; cut PATCH left ${head.offset} of ${size}`,
  );
  // 3. Resumed again, to the end.
  const resumeAt = head.offset;
  const third = await tusUpload(clip, { endpoint, chunkSize: CHUNK, urlStorage });
  assert.equal(third.ok, true, `the third upload completes: ${third.error ?? ''}`);
  assert.equal(third.upload.url, uploadUrl);
  assert.ok(!third.requests.some((r) => r.method === 'POST'), 'no new upload was created');
  const patches3 = third.requests.filter((r) => r.method === 'PATCH');
  assert.equal(third.requests[0].method, 'HEAD', 'resuming starts with HEAD');
  assert.equal(Number(patches3[0].offset), resumeAt, 'resumed where the server said, nothing re-sent from 0');
  assert.equal(
    patches3.length,
    Math.ceil((size - resumeAt) / CHUNK),
    'only the missing bytes were sent, in chunks',
  );
  const uploadedAt = Date.now();

  // 4. Status and progress move forward until the video is ready.
  const { video, samples: moved } = await watch(id, { done: settled, intervalMs: 50 });
  samples.push(...moved);
  const seen = assertMonotone(samples);
  t.diagnostic(`statuses: ${seen}`);
  assert.equal(video.status, 'ready', withLogs(`the video ends ready, not ${video.status}: ${video.error ?? ''}`));
  assert.equal(video.progress, 100, 'a ready video is at 100 %');
  assert.equal(video.error, undefined, 'a ready video has no error');
  const between = samples.filter((s) => s.status === 'queued' || s.status === 'transcoding');
  assert.ok(between.length > 0, `queued or transcoding was seen between upload and ready: ${seen}`);
  assert.ok(
    samples.some((s) => s.status === 'transcoding'),
    `transcoding was seen: ${seen}`,
  );
  assert.ok(
    samples.some((s) => s.status === 'transcoding' && s.progress > 0 && s.progress < 100),
    `progress was seen moving between 0 and 100: ${seen}`,
  );

  // The source the origin kept is byte for byte the file the creator had.
  assert.equal(sha256(path.join(stack.mediaDir, 'sources', id)), sha256(clip), 'the upload is intact');

  const report = await assertLadder(video);
  t.diagnostic(report.join('; '));
  assert.deepEqual(tmpEntries(), [], 'no work directory is left after ready');
  await assertQueueDrained(id);
  t.diagnostic(`upload ${uploadedAt - started} ms, upload→ready ${Date.now() - uploadedAt} ms`);
});

test('a text file uploaded as a video ends failed with a readable reason', async (t) => {
  const text = path.join(scratch, 'notes.txt');
  fs.writeFileSync(text, 'These are my notes, not a video.\n'.repeat(200));
  const created = await createVideo(creator.token, { title: 'Not a video' });
  const done = await tusUpload(text, { endpoint: created.upload.url, chunkSize: CHUNK, resume: 'none' });
  assert.equal(done.ok, true, `the upload itself succeeds: ${done.error ?? ''}`);

  const { video, samples } = await watch(created.id, { done: settled, timeoutMs: 60_000 });
  assert.equal(video.status, 'failed', withLogs(`a text file fails, got ${JSON.stringify(video)}`));
  assert.equal(typeof video.error, 'string', 'a failed video says why');
  assert.match(video.error, /not in a supported container/i, `the reason is readable: ${video.error}`);
  t.diagnostic(`error: ${video.error}`);
  assert.ok(video.error.length < 500, 'the reason is a sentence, not a log dump');
  assert.ok(!video.error.includes(stack.mediaDir), `the reason does not expose server paths: ${video.error}`);
  assert.deepEqual(video.renditions, []);
  const statuses = samples.map((s) => s.status);
  const order = ['awaiting_upload', 'queued', 'transcoding', 'failed'];
  const ranks = statuses.map((s) => order.indexOf(s));
  assert.ok(
    ranks.every((r, i) => r >= 0 && (i === 0 || r >= ranks[i - 1])),
    `only forward steps to failed: ${statuses.join(' → ')}`,
  );
  assert.ok(!fs.existsSync(path.join(stack.mediaDir, 'media', created.id)), 'no ladder was published');
  assert.deepEqual(tmpEntries(), [], 'no work directory is left');
  // A bad input is a permanent failure: acknowledged once, not retried into the dead letters.
  await assertQueueDrained(created.id);

  // The reason is a fixed code to match on, besides the sentence; both are the owner's alone.
  assert.match(video.error_code ?? '', /^[a-z][a-z0-9_]*$/, `a snake_case error_code: ${JSON.stringify(video)}`);
  t.diagnostic(`error_code: ${video.error_code}`);
  const own = await api(stack.host.base, 'GET', `/api/v1/videos?owner=${creator.address}&status=failed&limit=100`, {
    token: creator.token,
  });
  assert.equal(own.status, 200, show(own));
  const listed = own.json.items.find((v) => v.id === created.id);
  assert.ok(listed, 'the owner lists her failed video');
  assert.deepEqual([listed.error_code, listed.error], [video.error_code, video.error]);
  for (const [who, token] of [['a stranger', stranger.token], ['an anonymous reader', undefined]]) {
    await assertHidden(created.id, token, who);
    for (const query of ['limit=100', `owner=${creator.address}&limit=100`]) {
      const ids = await listIds(query, token);
      assert.ok(!ids.includes(created.id), `${who} does not see the failed video in ?${query}`);
    }
    const refused = await api(stack.host.base, 'GET', `/api/v1/videos?owner=${creator.address}&status=failed`, { token });
    assertError(refused, 400, 'invalid_query');
  }
});

test('before it is ready a video is its owner\'s alone; the public list holds ready videos only', async () => {
  const published = await createVideo(creator.token, { title: 'Published' });
  await readyThroughEvents(published.id);
  const created = await createVideo(creator.token, { title: 'Work in progress' });
  const pending = await getVideo(created.id);
  assert.equal(pending.status, 'awaiting_upload');
  for (const [who, token] of [['a stranger', stranger.token], ['an anonymous reader', undefined]]) {
    await assertHidden(created.id, token, who);
  }
  assert.ok(
    (await listIds(`owner=${creator.address}&status=awaiting_upload`, creator.token)).includes(created.id),
    'the owner lists it with owner=<her address>',
  );

  const everyone = await api(stack.host.base, 'GET', '/api/v1/videos?limit=100');
  assert.equal(everyone.status, 200, show(everyone));
  assert.ok(everyone.json.items.some((v) => v.id === published.id), 'the ready video is public');
  for (const v of everyone.json.items) {
    assert.equal(v.status, 'ready', `the anonymous list holds ready videos only: ${JSON.stringify(v)}`);
    assert.equal(v.error_code, undefined);
    assert.equal(v.error, undefined);
  }
  assert.ok(!everyone.json.items.some((v) => v.id === created.id));

  // A session that is presented is checked: an expired or forged one is 401, not anonymous.
  const forged = await api(stack.host.base, 'GET', `/api/v1/videos/${created.id}`, { token: `${creator.token}x` });
  assert.equal(forged.status, 401, show(forged));
  const forgedList = await api(stack.host.base, 'GET', '/api/v1/videos', { token: 'not-a-token' });
  assert.equal(forgedList.status, 401, show(forgedList));
});

test('a SIGKILLed worker mid-job, restarted, still brings the video to ready with no duplicate or broken renditions', async (t) => {
  // The job goes to a worker with a slower x264 preset, so that it is surely caught mid-encode.
  await stack.worker.stop();
  const victim = await stack.startWorker({ preset: 'medium', claimTimeoutMs: 2_000 });
  stack.worker = victim;

  const created = await createVideo(creator.token, { title: 'Worker crash' });
  const id = created.id;
  const done = await tusUpload(clip, { endpoint: created.upload.url, chunkSize: 1024 * 1024, resume: 'none' });
  assert.equal(done.ok, true, `upload: ${done.error ?? ''}`);

  // Wait until the victim is encoding: status transcoding, ffmpeg's progress reported, its work
  // directory there and nothing published yet.
  let workDir;
  const caught = await watch(id, {
    done: settled,
    intervalMs: 25,
    timeoutMs: 60_000,
    onPoll: (v) => {
      if (v.status !== 'transcoding' || !(v.progress > 0)) return false;
      workDir = tmpEntries().find((n) => n.startsWith(`.tmp-${id}-`) && !n.endsWith('.lock'));
      return Boolean(workDir);
    },
  });
  assert.ok(workDir, withLogs(`the worker was not caught mid-encode: ${JSON.stringify(caught.samples)}`));
  assert.ok(caught.video.progress < 100, 'caught before the end');
  assert.ok(!fs.existsSync(path.join(stack.mediaDir, 'media', id)), 'nothing published yet');
  await victim.kill();
  const killedAt = Date.now();
  const progressAtKill = (await getVideo(id)).progress;
  const partial = listTree(path.join(stack.mediaDir, 'media', workDir)).filter((f) => !f.endsWith('/'));
  t.diagnostic(`SIGKILL at progress ${progressAtKill} with ${workDir} half written (${partial.length} files)`);

  // Its ffmpeg does not outlive it and go on writing (PR_SET_PDEATHSIG).
  await sleep(300);
  assert.deepEqual(processesMentioning(workDir), [], 'no process still writes into the dead worker\'s work dir');
  // Nobody works on the job now: the video stays transcoding, nothing is published.
  await sleep(1_000);
  const stalled = await getVideo(id);
  assert.equal(stalled.status, 'transcoding', 'no one else finished it meanwhile');
  assert.ok(!fs.existsSync(path.join(stack.mediaDir, 'media', id)), 'a half-written ladder is never published');

  // A restarted worker with a short claim timeout takes the job over (XAUTOCLAIM).
  const restarted = await stack.startWorker({ claimTimeoutMs: 1_000 });
  stack.worker = restarted;
  const { video, samples } = await watch(id, { done: settled, timeoutMs: 90_000 });
  const all = [...caught.samples];
  for (const s of samples) {
    const last = all.at(-1);
    if (last.status !== s.status || last.progress !== s.progress) all.push(s);
  }
  const seen = assertMonotone(all);
  t.diagnostic(`statuses: ${seen}; restart→ready ${Date.now() - killedAt} ms`);
  assert.equal(video.status, 'ready', withLogs(`the video ends ready, not ${video.status}: ${video.error ?? ''}`));

  const report = await assertLadder(video);
  t.diagnostic(report.join('; '));
  assert.ok(!fs.existsSync(path.join(stack.mediaDir, 'media', workDir)), 'the dead worker\'s work dir is gone');
  assert.deepEqual(tmpEntries(), [], 'no .tmp-* entry is visible under media/ after ready');
  // The video is listed once, with one ladder.
  const listed = await api(stack.host.base, 'GET', `/api/v1/videos?owner=${creator.address}&limit=100`);
  assert.equal(listed.status, 200, show(listed));
  assert.equal(listed.json.items.filter((v) => v.id === id).length, 1, 'the video is listed once');
  await assertQueueDrained(id);
  assert.ok(restarted.running, 'the restarted worker is still serving');
});

test('only the owner changes the gate or deletes: a second wallet gets 404 while the video is not ready, 403 not_owner once it is', async () => {
  const rule = gateRule();
  const created = await createVideo(creator.token, { title: 'Gated', gate: [rule] });
  const other = stranger;

  const attempt = [gateRule()];
  const tries = async (code, status) => {
    const refused = await api(stack.host.base, 'PUT', `/api/v1/videos/${created.id}/gate`, {
      json: { gate: attempt },
      token: other.token,
    });
    assertError(refused, status, code);
    const cleared = await api(stack.host.base, 'PUT', `/api/v1/videos/${created.id}/gate`, {
      json: { gate: [] },
      token: other.token,
    });
    assertError(cleared, status, code);
    const deleted = await api(stack.host.base, 'DELETE', `/api/v1/videos/${created.id}`, { token: other.token });
    assertError(deleted, status, code);
    const anonymous = await api(stack.host.base, 'PUT', `/api/v1/videos/${created.id}/gate`, { json: { gate: [] } });
    assert.equal(anonymous.status, 401, `no session: ${show(anonymous)}`);
  };
  // Not ready: to the second wallet it does not exist, for writes as for reads.
  await tries('not_found', 404);
  // Ready: it may see the video, not change it.
  await readyThroughEvents(created.id);
  assert.equal((await getVideo(created.id, other.token)).status, 'ready', 'a ready video is public');
  await tries('not_owner', 403);

  let video = await getVideo(created.id);
  assert.equal(video.owner, creator.address);
  assert.deepEqual(
    video.gate.map((r) => [r.chain_id, r.contract, r.standard]),
    [[rule.chain_id, rule.contract, rule.standard]],
    'the gate is unchanged',
  );

  // Control: the owner can.
  const next = gateRule();
  const changed = await api(stack.host.base, 'PUT', `/api/v1/videos/${created.id}/gate`, {
    json: { gate: [next] },
    token: creator.token,
  });
  assert.equal(changed.status, 200, `the owner changes the gate: ${show(changed)}`);
  video = await getVideo(created.id);
  assert.deepEqual(video.gate.map((r) => r.contract), [next.contract]);
});

test('events: forged and stale signatures are refused (401) and change nothing; a correctly signed one is applied', async () => {
  const created = await createVideo(creator.token, { title: 'Events' });
  const id = created.id;
  const eventKey = deriveKey(stack.eventsSecret, 'events');
  const body = JSON.stringify({
    id: `test-${randomBytes(8).toString('hex')}`,
    type: 'transcode.failed',
    video_id: id,
    data: { error: 'stopped by the control event', final: true },
  });
  const other = JSON.stringify({
    id: `test-${randomBytes(8).toString('hex')}`,
    type: 'transcode.failed',
    video_id: id,
    data: { error: 'tampered', final: true },
  });
  const t0 = now();
  const validTag = signatureHeader(eventKey, t0, body).split('v1=')[1];

  const forged = {
    'no signature header': [body, null],
    'a random key': [body, signatureHeader(randomBytes(32), t0, body)],
    'the raw events secret instead of the derived key': [
      body,
      signatureHeader(Buffer.from(stack.eventsSecret, 'utf8'), t0, body),
    ],
    'the upload key (another purpose)': [body, signatureHeader(deriveKey(stack.eventsSecret, 'upload'), t0, body)],
    'a signature of another body': [other, signatureHeader(eventKey, t0, body)],
    'the right tag under another timestamp': [body, `t=${t0 - 1},v1=${validTag}`],
    'a truncated tag': [body, `t=${t0},v1=${validTag.slice(0, 32)}`],
    'no timestamp': [body, `v1=${validTag}`],
    'garbage': [body, 'definitely not a signature'],
  };
  for (const [what, [sent, header]] of Object.entries(forged)) {
    const res = await postEvent(stack.eventsUrl, sent, header);
    assertError(res, 401, 'bad_event_signature');
    assert.equal((await getVideo(id)).status, 'awaiting_upload', `${what}: nothing applied`);
  }

  const stale = {
    'signed 301 s ago': t0 - 301,
    'signed an hour ago': t0 - 3600,
    'dated 301 s in the future': t0 + 301,
  };
  for (const [what, t] of Object.entries(stale)) {
    const res = await postEvent(stack.eventsUrl, body, signatureHeader(eventKey, t, body));
    assertError(res, 401, 'stale_event');
    assert.equal((await getVideo(id)).status, 'awaiting_upload', `${what}: nothing applied`);
  }

  // Control: the same event, correctly signed now, is applied; its replay is a no-op.
  const ok = await postEvent(stack.eventsUrl, body, signatureHeader(eventKey, now(), body));
  assert.equal(ok.status, 200, `a correctly signed event is accepted: ${show(ok)}`);
  let video = await getVideo(id);
  assert.equal(video.status, 'failed');
  assert.equal(video.error, 'stopped by the control event');
  // The event names no `code` (workers before codes): the video carries the generic one.
  assert.equal(video.error_code, 'transcode_failed');
  const replay = await postEvent(stack.eventsUrl, body, signatureHeader(eventKey, now(), body));
  assert.equal(replay.status, 200, `a replay is acknowledged (idempotent): ${show(replay)}`);
  video = await getVideo(id);
  assert.equal(video.status, 'failed');
  assert.equal(video.error, 'stopped by the control event');
});
