// Sign-in cannot be used against someone else (issue 10, item 4), against the real host, the
// real auth component and a real chain, with messages signed by real wallet libraries.
//
// Failed verifies count against the client that sends them (its IP; IPv6 by /64), never
// against the address they name; an address's window counts only sign-ins whose signature is
// valid. Clients are told apart by the connection's peer address (here: distinct loopback
// addresses, 127.0.0.2 and 127.0.0.3), or, with `trusted_client_ip_header` set, by the
// right-most address of that header, as a proxy in front of the app appends it.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  assertError,
  assertJsonType,
  assertSession,
  getNonce,
  me,
  requestFrom,
  siweMessage,
  viemSigner,
} from './lib/auth.js';
import { startStack } from './lib/fixtures.js';

/** One API call over its own connection, from `localAddress`, with extra `headers`. */
function call(base, method, route, { headers = {}, localAddress = '127.0.0.1', ...rest } = {}) {
  return requestFrom(base, method, route, { ...rest, headers: { ...headers, connection: 'close' }, localAddress });
}

const show = (res) => `${res.status} ${res.text}`;

/** A 429 as a client sees it: `rate_limited`, with a Retry-After inside the window. */
function assertLimited(res, windowSecs = 60) {
  assertError(res, 429, 'rate_limited');
  const retryAfter = Number(res.headers.get('retry-after'));
  assert.ok(retryAfter >= 1 && retryAfter <= windowSecs, `Retry-After within the window: ${show(res)}`);
}

/**
 * What an attacker sends: a fresh nonce and a well-formed message naming `victim`, signed with
 * the attacker's own key (a forged signature for the victim's address).
 */
async function forgedVerify(host, attacker, victim, opts = {}) {
  const { nonce } = await getNonce(host.base);
  const message = siweMessage(host, { address: victim.address, nonce });
  const signature = await attacker.sign(message);
  return call(host.base, 'POST', '/api/v1/auth/verify', { json: { message, signature }, ...opts });
}

/** A real sign-in by `signer` (viem), from `opts.localAddress` / with `opts.headers`. */
async function signIn(host, signer, opts = {}) {
  const { nonce } = await getNonce(host.base);
  const message = siweMessage(host, { address: signer.address, nonce });
  const signature = await signer.sign(message);
  return call(host.base, 'POST', '/api/v1/auth/verify', { json: { message, signature }, ...opts });
}

function assertSignedIn(res, signer) {
  assert.equal(res.status, 200, `sign-in of ${signer.address}: ${show(res)}`);
  assertJsonType(res);
  assertSession(res.json, signer.address);
}

describe('without a proxy: clients by peer address', () => {
  const ATTACKER = '127.0.0.2';
  const VICTIM = '127.0.0.3';
  const FAILURES_PER_CLIENT = 15;
  let stack;
  before(async () => {
    stack = await startStack({
      vars: {
        rate_limit_verify_per_ip: `${FAILURES_PER_CLIENT}/60`,
        rate_limit_verify_per_address: '10/60', // the shipped default
      },
    });
  });
  after(async () => {
    await stack?.stop();
  });

  test('bogus verifies naming a victim lock out the attacker, not the victim', async () => {
    const { host, anvil } = stack;
    const victim = viemSigner(undefined, anvil.url);
    const attacker = viemSigner(undefined, anvil.url);

    // More forged attempts for the victim's address than its window holds (10): each is refused
    // for what it is, not with 429. The attacker rotates X-Forwarded-For: with no trusted
    // header configured it changes nothing.
    const forged = 12;
    for (let i = 0; i < forged; i++) {
      const res = await forgedVerify(host, attacker, victim, {
        localAddress: ATTACKER,
        headers: { 'x-forwarded-for': `198.51.100.${i + 1}` },
      });
      assertError(res, 401, 'bad_signature');
    }
    // Other kinds of failure count against the attacker too.
    const { nonce } = await getNonce(host.base);
    const message = siweMessage(host, { address: victim.address, nonce });
    const other = [
      [{ message, signature: '0x1234' }, 400, 'invalid_signature'],
      [{ message: message.replace(host.domain, 'evil.example'), signature: await attacker.sign(message) }, 401, 'domain_mismatch'],
      [{ message: 'hello', signature: '0x' }, 400, 'invalid_message'],
    ];
    assert.equal(forged + other.length, FAILURES_PER_CLIENT);
    for (const [json, status, code] of other) {
      assertError(await call(host.base, 'POST', '/api/v1/auth/verify', { json, localAddress: ATTACKER }), status, code);
    }

    // The attacker's window is spent: refused, whatever it sends and whoever it names.
    assertLimited(await forgedVerify(host, attacker, victim, { localAddress: ATTACKER }));
    assertLimited(await signIn(host, attacker, { localAddress: ATTACKER }));

    // The victim signs in, within the same minute, and the session works.
    const res = await signIn(host, victim, { localAddress: VICTIM });
    assertSignedIn(res, victim);
    const who = await me(host.base, res.json.token);
    assert.equal(who.status, 200, `me: ${show(who)}`);
    assert.equal(who.json.address, victim.address);
  });

  test('an address still has a window for valid sign-ins (a leaked key cannot mint unbounded sessions)', async () => {
    const { host, anvil } = stack;
    const leaked = viemSigner(undefined, anvil.url);
    const bystander = viemSigner(undefined, anvil.url);
    const from = { localAddress: '127.0.0.4' };
    for (let i = 1; i <= 10; i++) assertSignedIn(await signIn(host, leaked, from), leaked);
    assertLimited(await signIn(host, leaked, from));
    // Successful sign-ins are not failures of the client: another wallet there still signs in.
    assertSignedIn(await signIn(host, bystander, from), bystander);
  });
});

describe('behind a proxy: trusted_client_ip_header = X-Forwarded-For', () => {
  let stack;
  before(async () => {
    stack = await startStack({
      vars: {
        trusted_client_ip_header: 'X-Forwarded-For',
        rate_limit_verify_per_ip: '3/60',
        rate_limit_verify_per_address: '10/60',
      },
    });
  });
  after(async () => {
    await stack?.stop();
  });

  // Every request reaches the host from 127.0.0.1 (the proxy); `xff` is the header as the
  // proxy passes it on: whatever the client sent, then the client's address appended.
  const viaProxy = (xff) => ({ headers: { 'x-forwarded-for': xff } });

  test('clients behind the proxy are limited separately; IPv6 by /64', async () => {
    const { host, anvil } = stack;
    const victim = viemSigner(undefined, anvil.url);
    const attacker = viemSigner(undefined, anvil.url);
    const bogus = async (xff) => forgedVerify(host, attacker, victim, viaProxy(xff));

    // Client 203.0.113.5 fails three times, writing a different address of its own each time
    // (the left part, which is never read): then it is limited.
    for (const spoof of ['10.0.0.1', '192.0.2.77', '203.0.113.6']) {
      assertError(await bogus(`${spoof}, 203.0.113.5`), 401, 'bad_signature');
    }
    assertLimited(await bogus('203.0.113.5'));
    assertLimited(await bogus('203.0.113.6, 203.0.113.5')); // naming another client does not help
    assertLimited(await bogus('::ffff:203.0.113.5')); // the same IPv4 client, IPv4-mapped
    // Client 203.0.113.6, behind the same proxy, is not affected.
    assertError(await bogus('203.0.113.6'), 401, 'bad_signature');

    // IPv6: one /64 is one client, whichever of its addresses it uses.
    for (const addr of ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:2:ffff:ffff:ffff:fffe']) {
      assertError(await bogus(addr), 401, 'bad_signature');
    }
    assertLimited(await bogus('2001:db8:1:2:abcd::9'));
    assertLimited(await bogus('[2001:db8:1:2::77]:51000'));
    assertError(await bogus('2001:db8:1:3::1'), 401, 'bad_signature'); // the next /64

    // A right-most element that is not an address: the peer address (the proxy) is the client.
    assertError(await bogus('203.0.113.5, not-an-address'), 401, 'bad_signature');

    // And the victim, a client of its own, signs in.
    assertSignedIn(await signIn(host, victim, viaProxy('198.51.100.20, 2001:db8:99::1')), victim);
  });
});
