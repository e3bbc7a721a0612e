// What a sign-in client does, with real wallet libraries: ask for a nonce, build the EIP-4361
// message with the `siwe` package, sign it (viem, ethers v6, Python eth-account), verify it,
// and use the session token. Plus the checks every test makes on the API's answers, and JWT
// tools to forge tokens the way an attacker would.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import path from 'node:path';

import { Wallet } from 'ethers';
import { SiweMessage } from 'siwe';
import { createWalletClient, getAddress, http } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';

import { CHAIN_ID, REPO_ROOT } from './fixtures.js';

// ---- HTTP ----

/**
 * One API call. `json` is sent as a JSON body; `body` is sent as it is.
 * Returns `{ status, headers, text, json }` (`json` is null when the body is not JSON).
 */
export async function api(base, method, route, { json, body, token, headers = {} } = {}) {
  const h = { ...headers };
  if (json !== undefined) {
    h['content-type'] = 'application/json';
    body = JSON.stringify(json);
  }
  if (token !== undefined) h.authorization = `Bearer ${token}`;
  const res = await fetch(new URL(route, base), { method, headers: h, body, signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  return { status: res.status, headers: res.headers, text, json: parsed };
}

/**
 * One API call over node:http, where a test must choose the connection: from `localAddress` (a
 * loopback address the host then reports as the client's) or through `agent` (which may carry
 * its own local address and keep-alive). Returns `{ status, headers, text, json }` like `api`.
 */
export function requestFrom(base, method, route, { json, token, headers = {}, localAddress, agent } = {}) {
  const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
  const h = { ...headers };
  if (body) {
    h['content-type'] = 'application/json';
    h['content-length'] = String(body.length);
  }
  if (token) h.authorization = `Bearer ${token}`;
  const options = { method, headers: h, timeout: 30_000 };
  if (agent) options.agent = agent;
  if (localAddress) options.localAddress = localAddress;
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(route, base), options, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed = null;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch {
          parsed = null;
        }
        const headerList = Object.entries(res.headers).flatMap(([k, v]) =>
          Array.isArray(v) ? v.map((x) => [k, x]) : [[k, String(v)]],
        );
        resolve({ status: res.statusCode, headers: new Headers(headerList), text, json: parsed });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${route} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

const show = (res) => `${res.status} ${res.text}`;

/** Every answer with a body is JSON, and says so. */
export function assertJsonType(res) {
  assert.match(res.headers.get('content-type') ?? '', /^application\/json\b/, `content-type of ${show(res)}`);
}

/** Asserts an error answer: the status, the JSON `{error, code}` shape, and the code. */
export function assertError(res, status, code) {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${show(res)}`);
  assert.ok(res.json && typeof res.json === 'object', `error body is not JSON: ${show(res)}`);
  assert.equal(res.json.code, code, `expected code ${code}, got ${show(res)}`);
  assertJsonType(res);
  assert.equal(typeof res.json.error, 'string', `error has no sentence: ${show(res)}`);
  assert.ok(res.json.error.length > 0, `error sentence is empty: ${show(res)}`);
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Asserts an RFC 3339 timestamp and returns it as Unix seconds. */
export function rfc3339Seconds(value, what = 'timestamp') {
  assert.match(String(value), RFC3339, `${what} is not RFC 3339: ${value}`);
  return Math.floor(Date.parse(value) / 1000);
}

/** POST /nonce; asserts the answer's shape and returns `{ nonce, expires_at }`. */
export async function getNonce(base, body = {}) {
  const res = await api(base, 'POST', '/api/v1/auth/nonce', { json: body });
  assert.equal(res.status, 200, `nonce: ${show(res)}`);
  assertJsonType(res);
  assert.match(res.json.nonce, /^[A-Za-z0-9]{22}$/, `nonce is not 22 alphanumerics: ${res.json.nonce}`);
  rfc3339Seconds(res.json.expires_at, 'nonce expires_at');
  return res.json;
}

export function verify(base, message, signature) {
  return api(base, 'POST', '/api/v1/auth/verify', { json: { message, signature } });
}

export function me(base, token) {
  return api(base, 'GET', '/api/v1/auth/me', { token });
}

// ---- EIP-4361 messages (the `siwe` package, as a dapp builds them) ----

const iso = (t) => (t instanceof Date ? t.toISOString() : t);

/**
 * The message text for `host` (its domain and URI unless overridden), built with `siwe`.
 * Times are Dates or strings; `issuedAt` defaults to now.
 */
export function siweMessage(host, { address, nonce, ...fields }) {
  return new SiweMessage({
    domain: fields.domain ?? host.domain,
    address: getAddress(address),
    statement: 'statement' in fields ? fields.statement : 'Sign in to StreamGate.',
    uri: fields.uri ?? host.uri,
    version: '1',
    chainId: fields.chainId ?? CHAIN_ID,
    nonce,
    issuedAt: iso(fields.issuedAt ?? new Date()),
    expirationTime: iso(fields.expirationTime),
    notBefore: iso(fields.notBefore),
    requestId: fields.requestId,
    resources: fields.resources,
  }).prepareMessage();
}

// ---- signers: each `{ name, address, key, sign(text) → Promise<"0x…"> }` ----

export function newKey() {
  return generatePrivateKey();
}

/** viem: a wallet client with a local account, `signMessage` (EIP-191 personal_sign). */
export function viemSigner(key = newKey(), rpcUrl) {
  const account = privateKeyToAccount(key);
  const client = createWalletClient({ account, chain: foundry, transport: http(rpcUrl) });
  return { name: 'viem', key, address: account.address, sign: (message) => client.signMessage({ message }) };
}

/** ethers v6: `Wallet.signMessage`. */
export function ethersSigner(key = newKey()) {
  const wallet = new Wallet(key);
  return { name: 'ethers', key, address: wallet.address, sign: (message) => wallet.signMessage(message) };
}

export const PYTHON = process.env.PYTHON ?? 'python3';
const PY_SIGNER = path.join(REPO_ROOT, 'tests/python/sign_message.py');

function runPython(args, { key, input = '' }) {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [PY_SIGNER, ...args], {
      env: { ...process.env, SIGNER_PRIVATE_KEY: key },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(out.trim()) : reject(new Error(`${PY_SIGNER} exited ${code}: ${err.trim()}`)),
    );
    child.stdin.end(input, 'utf8');
  });
}

/** Python eth-account, through tests/python/sign_message.py: an independent implementation. */
export async function pythonSigner(key = newKey()) {
  const address = await runPython(['--address'], { key });
  return { name: 'python eth-account', key, address, sign: (message) => runPython([], { key, input: message }) };
}

// ---- a whole sign-in ----

/**
 * Nonce → message → signature → verify, and the checks a client makes on a successful answer.
 * `address` is the account the message names (default: the signer's); `bindNonce` asks for
 * the nonce on behalf of that address (`{"address"}`) rather than with `{}`. Returns
 * `{ token, address, expires_at, message, signature, nonce }`.
 */
export async function signIn(host, signer, { address = signer.address, bindNonce = false, messageFields = {} } = {}) {
  const { nonce } = await getNonce(host.base, bindNonce ? { address } : {});
  const message = siweMessage(host, { address, nonce, ...messageFields });
  const signature = await signer.sign(message);
  const res = await verify(host.base, message, signature);
  assert.equal(res.status, 200, `verify (${signer.name}): ${show(res)}`);
  assertJsonType(res);
  assertSession(res.json, address);
  return { ...res.json, message, signature, nonce };
}

/** What a client checks on a verify answer. */
export function assertSession(body, address) {
  assert.equal(typeof body.token, 'string', `no token in ${JSON.stringify(body)}`);
  assert.equal(body.token.split('.').length, 3, `token is not a JWS compact JWT: ${body.token}`);
  assert.equal(body.address, getAddress(address), 'verify answers the EIP-55 checksummed address');
  const exp = rfc3339Seconds(body.expires_at, 'session expires_at');
  assert.ok(exp > Date.now() / 1000, `the session expires in the past: ${body.expires_at}`);
}

// ---- signatures, by hand ----

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** The same signature with s → n − s and v flipped: still a valid ECDSA signature, but high-s. */
export function highS(signature) {
  const hex = signature.slice(2);
  assert.equal(hex.length, 130, 'a 65-byte signature');
  const r = hex.slice(0, 64);
  const s = BigInt(`0x${hex.slice(64, 128)}`);
  const v = parseInt(hex.slice(128, 130), 16);
  assert.ok(s <= SECP256K1_N / 2n, 'wallet libraries produce low-s signatures');
  const flippedS = (SECP256K1_N - s).toString(16).padStart(64, '0');
  const flippedV = v === 27 ? 28 : v === 28 ? 27 : v ^ 1;
  return `0x${r}${flippedS}${flippedV.toString(16).padStart(2, '0')}`;
}

// ---- JWTs ----

const b64url = (data) => Buffer.from(data).toString('base64url');

export function kidOf(secret) {
  return createHash('sha256').update(Buffer.from(secret, 'utf8')).digest('hex').slice(0, 8);
}

export function decodeJwt(token) {
  const [h, c] = token.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), claims: JSON.parse(Buffer.from(c, 'base64url')) };
}

/** Does the token's HS256 signature verify with `secret` (UTF-8 bytes)? */
export function hs256Verifies(token, secret) {
  const [h, c, s] = token.split('.');
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${h}.${c}`).digest('base64url') === s;
}

/** A JWT with this header and these claims, HS256-signed with `secret` (or unsigned: `secret` null). */
export function forgeJwt(header, claims, secret) {
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  if (secret === null) return `${signingInput}.`;
  const sig = createHmac('sha256', Buffer.from(secret, 'utf8')).update(signingInput).digest('base64url');
  return `${signingInput}.${sig}`;
}

/** Claims like the server's, for `address`, valid from now for `ttl` seconds unless overridden. */
export function sessionClaims(address, overrides = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    sub: getAddress(address),
    chain_id: CHAIN_ID,
    iat: now,
    exp: now + 3600,
    jti: randomBytes(16).toString('hex'),
    ...overrides,
  };
}
