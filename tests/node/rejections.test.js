// Every way a sign-in request is refused, each with the status and code of the API contract.
// Messages are built with the `siwe` package and signed with viem (a real wallet signature), so
// each request is wrong in exactly the one way the test names.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { recoverMessageAddress } from 'viem';

import { assertError, api, getNonce, highS, me, siweMessage, verify, viemSigner } from './lib/auth.js';
import { startStack } from './lib/fixtures.js';

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

const minutes = (n) => new Date(Date.now() + n * 60_000);

/** A fresh nonce, a message for `signer` with `fields`, signed by `signer` (or `by`). */
async function attempt(fields = {}, { signer = viemSigner(), by = signer, transform = (m) => m } = {}) {
  const { host } = stack;
  const { nonce } = await getNonce(host.base);
  const message = transform(siweMessage(host, { address: signer.address, nonce, ...fields }));
  const signature = await by.sign(message);
  return { message, signature, nonce, res: await verify(host.base, message, signature) };
}

describe('the message', () => {
  test('malformed EIP-4361 text: 400 invalid_message', async () => {
    const { host } = stack;
    const signer = viemSigner();
    const { nonce } = await getNonce(host.base);
    const good = siweMessage(host, { address: signer.address, nonce });
    const bad = {
      'not a SIWE message': 'hello, please let me in',
      'CRLF line ends': good.replaceAll('\n', '\r\n'),
      'no Nonce line': good
        .split('\n')
        .filter((l) => !l.startsWith('Nonce: '))
        .join('\n'),
      'address not EIP-55 checksummed': good.replace(signer.address, signer.address.toLowerCase()),
      'trailing newline': `${good}\n`,
      'version 2': good.replace('Version: 1', 'Version: 2'),
      'issued-at not RFC 3339': good.replace(/Issued At: .*/, 'Issued At: yesterday'),
      'empty': '',
    };
    for (const [why, message] of Object.entries(bad)) {
      assert.notEqual(message, good, why);
      const res = await verify(host.base, message, await signer.sign(message));
      assertError(res, 400, 'invalid_message');
    }
  });

  test('another domain: 401 domain_mismatch', async () => {
    const { host } = stack;
    assertError((await attempt({ domain: 'evil.example' })).res, 401, 'domain_mismatch');
    assertError((await attempt({ domain: `127.0.0.1:${host.port + 1}` })).res, 401, 'domain_mismatch');
  });

  test('another URI: 401 uri_mismatch', async () => {
    const { host } = stack;
    for (const uri of ['http://evil.example/', `https://${host.domain}/`, `http://localhost:${host.port}/`]) {
      assertError((await attempt({ uri })).res, 401, 'uri_mismatch');
    }
  });

  test('a chain the server does not serve: 422 chain_not_supported', async () => {
    assertError((await attempt({ chainId: 1 })).res, 422, 'chain_not_supported');
    assertError((await attempt({ chainId: 31338 })).res, 422, 'chain_not_supported');
  });

  test('Expiration Time passed: 401 expired', async () => {
    const res = (await attempt({ issuedAt: minutes(-3), expirationTime: minutes(-1) })).res;
    assertError(res, 401, 'expired');
  });

  test('Not Before in the future (beyond the skew): 401 not_yet_valid', async () => {
    assertError((await attempt({ notBefore: minutes(10) })).res, 401, 'not_yet_valid');
  });

  test('Issued At in the future (beyond the skew): 401 issued_in_future', async () => {
    assertError((await attempt({ issuedAt: minutes(10) })).res, 401, 'issued_in_future');
  });
});

describe('the nonce', () => {
  test('never issued: 401 nonce_unknown', async () => {
    const { host } = stack;
    const signer = viemSigner();
    // Well-formed (22 base62 characters) but never issued, and one of another form.
    for (const nonce of ['0123456789abcdefABCDEF', 'abcdefgh12345678']) {
      const message = siweMessage(host, { address: signer.address, nonce });
      assertError(await verify(host.base, message, await signer.sign(message)), 401, 'nonce_unknown');
    }
  });

  test('used twice: the second sign-in is 401 nonce_used', async () => {
    const { host } = stack;
    const signer = viemSigner();
    const first = await attempt({}, { signer });
    assert.equal(first.res.status, 200, `first use: ${first.res.status} ${first.res.text}`);
    // The same request again (a replay) ...
    assertError(await verify(host.base, first.message, first.signature), 401, 'nonce_used');
    // ... and a new message with the same nonce.
    const again = siweMessage(host, { address: signer.address, nonce: first.nonce, statement: 'Again.' });
    assertError(await verify(host.base, again, await signer.sign(again)), 401, 'nonce_used');
  });

  test('asked for on behalf of one address, used by another: refused (401)', async () => {
    const { host } = stack;
    const alice = viemSigner();
    const mallory = viemSigner();
    const { nonce } = await getNonce(host.base, { address: alice.address });
    const message = siweMessage(host, { address: mallory.address, nonce });
    const res = await verify(host.base, message, await mallory.sign(message));
    assert.equal(res.status, 401, `${res.status} ${res.text}`);
    assert.match(res.json?.code ?? '', /^nonce_/, `a nonce refusal: ${res.text}`);
  });

  test('two concurrent verifies of one signed message: exactly one 200, the others nonce_used', async () => {
    const { host } = stack;
    for (const parallel of [2, 2, 2, 4, 8]) {
      const signer = viemSigner();
      const { nonce } = await getNonce(host.base);
      const message = siweMessage(host, { address: signer.address, nonce });
      const signature = await signer.sign(message);
      const answers = await Promise.all(Array.from({ length: parallel }, () => verify(host.base, message, signature)));
      const ok = answers.filter((r) => r.status === 200);
      assert.equal(ok.length, 1, `exactly one winner of ${parallel}: ${answers.map((r) => r.status).join(', ')}`);
      for (const r of answers.filter((x) => x.status !== 200)) assertError(r, 401, 'nonce_used');
      const who = await me(host.base, ok[0].json.token);
      assert.equal(who.json?.address, signer.address);
    }
  });
});

describe('the signature', () => {
  test('by another key: 401 bad_signature, and the nonce is still the owner’s to use', async () => {
    const { host } = stack;
    const signer = viemSigner();
    const refused = await attempt({}, { signer, by: viemSigner() });
    assertError(refused.res, 401, 'bad_signature');
    const res = await verify(host.base, refused.message, await signer.sign(refused.message));
    assert.equal(res.status, 200, `the genuine signature after a forged one: ${res.status} ${res.text}`);
  });

  test('over another text than the one sent: 401 bad_signature', async () => {
    const { host } = stack;
    const signer = viemSigner();
    const { nonce } = await getNonce(host.base);
    const message = siweMessage(host, { address: signer.address, nonce });
    const signature = await signer.sign(message.replace('Sign in to', 'Sign into'));
    assertError(await verify(host.base, message, signature), 401, 'bad_signature');
  });

  test('high-s (s → n − s, v flipped; same signer, malleated): 400 invalid_signature', async () => {
    const { host } = stack;
    const signer = viemSigner();
    const { nonce } = await getNonce(host.base);
    const message = siweMessage(host, { address: signer.address, nonce });
    const signature = await signer.sign(message);
    const malleated = highS(signature);
    // Still the signer's signature to a permissive verifier: refused only for being high-s.
    assert.equal(await recoverMessageAddress({ message, signature: malleated }), signer.address);
    assertError(await verify(host.base, message, malleated), 400, 'invalid_signature');
    // The nonce was not spent by the refused attempt: the genuine signature still signs in.
    const res = await verify(host.base, message, signature);
    assert.equal(res.status, 200, `genuine signature after the malleated one: ${res.status} ${res.text}`);
  });

  test('garbage: 400 invalid_signature', async () => {
    const { host } = stack;
    const signer = viemSigner();
    const { nonce } = await getNonce(host.base);
    const message = siweMessage(host, { address: signer.address, nonce });
    const good = await signer.sign(message);
    const garbage = {
      'not hex': '0xnot-a-signature',
      'no 0x': good.slice(2),
      'empty': '0x',
      'odd length': `${good}0`,
      '64 bytes': good.slice(0, 130),
      '66 bytes': `${good}00`,
      'v = 29': `${good.slice(0, 130)}1d`,
      'r = 0': `0x${'0'.repeat(64)}${good.slice(66)}`,
    };
    for (const [why, signature] of Object.entries(garbage)) {
      const res = await verify(host.base, message, signature);
      assert.equal(res.status, 400, `${why}: ${res.status} ${res.text}`);
      assertError(res, 400, 'invalid_signature');
    }
  });
});

describe('the request', () => {
  test('a body that is not JSON: 400 invalid_json', async () => {
    const { host } = stack;
    const headers = { 'content-type': 'application/json' };
    for (const body of ['message=hi&signature=0x00', '{"message": "x", "signature": ', '']) {
      assertError(await api(host.base, 'POST', '/api/v1/auth/verify', { body, headers }), 400, 'invalid_json');
    }
    assertError(await api(host.base, 'POST', '/api/v1/auth/nonce', { body: '{', headers }), 400, 'invalid_json');
  });

  test('a JSON body of the wrong shape: 400', async () => {
    const { host } = stack;
    for (const json of [{}, { message: 'x' }, { message: 42, signature: '0x00' }, ['x', '0x00']]) {
      const res = await api(host.base, 'POST', '/api/v1/auth/verify', { json });
      assert.equal(res.status, 400, `${JSON.stringify(json)}: ${res.status} ${res.text}`);
      assert.equal(typeof res.json?.code, 'string', res.text);
    }
  });

  test('too large: verify body > 64 KiB and nonce body > 4 KiB are 413 payload_too_large', async () => {
    const { host } = stack;
    const signer = viemSigner();
    const verifyBody = JSON.stringify({ message: 'x'.repeat(64 * 1024), signature: '0x00' });
    assert.ok(verifyBody.length > 64 * 1024);
    assertError(
      await api(host.base, 'POST', '/api/v1/auth/verify', { body: verifyBody, headers: { 'content-type': 'application/json' } }),
      413,
      'payload_too_large',
    );
    const nonceBody = { address: signer.address, padding: 'x'.repeat(4 * 1024) };
    assertError(await api(host.base, 'POST', '/api/v1/auth/nonce', { json: nonceBody }), 413, 'payload_too_large');
    // Just under the limit is read (and refused for what it says, not for its size).
    const under = JSON.stringify({ message: 'x'.repeat(60 * 1024), signature: '0x00' });
    const res = await api(host.base, 'POST', '/api/v1/auth/verify', { body: under, headers: { 'content-type': 'application/json' } });
    assert.notEqual(res.status, 413, `a 60 KiB body is within the limit: ${res.status} ${res.text}`);
    assert.equal(res.status, 400, res.text);
  });

  // For a body streamed without Content-Length the component answers 413 as soon as the limit
  // is passed; the host then reads the rest of the body in the background before closing, so
  // the answer is not lost to a TCP reset (RFC 9112 §9.6).
  test(
    'too large without a Content-Length (chunked): every attempt gets 413 payload_too_large',
    async () => {
      const { host } = stack;
      const chunk = new TextEncoder().encode('x'.repeat(4096));
      for (const [route, size] of [
        ['/api/v1/auth/verify', 80 * 1024],
        ['/api/v1/auth/verify', 256 * 1024],
        ['/api/v1/auth/nonce', 8 * 1024],
        ['/api/v1/auth/nonce', 64 * 1024],
      ]) {
        for (let attempt = 1; attempt <= 5; attempt++) {
          let sent = 0;
          const body = new ReadableStream({
            pull(controller) {
              if (sent >= size) return controller.close();
              sent += chunk.length;
              controller.enqueue(chunk);
            },
          });
          let res;
          try {
            const r = await fetch(new URL(route, host.base), {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body,
              duplex: 'half',
              signal: AbortSignal.timeout(30_000),
            });
            const text = await r.text();
            res = { status: r.status, headers: r.headers, text, json: JSON.parse(text) };
          } catch (e) {
            assert.fail(`${route}, ${size} bytes chunked, attempt ${attempt}: no answer (${e.cause?.code ?? e.message})`);
          }
          assertError(res, 413, 'payload_too_large');
        }
      }
    },
  );

  test('wrong method: 405 method_not_allowed, with Allow naming what the route takes', async () => {
    const { host } = stack;
    const wrong = [
      ['GET', '/api/v1/auth/nonce', 'POST'],
      ['PUT', '/api/v1/auth/nonce', 'POST'],
      ['GET', '/api/v1/auth/verify', 'POST'],
      ['DELETE', '/api/v1/auth/verify', 'POST'],
      ['POST', '/api/v1/auth/me', 'GET'],
      ['GET', '/api/v1/auth/logout', 'POST'],
      ['PATCH', '/api/v1/videos', 'GET, POST'],
      ['POST', '/api/v1/videos/someid', 'GET, DELETE'],
      ['GET', '/api/v1/videos/someid/gate', 'PUT'],
      ['GET', '/api/v1/videos/someid/playback', 'POST'],
      ['GET', '/internal/v1/events', 'POST'],
      ['POST', '/stream/someid/master.m3u8', 'GET, HEAD, OPTIONS'],
      ['POST', '/health', 'GET'],
    ];
    for (const [method, route, allow] of wrong) {
      const res = await api(host.base, method, route);
      assert.equal(res.status, 405, `${method} ${route}: ${res.status} ${res.text}`);
      assertError(res, 405, 'method_not_allowed');
      assert.equal(res.headers.get('allow'), allow, `${method} ${route}: Allow`);
    }
  });

  test('an unknown auth route: 404 not_found', async () => {
    const { host } = stack;
    assertError(await api(host.base, 'GET', '/api/v1/auth/nope'), 404, 'not_found');
  });
});
