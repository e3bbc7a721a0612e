// Every secret and previous secret has the same 32-byte minimum (issue 10, item 6): on the Spin
// side a shorter one is 503 server_misconfigured naming the variable (never its value or
// length), on every route that uses it, against the real host and the real components. (The
// native side refuses to start: native-transcoder/tests/secrets.rs.)

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { api, assertError } from './lib/auth.js';
import { randomSecret, startHost } from './lib/fixtures.js';

const SHORT = 'a-31-byte-secret-0123456789abcd';
assert.equal(Buffer.byteLength(SHORT), 31);

/** A host with `vars`; `fn(host)` runs against it; the host is stopped whatever happens. */
async function withHost(vars, fn) {
  const host = await startHost({ vars });
  try {
    await fn(host);
  } finally {
    await host.stop();
  }
}

function assertMisconfigured(res, variable) {
  assertError(res, 503, 'server_misconfigured');
  assert.match(res.json.error, new RegExp(`\`${variable}\``), res.text);
  assert.ok(!res.text.includes(SHORT), `the secret leaked: ${res.text}`);
  assert.ok(!/\b31\b/.test(res.json.error), `the length is not told to clients: ${res.text}`);
}

const event = (host) =>
  api(host.base, 'POST', '/internal/v1/events', {
    headers: { 'content-type': 'application/json', 'streamgate-signature': 't=1,v1=00' },
    body: '{}',
  });
const me = (host) => api(host.base, 'GET', '/api/v1/auth/me', { token: 'x.y.z' });
const manifest = (host) => api(host.base, 'GET', '/stream/abc/master.m3u8?hdnts=st%3D1');

test('a short session_secret_previous: 503 on the session check, naming it', async () => {
  await withHost({ session_secret_previous: SHORT }, async (host) => {
    assertMisconfigured(await me(host), 'session_secret_previous');
  });
});

test('a short playback_secret or playback_secret_previous: 503 on the playlists', async () => {
  await withHost({ playback_secret_previous: SHORT }, async (host) => {
    assertMisconfigured(await manifest(host), 'playback_secret_previous');
  });
  await withHost({ playback_secret: SHORT }, async (host) => {
    assertMisconfigured(await manifest(host), 'playback_secret');
  });
});

test('a short events_secret or events_secret_previous: 503 on the events route', async () => {
  await withHost({ events_secret_previous: SHORT }, async (host) => {
    assertMisconfigured(await event(host), 'events_secret_previous');
  });
  await withHost({ events_secret: SHORT }, async (host) => {
    assertMisconfigured(await event(host), 'events_secret');
  });
});

test('secrets of 32 bytes and more, current and previous: the routes answer as usual', async () => {
  const vars = {
    session_secret_previous: randomSecret(),
    playback_secret_previous: 'x'.repeat(32),
    events_secret_previous: randomSecret(),
  };
  await withHost(vars, async (host) => {
    assertError(await me(host), 401, 'invalid_token');
    assertError(await manifest(host), 403, 'invalid_token');
    assertError(await event(host), 401, 'stale_event');
  });
});
