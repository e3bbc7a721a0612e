// Metrics during a real creator flow (docs/operations.md, "Metrics"): the host's admin
// listener, the origin's private metrics listener (and its token-guarded /metrics on the public
// one) and the worker's metrics listener are scraped before and after a creator uploads a clip
// with tus-js-client, the real worker transcodes it and its segments are fetched with signed
// URLs; the counters must move exactly as that flow implies. The alert rules and the Grafana
// dashboard of infra/observability/ must name only metrics these scrapes really expose, and the
// rules pass `promtool check rules` where promtool is installed.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { api, signIn, viemSigner } from './lib/auth.js';
import { REPO_ROOT, freePort, sleep, tempDir } from './lib/fixtures.js';
import { makeTestVideo, startOrigin, startPipeline, tusUpload } from './lib/pipeline.js';
import { forgeToken, mapUri, playlistUris, withToken } from './lib/playback.js';

const run = promisify(execFile);

let stack;
let creator;
let ports;
const metricsToken = randomBytes(24).toString('hex');

before(async () => {
  ports = { host: await freePort(), origin: await freePort(), worker: await freePort() };
  stack = await startPipeline({
    hostArgs: ['--admin-listen', `127.0.0.1:${ports.host}`, '--log-format', 'json'],
    originArgs: ['--metrics-listen', `127.0.0.1:${ports.origin}`],
    originEnv: { STREAMGATE_METRICS_TOKEN: metricsToken },
    workerOptions: { extraArgs: ['--metrics-listen', `127.0.0.1:${ports.worker}`, '--log-format', 'json'] },
    hostVars: (where) => ({ stream_base_url: `http://${where.domain}` }),
  });
  creator = await signIn(stack.host, viemSigner(undefined, stack.anvil.url));
});

after(async () => {
  await stack?.stop();
});

/** Every sample of a Prometheus text exposition: `{ name, labels, value }`. */
function parse(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    const labels = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sum of `name`'s samples whose labels include `labels` (0 when there are none). */
function value(samples, name, labels = {}) {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

/** The metric families a scrape declares (`# TYPE name kind`). */
function families(text) {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
}

async function scrape(url, headers = {}) {
  const res = await fetch(url, { headers });
  const text = await res.text();
  assert.equal(res.status, 200, `${url}: ${res.status} ${text.slice(0, 200)}`);
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return text;
}

const scrapeAll = async () => {
  const [host, origin, worker] = await Promise.all([
    scrape(`http://127.0.0.1:${ports.host}/metrics`),
    scrape(`http://127.0.0.1:${ports.origin}/metrics`),
    scrape(`http://127.0.0.1:${ports.worker}/metrics`),
  ]);
  return { text: { host, origin, worker }, host: parse(host), origin: parse(origin), worker: parse(worker) };
};

let lastScrape;

test('a creator flow moves the counters as it implies: one upload, one transcode, N segments served, one forged token refused', async () => {
  const clip = await makeTestVideo(tempDir('metrics-clip'), { seconds: 4, size: '640x360', rate: 25 });
  const size = fs.statSync(clip).size;
  const before = await scrapeAll();

  const created = await api(stack.host.base, 'POST', '/api/v1/videos', {
    token: creator.token,
    json: { title: 'Metrics clip', gate: [] },
  });
  assert.equal(created.status, 201, created.text);
  const id = created.json.id;
  const done = await tusUpload(clip, { endpoint: created.json.upload.url, chunkSize: 256 * 1024, resume: 'none' });
  assert.equal(done.ok, true, `upload: ${done.error ?? ''}`);
  const deadline = Date.now() + 90_000;
  let video;
  for (;;) {
    const res = await api(stack.host.base, 'GET', `/api/v1/videos/${id}`, { token: creator.token });
    assert.equal(res.status, 200, res.text);
    video = res.json;
    if (video.status === 'ready') break;
    if (video.status === 'failed' || Date.now() > deadline) {
      throw new Error(`video ${id} is ${video.status} (${video.error ?? ''})\n${stack.logs()}`);
    }
    await sleep(100);
  }

  // Every init and media segment of every rendition, through the signed URLs.
  const urls = await api(stack.host.base, 'POST', `/api/v1/videos/${id}/playback`, { token: creator.token });
  assert.equal(urls.status, 200, urls.text);
  const masterText = await (await fetch(urls.json.hls)).text();
  let served = 0;
  let servedBytes = 0;
  let someSegment;
  for (const mediaUrl of playlistUris(masterText, urls.json.hls)) {
    const mediaText = await (await fetch(mediaUrl)).text();
    for (const url of [mapUri(mediaText, mediaUrl), ...playlistUris(mediaText, mediaUrl)]) {
      if (!url.startsWith(`${stack.origin.base}/media/`)) continue; // the audio playlist is the host's
      const res = await fetch(url);
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(res.status, 200, `${url}: ${res.status}`);
      served += 1;
      servedBytes += body.length;
      someSegment = url;
    }
  }
  assert.ok(served >= 4, `init + segments of ≥ 2 renditions: ${served}`);

  // One forged token: well formed, signed with a key that is not the app's.
  const now = Math.floor(Date.now() / 1000);
  const forged = withToken(someSegment, encodeURIComponent(forgeToken('not the playback secret', { id, st: now - 5, exp: now + 60 })));
  const refused = await fetch(forged);
  const refusedBody = await refused.text();
  assert.equal(refused.status, 403, refusedBody);
  assert.equal(JSON.parse(refusedBody).code, 'invalid_token');

  const after = await scrapeAll();
  lastScrape = after;
  const delta = (part, name, labels) => value(after[part], name, labels) - value(before[part], name, labels);

  // Origin: the upload's bytes, exactly; one completed upload whose event the app took.
  assert.equal(delta('origin', 'streamgate_upload_bytes_total'), size, 'upload bytes = the file size');
  assert.equal(delta('origin', 'streamgate_uploads_completed_total'), 1);
  assert.equal(
    delta('origin', 'streamgate_event_deliveries_total', { kind: 'upload.completed', outcome: 'accepted' }),
    1,
    'the origin delivered upload.completed once',
  );
  assert.equal(value(after.origin, 'streamgate_outbox_events'), 0, 'nothing left in the outbox');
  // Media: N files answered 200 with their bytes, plus the forged request's 403 and its body.
  assert.equal(delta('origin', 'streamgate_origin_requests_total', { route: 'media', status: '200' }), served);
  assert.equal(delta('origin', 'streamgate_origin_requests_total', { route: 'media', status: '403' }), 1);
  assert.equal(
    delta('origin', 'streamgate_origin_response_bytes_total', { route: 'media' }),
    servedBytes + Buffer.byteLength(refusedBody),
    'bytes served = the bodies the client received',
  );
  assert.equal(
    delta('origin', 'streamgate_origin_request_duration_seconds_count', { route: 'media' }),
    served + 1,
    'one latency observation per media request',
  );
  assert.equal(delta('origin', 'streamgate_token_refusals_total', { surface: 'media', reason: 'invalid_token' }), 1);
  assert.equal(delta('origin', 'streamgate_token_refusals_total'), 1, 'the forged request is the only refusal');
  assert.ok(delta('origin', 'streamgate_origin_requests_total', { route: 'uploads' }) >= 2, 'POST + PATCH(es) counted');
  assert.ok(value(after.origin, 'streamgate_media_dir_free_bytes') > 0);

  // Worker: one transcode job succeeded, with its duration and one encode per rung.
  const ok = { action: 'transcode', outcome: 'succeeded' };
  assert.equal(delta('worker', 'streamgate_jobs_total', ok), 1, 'one job succeeded');
  assert.equal(delta('worker', 'streamgate_jobs_total'), 1, 'and no other outcome');
  assert.equal(delta('worker', 'streamgate_job_duration_seconds_count', ok), 1);
  assert.ok(delta('worker', 'streamgate_job_duration_seconds_sum', ok) > 0);
  for (const r of video.renditions) {
    assert.equal(delta('worker', 'streamgate_encode_duration_seconds_count', { rung: r.name }), 1, `one ${r.name} encode`);
  }
  assert.equal(delta('worker', 'streamgate_job_retries_total'), 0);
  assert.equal(delta('worker', 'streamgate_dead_letters_total'), 0);
  assert.equal(
    delta('worker', 'streamgate_event_deliveries_total', { kind: 'transcode.completed', outcome: 'accepted' }),
    1,
  );
  // Read from Redis at scrape time: nothing waiting, nothing pending, nothing dead.
  assert.equal(value(after.worker, 'streamgate_queue_lag'), 0);
  assert.equal(value(after.worker, 'streamgate_queue_pending'), 0);
  assert.equal(value(after.worker, 'streamgate_queue_oldest_pending_age_seconds'), 0);
  assert.equal(value(after.worker, 'streamgate_dead_letter_queue_length'), 0);
  assert.equal(value(after.worker, 'streamgate_queue_scrape_errors_total'), 0, 'the worker user may read the queue');

  // Host: the metadata and playback components answered 2xx, with latencies; the pool is idle.
  assert.ok(delta('host', 'streamgate_host_requests_total', { component: 'metadata', status_class: '2xx' }) >= 2);
  assert.equal(delta('host', 'streamgate_host_requests_total', { component: 'playback', status_class: '2xx' }), 1);
  assert.equal(
    delta('host', 'streamgate_host_request_duration_seconds_count', { component: 'metadata', status_class: '2xx' }),
    delta('host', 'streamgate_host_requests_total', { component: 'metadata', status_class: '2xx' }),
  );
  assert.equal(delta('host', 'streamgate_host_requests_total', { status_class: '5xx' }), 0);
  assert.equal(value(after.host, 'streamgate_host_instances_max'), 128);
  assert.equal(value(after.host, 'streamgate_host_instances_in_use'), 0);
  assert.equal(value(after.host, 'streamgate_host_requests_queued'), 0);
  assert.equal(delta('host', 'streamgate_host_overloaded_refusals_total'), 0);
  assert.equal(delta('host', 'streamgate_host_guest_traps_total'), 0);
  assert.ok(delta('host', 'streamgate_host_sqlite_statements_total', { outcome: 'ok' }) > 0, 'the app used SQLite');

  // No label carries a video id or a wallet.
  for (const [part, text] of Object.entries(after.text)) {
    assert.ok(!text.includes(id), `${part}: no video id in the metrics`);
    assert.ok(!text.toLowerCase().includes(creator.address.toLowerCase().slice(2)), `${part}: no wallet in the metrics`);
  }
});

test('metrics stay off the public path: the origin answers /metrics only to its bearer token, the host app listener has none', async () => {
  const url = `${stack.origin.base}/metrics`;
  for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: metricsToken }]) {
    const res = await fetch(url, { headers });
    const body = await res.json();
    assert.equal(res.status, 401, JSON.stringify(headers));
    assert.equal(body.code, 'metrics_token_required');
    assert.match(res.headers.get('www-authenticate'), /^Bearer/);
  }
  const text = await scrape(url, { authorization: `Bearer ${metricsToken}` });
  assert.ok(families(text).has('streamgate_upload_bytes'), 'the same metrics as the private listener');

  // An origin with no token configured has no /metrics on its public listener at all.
  const bare = await startOrigin({
    port: await freePort(),
    mediaDir: tempDir('metrics-bare-origin'),
    eventsUrl: stack.eventsUrl,
    secret: stack.eventsSecret,
    logDir: stack.logDir,
  });
  try {
    const res = await fetch(`${bare.base}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
    assert.equal(res.status, 404);
    assert.equal((await res.json()).code, 'not_found');
  } finally {
    await bare.stop();
  }

  // The app's own listener: /metrics is the app's (its web component), never the host's metrics.
  const app = await fetch(`${stack.host.base}/metrics`);
  assert.ok(!(await app.text()).includes('streamgate_host_requests_total'), 'no host metrics on the public listener');

  // The private listeners serve /metrics and nothing else.
  for (const port of [ports.host, ports.origin, ports.worker]) {
    const res = await fetch(`http://127.0.0.1:${port}/media/x`);
    assert.equal(res.status, 404);
    assert.equal((await res.json()).code, 'not_found');
    const post = await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' });
    assert.equal(post.status, 405);
  }
});

test('--log-format json: the host and the worker write one JSON object per line, with the event fields at the top', () => {
  for (const [who, log, field] of [
    ['host', stack.host.log(), 'status'],
    ['worker', stack.worker.log(), 'consumer'],
  ]) {
    const lines = log.split('\n').filter((l) => l.trim());
    assert.ok(lines.length > 0, `${who} logged`);
    const events = lines.map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        assert.fail(`${who}: not a JSON line: ${l}`);
      }
    });
    for (const e of events) {
      assert.equal(typeof e.timestamp, 'string');
      assert.match(e.level, /^(TRACE|DEBUG|INFO|WARN|ERROR)$/);
    }
    assert.ok(events.some((e) => field in e), `${who}: a line with a \`${field}\` field at the top level`);
  }
});

test('infra/observability: the alert rules and the dashboard name only metrics a live scrape exposes; promtool accepts the rules', async (t) => {
  assert.ok(lastScrape, 'the creator-flow test ran first');
  const known = new Map();
  for (const text of Object.values(lastScrape.text)) for (const [name, kind] of families(text)) known.set(name, kind);
  const exists = (name) => {
    if (known.has(name)) return true;
    // Counters are declared without `_total`; histograms expose _bucket/_sum/_count.
    const family = name.replace(/_(total|bucket|sum|count)$/, '');
    return known.has(family);
  };
  const dir = path.join(REPO_ROOT, 'infra/observability');
  const { stdout } = await run('python3', [
    '-c',
    'import sys, json, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))',
    path.join(dir, 'alerts.yml'),
  ]);
  const rules = JSON.parse(stdout).groups.flatMap((g) => g.rules);
  assert.ok(rules.length >= 6);
  const dashboard = JSON.parse(fs.readFileSync(path.join(dir, 'grafana-dashboard.json'), 'utf8'));
  const exprs = [
    ...rules.map((r) => [`alert ${r.alert}`, r.expr]),
    ...dashboard.panels.flatMap((p) => p.targets.map((x) => [`panel ${p.title}`, x.expr])),
  ];
  const missing = [];
  for (const [where, expr] of exprs) {
    const names = [...expr.matchAll(/\bstreamgate_[a-z0-9_]+/g)].map((m) => m[0]);
    assert.ok(names.length > 0, `${where} names a StreamGate metric`);
    for (const name of names) if (!exists(name)) missing.push(`${where}: ${name}`);
  }
  assert.deepEqual(missing, [], 'every metric named is in a scrape');
  for (const topic of ['queue_lag', 'dead_letters', '5xx', 'histogram_quantile(0.99', 'media_dir_free_bytes', 'overloaded']) {
    assert.ok(rules.some((r) => r.expr.includes(topic)), `an alert on ${topic}`);
  }

  const promtool = await run('sh', ['-c', 'command -v promtool']).catch(() => null);
  if (!promtool) {
    t.diagnostic('promtool is not installed (Debian package prometheus): rules only parsed');
    return;
  }
  const checked = await run('promtool', ['check', 'rules', path.join(dir, 'alerts.yml')]);
  assert.match(checked.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
  await run('promtool', ['check', 'config', path.join(dir, 'prometheus.yml')]);
});
