// `scripts/up --observe` (docs/operations.md, "Seeing them locally"): the private Prometheus
// that scripts/lib.sh's sg_prometheus_run starts, the same function scripts/up calls, here against
// a real stack (host, Redis, origin, worker, anvil) while a creator uploads a clip, the worker
// transcodes it and its segments are fetched. Through Prometheus's HTTP API: every target is up,
// the alert rules of infra/observability/ are loaded and evaluate without error, and every PromQL
// expression of the Grafana dashboard evaluates without error, the key ones with data from the flow.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { api, signIn, viemSigner } from './lib/auth.js';
import { REPO_ROOT, exited, freePort, sleep, stopChild, tempDir, track } from './lib/fixtures.js';
import { startPipeline } from './lib/pipeline.js';
import { forgeToken, mapUri, playlistUris, uploadReadyVideo, withToken } from './lib/playback.js';

const run = promisify(execFile);
const OBSERVABILITY = path.join(REPO_ROOT, 'infra/observability');
// Scrapes and rule evaluations every second, so that rates over the dashboard's windows have
// points within the test's few seconds (scripts/up uses the default, 5 s).
const INTERVAL_S = 1;

let stack;
let creator;
let prometheus;
let prometheusLog = '';
let base;
const targets = {};

before(async () => {
  const ports = { host: await freePort(), origin: await freePort(), worker: await freePort(), prometheus: await freePort() };
  stack = await startPipeline({
    hostArgs: ['--admin-listen', `127.0.0.1:${ports.host}`],
    originArgs: ['--metrics-listen', `127.0.0.1:${ports.origin}`],
    workerOptions: { extraArgs: ['--metrics-listen', `127.0.0.1:${ports.worker}`] },
    hostVars: (where) => ({ stream_base_url: `http://${where.domain}` }),
  });
  for (const [job, port] of [['host', ports.host], ['origin', ports.origin], ['worker', ports.worker]]) {
    targets[`streamgate-${job}`] = `127.0.0.1:${port}`;
  }
  creator = await signIn(stack.host, viemSigner(undefined, stack.anvil.url));

  base = `http://127.0.0.1:${ports.prometheus}`;
  prometheus = track(
    spawn(
      'bash',
      [
        '-c',
        'source "$0" && sg_prometheus_run "$@"',
        path.join(REPO_ROOT, 'scripts/lib.sh'),
        tempDir('prometheus'),
        `127.0.0.1:${ports.prometheus}`,
        targets['streamgate-host'],
        targets['streamgate-origin'],
        targets['streamgate-worker'],
      ],
      { env: { ...process.env, SG_PROMETHEUS_INTERVAL: `${INTERVAL_S}s` }, stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
  for (const stream of [prometheus.stdout, prometheus.stderr]) stream.on('data', (d) => (prometheusLog += d));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited(prometheus)) throw new Error(`prometheus exited:\n${prometheusLog}`);
    const ready = await fetch(`${base}/-/ready`).catch(() => null);
    if (ready?.status === 200) break;
    if (Date.now() > deadline) throw new Error(`prometheus not ready in 30 s:\n${prometheusLog}`);
    await sleep(200);
  }
});

after(async () => {
  await stopChild(prometheus);
  await stack?.stop();
});

/** GET a Prometheus API path; its `data` (the test fails on an error status). */
async function promApi(pathAndQuery) {
  const res = await fetch(`${base}${pathAndQuery}`);
  const body = await res.json();
  assert.equal(res.status, 200, `${pathAndQuery}: ${JSON.stringify(body)}`);
  assert.equal(body.status, 'success', JSON.stringify(body));
  return body;
}

/** An instant query: `{ result, warnings }`, or `{ error }` when Prometheus refuses it. */
async function query(expr) {
  const res = await fetch(`${base}/api/v1/query?${new URLSearchParams({ query: expr })}`);
  const body = await res.json();
  if (body.status !== 'success') return { error: `${res.status} ${body.errorType}: ${body.error}` };
  return { result: body.data.result, warnings: body.warnings ?? [] };
}

/** The samples of a vector result whose value is a number (histogram_quantile over no observations is NaN). */
const numeric = (result) => result.filter((s) => Number.isFinite(Number(s.value[1])));

/** A creator's whole flow: create, tus upload, transcode, every segment fetched, one forged token. */
async function creatorFlow() {
  const { id } = await uploadReadyVideo({ ...stack, creator }, { gate: [] });
  const urls = await api(stack.host.base, 'POST', `/api/v1/videos/${id}/playback`, { token: creator.token });
  assert.equal(urls.status, 200, urls.text);
  const master = await (await fetch(urls.json.hls)).text();
  let someSegment;
  for (const mediaUrl of playlistUris(master, urls.json.hls)) {
    const mediaText = await (await fetch(mediaUrl)).text();
    for (const url of [mapUri(mediaText, mediaUrl), ...playlistUris(mediaText, mediaUrl)]) {
      if (!url.startsWith(`${stack.origin.base}/media/`)) continue;
      const res = await fetch(url);
      await res.arrayBuffer();
      assert.equal(res.status, 200, url);
      someSegment = url;
    }
  }
  assert.ok(someSegment, 'segments served by the origin');
  const now = Math.floor(Date.now() / 1000);
  const forged = withToken(someSegment, encodeURIComponent(forgeToken('not the playback secret', { id, st: now - 5, exp: now + 60 })));
  assert.equal((await fetch(forged)).status, 403);
}

test('the private Prometheus scrapes the host, the origin and the worker: every target is up', async () => {
  // Targets appear once the first scrape loop starts, `up` after their first scrape.
  const deadline = Date.now() + 20_000;
  let seen;
  for (;;) {
    const { data } = await promApi('/api/v1/targets?state=active');
    seen = Object.fromEntries(data.activeTargets.map((t) => [t.labels.job, t]));
    const up = Object.values(seen).filter((t) => t.health === 'up');
    if (up.length === Object.keys(targets).length) break;
    if (Date.now() > deadline) {
      const all = Object.values(seen).map((t) => `${t.labels.job} ${t.health} ${t.lastError}`);
      assert.fail(`not all up in 20 s: ${all.join('; ')}\n${prometheusLog}`);
    }
    await sleep(500);
  }
  assert.deepEqual(Object.keys(seen).sort(), Object.keys(targets).sort(), 'one target per process');
  for (const [job, address] of Object.entries(targets)) assert.equal(seen[job].labels.instance, address, job);
  // And `up` as a query answers 1 for each, as the UI's graph would.
  const up = await query('up');
  assert.deepEqual(
    Object.fromEntries(up.result.map((s) => [s.metric.job, s.value[1]])),
    Object.fromEntries(Object.keys(targets).map((job) => [job, '1'])),
  );
});

test('the alert rules of infra/observability/alerts.yml are loaded and every one evaluates without error', async () => {
  const { stdout } = await run('python3', [
    '-c',
    'import sys, json, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))',
    path.join(OBSERVABILITY, 'alerts.yml'),
  ]);
  const file = JSON.parse(stdout).groups;
  // Each rule has been evaluated at least once after a few evaluation intervals.
  const deadline = Date.now() + 20_000;
  let groups;
  for (;;) {
    ({
      data: { groups },
    } = await promApi('/api/v1/rules'));
    const unevaluated = groups.flatMap((g) => g.rules).filter((r) => r.health === 'unknown');
    if (groups.length > 0 && unevaluated.length === 0) break;
    if (Date.now() > deadline) assert.fail(`rules not evaluated in 20 s: ${JSON.stringify(groups)}`);
    await sleep(500);
  }
  // Prometheus lists the groups by name, each group's rules in the file's order.
  const byName = (a, b) => a[0].localeCompare(b[0]);
  assert.deepEqual(
    groups.map((g) => [g.name, g.rules.map((r) => r.name)]).sort(byName),
    file.map((g) => [g.name, g.rules.map((r) => r.alert)]).sort(byName),
    'the groups and alerts of alerts.yml',
  );
  // The media disk alert speaks of this machine's disk: pending (its `for` is 10 minutes) when
  // it really has less than 10 GiB free.
  const free = Math.min(...(await query('streamgate_media_dir_free_bytes')).result.map((s) => Number(s.value[1])));
  const diskLow = free < 10 * 1024 ** 3;
  for (const g of groups) {
    assert.ok(g.file.endsWith('infra/observability/alerts.yml'), `${g.name} read from the repository's file: ${g.file}`);
    for (const r of g.rules) {
      assert.equal(r.type, 'alerting');
      assert.equal(r.health, 'ok', `${r.name}: ${r.lastError ?? ''}`);
      // A quiet stack: nothing fires (a rule that fired here would page an operator for nothing).
      const expected = r.name === 'StreamGateMediaDiskLow' && diskLow ? 'pending' : 'inactive';
      assert.equal(r.state, expected, `${r.name} is ${r.state} (media disk free: ${free} bytes)`);
    }
  }
});

test('every PromQL expression of the Grafana dashboard evaluates without error, and the key panels show the creator flow', async () => {
  const dashboard = JSON.parse(fs.readFileSync(path.join(OBSERVABILITY, 'grafana-dashboard.json'), 'utf8'));
  const exprs = dashboard.panels.flatMap((p) =>
    p.targets.map((t) => ({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr })),
  );
  assert.ok(exprs.length >= 16, `the dashboard's queries: ${exprs.length}`);

  // Before any flow: every query is valid PromQL against this Prometheus.
  for (const { where, expr } of exprs) {
    const answer = await query(expr);
    assert.equal(answer.error, undefined, `${where}: ${expr}`);
    assert.deepEqual(answer.warnings, [], `${where}: ${expr}`);
  }

  // Twice: a labelled counter is born at its first increment, and Prometheus 2 takes a series'
  // first sample as its start, not as an increase from 0, so only the second flow moves the
  // rates of series the first one created (as on a freshly started service).
  await creatorFlow();
  await sleep(2 * INTERVAL_S * 1000);
  await creatorFlow();
  // Several scrapes after the last request, so the rates' windows hold the flow's increases.
  await sleep(5 * INTERVAL_S * 1000);

  const results = new Map();
  for (const { where, expr } of exprs) {
    const answer = await query(expr);
    assert.equal(answer.error, undefined, `${where}: ${expr}`);
    assert.deepEqual(answer.warnings, [], `${where}: ${expr}`);
    results.set(expr, numeric(answer.result));
  }
  const series = (expr) => {
    assert.ok(results.has(expr), `the dashboard still has ${expr}`);
    return results.get(expr);
  };
  const one = (expr, labels) => {
    const found = series(expr).filter((s) => Object.entries(labels).every(([k, v]) => s.metric[k] === v));
    assert.equal(found.length, 1, `${expr} has a series ${JSON.stringify(labels)}: ${JSON.stringify(series(expr))}`);
    return Number(found[0].value[1]);
  };

  // App traffic: the metadata component answered 2xx, with a latency.
  assert.ok(one('sum by (component, status_class) (rate(streamgate_host_requests_total[5m]))', { component: 'metadata', status_class: '2xx' }) > 0);
  assert.ok(one('histogram_quantile(0.99, sum by (le, component) (rate(streamgate_host_request_duration_seconds_bucket[5m])))', { component: 'metadata' }) > 0);
  assert.equal(one('sum(streamgate_host_instances_max)', {}), 128);
  assert.equal(one('sum(streamgate_host_instances_in_use)', {}), 0);
  assert.ok(one('sum by (outcome) (rate(streamgate_host_sqlite_statements_total[5m]))', { outcome: 'ok' }) > 0);
  // The queue, read from Redis: drained.
  for (const gauge of ['max(streamgate_queue_lag)', 'max(streamgate_queue_pending)', 'max(streamgate_dead_letter_queue_length)']) {
    assert.equal(one(gauge, {}), 0, gauge);
  }
  assert.ok(one('max(streamgate_queue_length)', {}) >= 1, 'the job stays in the stream until trimmed');
  // The worker: one transcode succeeded within the last minute, with its durations.
  assert.ok(one('sum by (action, outcome) (increase(streamgate_jobs_total[1m]))', { action: 'transcode', outcome: 'succeeded' }) > 0);
  assert.ok(series('histogram_quantile(0.5, sum by (le) (rate(streamgate_job_duration_seconds_bucket{action="transcode"}[30m])))').length === 1, 'job p50');
  assert.ok(series('histogram_quantile(0.95, sum by (le, rung) (rate(streamgate_encode_duration_seconds_bucket[30m])))').length >= 1, 'encode p95 per rung');
  assert.ok(one('sum by (kind, outcome) (rate(streamgate_event_deliveries_total[5m]))', { kind: 'transcode.completed', outcome: 'accepted' }) > 0);
  assert.ok(one('sum by (kind, outcome) (rate(streamgate_event_deliveries_total[5m]))', { kind: 'upload.completed', outcome: 'accepted' }) > 0);
  // The origin: media served, bytes uploaded and served, the forged token refused.
  assert.ok(one('sum by (route, status) (rate(streamgate_origin_requests_total[5m]))', { route: 'media', status: '200' }) > 0);
  assert.ok(one('sum by (route) (rate(streamgate_origin_response_bytes_total[5m]))', { route: 'media' }) > 0);
  assert.ok(one('sum(rate(streamgate_upload_bytes_total[5m]))', {}) > 0);
  assert.ok(one('sum by (surface, reason) (rate(streamgate_token_refusals_total[5m]))', { surface: 'media', reason: 'invalid_token' }) > 0);
  const free = series('min by (instance) (streamgate_media_dir_free_bytes)');
  assert.deepEqual(free.map((s) => s.metric.instance).sort(), [targets['streamgate-origin'], targets['streamgate-worker']].sort());
});

test('promtool test rules: infra/observability/alerts.test.yml passes (one alert per stream, not one per worker)', async () => {
  const { stdout } = await run('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: OBSERVABILITY });
  assert.match(stdout, /SUCCESS/);
});
