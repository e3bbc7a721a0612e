// The web component (components/web) in the real host: the front end's build embedded in the
// Wasm, fingerprinted assets cached for a year, index.html revalidated (ETag, 304), brotli or
// gzip when the client takes it, a strict Content-Security-Policy naming the media origin, the
// app's routes answering index.html, and any other path the host's JSON 404.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import zlib from 'node:zlib';

import { startHost } from './lib/fixtures.js';

const MEDIA = 'http://127.0.0.1:39999';
let host;

before(async () => {
  host = await startHost({ vars: {
    media_base_url: `${MEDIA}/media-root`, stream_base_url: 'https://stream.example.test/base',
    chain_rpc_urls: '1=https://rpc.example.test/v2/secret-key,31337=http://127.0.0.1:8545',
  } });
});
after(() => host?.stop());

/** A raw GET (no automatic decompression): `{ status, headers, body: Buffer }`. */
function get(path, headers = {}) {
  return new Promise((resolve, reject) => {
    http.get(`${host.base}${path}`, { headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

test('/, /watch/<id>, /studio and /browse answer index.html, no-cache, with an ETag and a strict CSP', async () => {
  const index = await get('/');
  assert.equal(index.status, 200);
  assert.match(index.headers['content-type'], /^text\/html/);
  assert.equal(index.headers['cache-control'], 'no-cache');
  assert.ok(index.headers.etag, 'an ETag to revalidate with');
  const html = index.body.toString();
  assert.match(html, /<script type="module" crossorigin src="\/assets\/index-[\w-]+\.js"><\/script>/);
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
  assert.doesNotMatch(html, /https?:\/\//, 'no third-party (or absolute) asset URL');
  const csp = index.headers['content-security-policy'];
  for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "base-uri 'none'", "frame-ancestors 'none'"]) {
    assert.ok(csp.includes(directive), `${directive} in ${csp}`);
  }
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/, csp);
  assert.match(csp, new RegExp(`connect-src 'self' ${MEDIA} https://stream.example.test;`), 'connect-src: the media and stream origins, no path');
  assert.match(csp, new RegExp(`media-src 'self' blob: ${MEDIA} `));
  assert.equal(index.headers['x-content-type-options'], 'nosniff');

  for (const path of ['/watch/abc123', '/watch/abc123/', '/studio', '/browse']) {
    const r = await get(path);
    assert.equal(r.status, 200, path);
    assert.equal(r.headers.etag, index.headers.etag, `${path} is index.html`);
    assert.equal(r.headers['cache-control'], 'no-cache', path);
  }
  const again = await get('/', { 'if-none-match': index.headers.etag });
  assert.equal(again.status, 304, 'revalidation: not modified');
  assert.equal(again.body.length, 0);
});

test('assets: fingerprinted names, immutable for a year, brotli or gzip as the client accepts', async () => {
  const html = (await get('/')).body.toString();
  const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
  assert.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), assets.join(' '));
  for (const asset of assets) {
    assert.match(asset, /-[\w-]{8}\.\w+$/, `${asset} is fingerprinted`);
    const plain = await get(asset);
    assert.equal(plain.status, 200, asset);
    assert.equal(plain.headers['cache-control'], 'public, max-age=31536000, immutable', asset);
    assert.equal(plain.headers['content-encoding'], undefined, 'no Accept-Encoding: identity');
    assert.match(plain.headers.vary, /accept-encoding/i);
    if (!asset.endsWith('.js')) continue;
    const br = await get(asset, { 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.ok(br.body.length < plain.body.length);
    assert.deepEqual(zlib.brotliDecompressSync(br.body), plain.body);
    const gz = await get(asset, { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.deepEqual(zlib.gunzipSync(gz.body), plain.body);
    const refused = await get(asset, { 'accept-encoding': 'br;q=0, gzip;q=0' });
    assert.equal(refused.headers['content-encoding'], undefined);
  }
});

test('/config.json names the sign-in chains (ids only) and the media origin', async () => {
  const r = await get('/config.json');
  assert.equal(r.status, 200);
  assert.equal(r.headers['cache-control'], 'no-cache');
  assert.doesNotMatch(r.body.toString(), /secret-key|rpc\.example/, 'no RPC URL (they may carry keys)');
  assert.deepEqual(JSON.parse(r.body.toString()), { chains: [1, 31337], media_base_url: MEDIA });
});

test('any other path answers the host\'s JSON 404, as before the web app (the API keeps its prefixes)', async () => {
  for (const path of ['/api/v1/nope', '/internal/v1/x', '/api', '/media/x', '/no-such-page', '/health/extra', '/watch/a/b']) {
    const r = await get(path);
    assert.equal(r.status, 404, path);
    assert.deepEqual(JSON.parse(r.body.toString()), { error: 'No route matches this path.', code: 'not_found' }, path);
  }
  assert.equal((await get('/health')).status, 200, '/health is still the health component');
  assert.equal((await get('/api/v1/videos')).status, 200, 'the API still answers');
  const post = await new Promise((resolve) => {
    const req = http.request(`${host.base}/studio`, { method: 'POST' }, (res) => {
      res.resume();
      resolve(res);
    });
    req.end();
  });
  assert.equal(post.statusCode, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
});
