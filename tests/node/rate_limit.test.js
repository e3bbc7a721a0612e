// Abuse limits: a host of its own with rate_limit_nonce_per_ip = "3/60".

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { api, assertError } from './lib/auth.js';
import { startHost } from './lib/fixtures.js';

let host;
before(async () => {
  host = await startHost({ vars: { rate_limit_nonce_per_ip: '3/60' } });
});
after(async () => {
  await host?.stop();
});

test('nonce per IP "3/60": three nonces, then 429 rate_limited with Retry-After', async () => {
  for (let i = 1; i <= 3; i++) {
    const res = await api(host.base, 'POST', '/api/v1/auth/nonce', { json: {} });
    assert.equal(res.status, 200, `request ${i} of 3: ${res.status} ${res.text}`);
  }
  const limited = await api(host.base, 'POST', '/api/v1/auth/nonce', { json: {} });
  assertError(limited, 429, 'rate_limited');
  const retryAfter = limited.headers.get('retry-after');
  assert.match(retryAfter ?? '', /^\d+$/, `Retry-After is a number of seconds: ${retryAfter}`);
  assert.ok(Number(retryAfter) > 0 && Number(retryAfter) <= 60, `Retry-After within the window: ${retryAfter}`);
  // Still limited on the next try, within the same window.
  assertError(await api(host.base, 'POST', '/api/v1/auth/nonce', { json: {} }), 429, 'rate_limited');
});
