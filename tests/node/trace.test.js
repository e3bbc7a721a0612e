// One request followed through the logs (issue 13, docs/operations.md "Following one request"):
// an upload sent with a known W3C traceparent, on the real stack (host with spin.toml, Redis,
// the tus origin and the ffmpeg worker, both with --log-format json). The origin's
// upload.completed event continues the upload's trace; the app logs each event it receives and
// the transcode job it enqueues under that trace id; the worker logs every line of the job's
// processing with it, and its events carry it back to the app. A delete's job and its
// media.deleted event continue the DELETE request's trace.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { after, before, test } from 'node:test';

import { api, signIn, viemSigner } from './lib/auth.js';
import { sleep, tempDir } from './lib/fixtures.js';
import { makeTestVideo, startPipeline, tus } from './lib/pipeline.js';

let stack;
let clip;
let creator;

before(async () => {
  const scratch = tempDir('trace');
  [stack, clip] = await Promise.all([
    startPipeline({
      originArgs: ['--log-format', 'json'],
      workerOptions: { extraArgs: ['--log-format', 'json'] },
    }),
    makeTestVideo(scratch, { seconds: 2, size: '640x360', rate: 25 }),
  ]);
  creator = await signIn(stack.host, viemSigner(undefined, stack.anvil.url));
});

after(async () => {
  await stack?.stop();
});

const hex = (bytes) => randomBytes(bytes).toString('hex');

/** The JSON objects among a log's lines (the host's own lines are text, the app's are JSON). */
function jsonLines(text) {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line)];
      } catch {
        return [];
      }
    });
}

function upload(endpoint, file, headers) {
  return new Promise((resolve, reject) => {
    const body = fs.readFileSync(file);
    new tus.Upload(body, {
      endpoint,
      chunkSize: 256 * 1024,
      headers,
      retryDelays: null,
      metadata: { filename: 'clip.mp4', filetype: 'video/mp4' },
      onSuccess: resolve,
      onError: reject,
    }).start();
  });
}

async function untilReady(id, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await api(stack.host.base, 'GET', `/api/v1/videos/${id}`, { token: creator.token });
    if (res.json?.status === 'ready') return;
    if (res.json?.status === 'failed' || Date.now() > deadline) {
      assert.fail(`video ${id} is ${res.status} ${res.text}\n${stack.logs()}`);
    }
    await sleep(300);
  }
}

/** Polls `read()` until `done(value)`; the last value either way. */
async function eventually(read, done, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  let value = read();
  while (!done(value) && Date.now() < deadline) {
    await sleep(200);
    value = read();
  }
  return value;
}

test('an upload sent with a traceparent is one trace id in the app, origin and worker logs', async () => {
  const createTrace = hex(16);
  const created = await api(stack.host.base, 'POST', '/api/v1/videos', {
    json: { title: 'Traced', gate: [] },
    token: creator.token,
    headers: { traceparent: `00-${createTrace}-${hex(8)}-01` },
  });
  assert.equal(created.status, 201, created.text);
  const id = created.json.id;

  const uploadTrace = hex(16);
  const traceparent = `00-${uploadTrace}-${hex(8)}-01`;
  await upload(created.json.upload.url, clip, { traceparent });
  await untilReady(id);

  // The app: the creation under its own request's trace.
  const app = () => jsonLines(stack.host.log()).filter((l) => l.component === 'metadata' && l.video_id === id);
  const createdLine = app().find((l) => l.message === 'video created');
  assert.equal(createdLine?.trace_id, createTrace, `the creation is logged under its trace\n${stack.host.log()}`);

  // The app: every event it received about the video, and the transcode job, under the
  // upload's trace. The worker's last event may still be in flight when the status flips.
  const expected = ['upload.completed', 'transcode.started', 'transcode.completed'];
  const received = await eventually(
    () => app().filter((l) => l.message === 'event received'),
    (lines) => expected.every((type) => lines.some((l) => l.type === type)),
  );
  for (const type of expected) {
    const line = received.find((l) => l.type === type);
    assert.ok(line, `the app logged the ${type} event\n${stack.host.log()}`);
    assert.equal(line.trace_id, uploadTrace, `${type} is applied under the upload's trace: ${JSON.stringify(line)}`);
    assert.equal(line.outcome, 'applied');
  }
  for (const line of received) assert.equal(line.trace_id, uploadTrace, JSON.stringify(line));
  const enqueued = app().filter((l) => l.message === 'job enqueued');
  assert.deepEqual(
    enqueued.map((l) => [l.action, l.trace_id]),
    [['transcode', uploadTrace]],
    'the transcode job is enqueued under the upload trace',
  );

  // The origin: the upload completed under that trace.
  const origin = jsonLines(stack.origin.log()).filter((l) => l.video === id);
  const completed = origin.find((l) => l.message === 'upload complete');
  assert.equal(completed?.trace_id, uploadTrace, `the origin logs the upload under its trace\n${stack.origin.log()}`);

  // The worker: every line of the job's processing carries the trace id as a field, from the
  // first ("job") to the acknowledgement.
  const worker = jsonLines(stack.worker.log());
  const traced = worker.filter((l) => l.trace_id === uploadTrace);
  const messages = traced.map((l) => l.message);
  for (const message of ['job', 'probed', 'job acknowledged']) {
    assert.ok(messages.includes(message), `the worker logs "${message}" under the trace: ${messages}\n${stack.worker.log()}`);
  }
  const job = traced.find((l) => l.message === 'job');
  assert.equal(job.video, id);
  const entry = job.entry;
  const aboutTheJob = worker.filter((l) => l.video === id || (entry && l.entry === entry));
  assert.ok(aboutTheJob.length >= 3, JSON.stringify(aboutTheJob));
  for (const line of aboutTheJob) {
    assert.equal(line.trace_id, uploadTrace, `every worker line about the job carries the trace: ${JSON.stringify(line)}`);
  }
  // Nothing else is under that trace: no other job shares the id.
  assert.ok(worker.filter((l) => l.trace_id && l.trace_id !== uploadTrace).every((l) => l.video !== id));
});

test("a delete's job and its media.deleted event continue the DELETE request's trace", async () => {
  const created = await api(stack.host.base, 'POST', '/api/v1/videos', {
    json: { title: 'Deleted', gate: [] },
    token: creator.token,
  });
  assert.equal(created.status, 201, created.text);
  const id = created.json.id;
  const deleteTrace = hex(16);
  const deleted = await api(stack.host.base, 'DELETE', `/api/v1/videos/${id}`, {
    token: creator.token,
    headers: { traceparent: `00-${deleteTrace}-${hex(8)}-01` },
  });
  assert.equal(deleted.status, 204, deleted.text);

  const app = () => jsonLines(stack.host.log()).filter((l) => l.component === 'metadata' && l.video_id === id);
  const enqueued = app().find((l) => l.message === 'job enqueued');
  assert.deepEqual([enqueued?.action, enqueued?.trace_id], ['delete', deleteTrace], JSON.stringify(app()));
  // The worker removes the media under that trace; the app has forgotten the video, and says
  // so (404, not acknowledged) under the same trace.
  const mediaDeleted = await eventually(
    () => jsonLines(stack.worker.log()).find((l) => l.message === 'media deleted' && l.video === id),
    Boolean,
  );
  assert.equal(mediaDeleted?.trace_id, deleteTrace, `${JSON.stringify(mediaDeleted)}\n${stack.worker.log()}`);
  const answered = await eventually(
    () => app().find((l) => l.type === 'media.deleted'),
    Boolean,
  );
  assert.deepEqual(
    [answered?.message, answered?.outcome, answered?.trace_id],
    ['event not acknowledged', 'not_found', deleteTrace],
    JSON.stringify(answered),
  );
});

test('a request without a valid traceparent gets a fresh trace id', async () => {
  const created = await api(stack.host.base, 'POST', '/api/v1/videos', {
    json: { title: 'Untraced', gate: [] },
    token: creator.token,
    headers: { traceparent: `00-${'0'.repeat(32)}-${hex(8)}-01` },
  });
  assert.equal(created.status, 201, created.text);
  const line = jsonLines(stack.host.log()).find(
    (l) => l.component === 'metadata' && l.message === 'video created' && l.video_id === created.json.id,
  );
  assert.match(line?.trace_id ?? '', /^[0-9a-f]{32}$/, `a trace id of 32 hex digits\n${stack.host.log()}`);
  assert.notEqual(line.trace_id, '0'.repeat(32), 'the invalid all-zero trace id is not taken');
});
