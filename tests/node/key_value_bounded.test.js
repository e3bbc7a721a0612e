// Bounded key-value (issue 10, item 5; docs/key-value.md), against the real host, the real
// components and a real chain: under a long run of sign-ins, playback checks and logouts, with
// short lifetimes (sessions 3 s, rate windows 2 s, gate answers 1 s, a sweep at most every
// second), every entry with a lifetime leaves the store soon after it ends, so the number of
// keys stays bounded while the number written keeps growing. The store is the host's SQLite
// file (`<state dir>/sqlite_key_value.db`), read here with Python's sqlite3.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { assertError, PYTHON, requestFrom, signIn, siweMessage, viemSigner } from './lib/auth.js';
import { CHAIN_ID, sleep } from './lib/fixtures.js';
import { deployContract, fundedKey, readyVideo, startGateStack } from './lib/videos.js';

const SESSION_SECS = 3;
const WINDOW_SECS = 2;
const GATE_SECS = 1;
const SWEEP_SECS = 1;
const GRACE_SECS = 5; // streamgate_core::key_value::SWEEP_GRACE_SECS
const BATCH = 128; // streamgate_core::key_value::SWEEP_BATCH
const LOAD_MS = 25_000;
const WORKERS = 3;
const CLIENTS = 40; // loopback addresses 127.0.0.10 … 127.0.0.49: one rate window each

let stack;
let anvil;
let host;
let video;
let holder;

before(async () => {
  stack = await startGateStack({
    vars: {
      session_ttl_secs: String(SESSION_SECS),
      key_value_sweep_secs: String(SWEEP_SECS),
      rate_limit_nonce_per_ip: `100000/${WINDOW_SECS}`,
      rate_limit_verify_per_ip: `100000/${WINDOW_SECS}`,
      rate_limit_verify_per_address: `100000/${WINDOW_SECS}`,
      gate_cache_positive_secs: String(GATE_SECS),
      gate_cache_negative_secs: String(GATE_SECS),
    },
  });
  ({ anvil, host } = stack);
  const deployerKey = await fundedKey(anvil);
  const nft = await deployContract(anvil, 'GateNFT', deployerKey);
  const creator = viemSigner(undefined, anvil.url);
  const { token } = await signIn(host, creator);
  video = await readyVideo(host, token, [{ chain_id: CHAIN_ID, contract: nft.address, standard: 'erc721' }]);
  holder = viemSigner(undefined, anvil.url);
  await nft.write(deployerKey, 'mint', [holder.address, 1n]);
});

after(async () => {
  await stack?.stop();
});

// ---- the store, as the host keeps it ----

const COUNT = `
import json, sqlite3, sys, time
db = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True, timeout=10)
now = int(time.time())
rows = db.execute("SELECT key, value FROM spin_key_value WHERE store = 'default'").fetchall()
lifetime = [(k, v) for k, v in rows if k.startswith(('session:revoked:', 'rl:', 'gate:'))]
def end(v):
    try:
        x = json.loads(bytes(v))
    except Exception:
        return None
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x
    if isinstance(x, dict) and isinstance(x.get('exp'), int):
        return x['exp']
    return None
ends = [end(v) for _, v in lifetime]
kinds = {}
for k, _ in lifetime:
    kind = k.split(':')[0] + ':' + k.split(':')[1]
    kinds[kind] = kinds.get(kind, 0) + 1
print(json.dumps({
    'keys': len(rows),
    'lifetime': len(lifetime),
    'without_end': sum(1 for e in ends if e is None),
    'overdue': max([now - e for e in ends if e is not None] or [0]),
    'kinds': kinds,
}))
`;

/** `{ keys, lifetime, without_end, overdue, kinds }` of the host's key-value store now. */
function storeStats() {
  const db = path.join(host.stateDir, 'sqlite_key_value.db');
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-c', COUNT, db], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`sqlite3: ${err}`))));
  });
}

// ---- one client, from its own loopback address ----

const agents = new Map();
function agent(localAddress) {
  if (!agents.has(localAddress)) agents.set(localAddress, new http.Agent({ keepAlive: true, localAddress }));
  return agents.get(localAddress);
}

/** One API call from `localAddress`, on that address's keep-alive connection. */
function call(localAddress, method, route, { json, token } = {}) {
  return requestFrom(host.base, method, route, { json, token, agent: agent(localAddress) });
}

const show = (res) => `${res.status} ${res.text}`;

/**
 * A fresh wallet signs in from `client`, asks for the gated video (no token: 403), logs out,
 * and finds its token revoked. Every N-th round also sends a forged verify (a failure counted
 * against the client). Each round writes lifetime entries: the client's nonce window, the
 * address's sign-in window, a gate answer, a revocation.
 */
async function round(client, n) {
  const signer = viemSigner(undefined, anvil.url);
  const nonce = await call(client, 'POST', '/api/v1/auth/nonce', { json: {} });
  assert.equal(nonce.status, 200, show(nonce));
  const message = siweMessage(host, { address: signer.address, nonce: nonce.json.nonce });
  if (n % 5 === 0) {
    const forged = await call(client, 'POST', '/api/v1/auth/verify', {
      json: { message, signature: await viemSigner().sign(message) },
    });
    assertError(forged, 401, 'bad_signature');
  }
  const verified = await call(client, 'POST', '/api/v1/auth/verify', {
    json: { message, signature: await signer.sign(message) },
  });
  assert.equal(verified.status, 200, show(verified));
  const { token } = verified.json;
  assertError(await call(client, 'POST', `/api/v1/videos/${video}/playback`, { token }), 403, 'not_token_holder');
  const out = await call(client, 'POST', '/api/v1/auth/logout', { token });
  assert.equal(out.status, 204, show(out));
  assertError(await call(client, 'GET', '/api/v1/auth/me', { token }), 401, 'token_revoked');
  return token;
}

test('the key count stays bounded under sign-ins, playback checks and logouts', async () => {
  const samples = [];
  let rounds = 0;
  let holderChecks = 0;
  const revoked = []; // [token, issuedAtMs]: checked again later, never accepted
  const stopAt = Date.now() + LOAD_MS;

  const workers = Array.from({ length: WORKERS }, async (_, w) => {
    for (let i = 0; Date.now() < stopAt; i++) {
      const client = `127.0.0.${10 + ((i * WORKERS + w) % CLIENTS)}`;
      const token = await round(client, i);
      rounds += 1;
      if (i % 10 === 0) revoked.push([token, Date.now()]);
    }
  });
  // A holder keeps watching (signing in again when its 3 s session ends): its positive answer
  // is cached and expires over and over.
  const watcher = (async () => {
    let session = await signIn(host, holder);
    while (Date.now() < stopAt) {
      const res = await call('127.0.0.2', 'POST', `/api/v1/videos/${video}/playback`, { token: session.token });
      if (res.status === 401) {
        assert.equal(res.json?.code, 'token_expired', show(res));
        session = await signIn(host, holder);
        continue;
      }
      assert.equal(res.status, 200, show(res));
      holderChecks += 1;
      await sleep(200);
    }
  })();
  const sampler = (async () => {
    while (Date.now() < stopAt) {
      await sleep(1000);
      // Rounds counted after the read: the bound below then errs on the generous side.
      const stats = await storeStats();
      samples.push({ at: Date.now(), rounds, ...stats });
    }
  })();
  await Promise.all([...workers, watcher, sampler]);

  assert.ok(rounds >= 100, `enough load to tell: ${rounds} rounds`);
  assert.ok(holderChecks > 0, 'the holder was admitted');
  // Each round left at least three entries with a lifetime (a sign-in window, a gate answer,
  // a revocation) besides the clients' own windows (nonces, failed verifies).
  const written = rounds * 3;
  const peak = Math.max(...samples.map((s) => s.lifetime));
  const log = samples.map((s) => `${s.rounds} rounds: ${s.lifetime} entries (${s.keys} keys), overdue ${s.overdue} s ${JSON.stringify(s.kinds)}`);
  console.log(`${rounds} rounds, at least ${written} entries written, at most ${peak} in the store at once\n${log.join('\n')}`);

  const roundsAt = (t) => [...samples].reverse().find((s) => s.at <= t)?.rounds ?? 0;
  for (const s of samples) {
    assert.equal(s.without_end, 0, 'every entry with a lifetime says when it ends');
    // Removed within the grace period, plus the time a lap of sweeps takes (one batch per
    // writing request, a new lap every second), plus the sampling's own seconds.
    const allowance = GRACE_SECS + SWEEP_SECS + Math.ceil(s.lifetime / BATCH) + 3;
    assert.ok(s.overdue <= allowance, `an entry ${s.overdue} s past its end (allowed ${allowance}): ${JSON.stringify(s)}`);
    // Bounded by what the last (longest lifetime + allowance) seconds wrote, however long the
    // run: three entries per round, two windows per client, a few for the holder.
    const recent = s.rounds - roundsAt(s.at - (SESSION_SECS + allowance) * 1000);
    const bound = 3 * recent + 2 * CLIENTS + 10;
    assert.ok(s.lifetime <= bound, `${s.lifetime} entries, more than ${bound} (${recent} recent rounds): ${JSON.stringify(s)}`);
  }
  assert.ok(peak * 2 < written, `peak ${peak} vs ${written} written`);

  // A token revoked during the run is never accepted again: refused as revoked while it
  // lives, as expired once its entry may go.
  for (const [token] of revoked.slice(-5)) {
    const res = await call('127.0.0.3', 'GET', '/api/v1/auth/me', { token });
    assert.ok(['token_revoked', 'token_expired'].includes(res.json?.code), show(res));
  }

  // Quiet: once every lifetime and the grace have passed, writing requests (a nonce each, from
  // one client: one window) sweep the run's entries away, a batch per request.
  await sleep((Math.max(SESSION_SECS, WINDOW_SECS, GATE_SECS) + GRACE_SECS + 1) * 1000);
  let quiet;
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
    const res = await call('127.0.0.60', 'POST', '/api/v1/auth/nonce', { json: {} });
    assert.equal(res.status, 200, show(res));
    await sleep(300);
    quiet = await storeStats();
    if (quiet.lifetime <= 1) break;
  }
  console.log(`after the run: ${JSON.stringify(quiet)}`);
  assert.deepEqual(quiet.kinds, { 'rl:nonce_ip': 1 }, `only the last client's nonce window is left: ${JSON.stringify(quiet)}`);
  assert.equal(quiet.keys, 2, `it and the sweep's marker: ${JSON.stringify(quiet)}`);
});
