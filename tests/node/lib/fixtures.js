// Fixtures for the end-to-end tests: a real local chain (anvil) and the real StreamGate host
// (target/release/streamgate-host, built once by scripts/test, never per test) running the real
// spin.toml and .wasm components, each on a free loopback port, each stopped reliably.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const NODE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(NODE_DIR, '..', '..');

// Installed with --ignore-scripts, so @foundry-rs/anvil's launcher is not set up: use the binary
// that its platform package (an optional dependency) ships.
const PLATFORM = `${process.platform}-${{ x64: 'amd64', arm64: 'arm64' }[process.arch] ?? process.arch}`;
export const ANVIL_BIN =
  process.env.ANVIL_BIN ?? path.join(NODE_DIR, `node_modules/@foundry-rs/anvil-${PLATFORM}/bin/anvil`);
export const HOST_BIN = process.env.STREAMGATE_HOST_BIN ?? path.join(REPO_ROOT, 'target/release/streamgate-host');
export const MANIFEST = path.join(REPO_ROOT, 'spin.toml');
export const CHAIN_ID = 31337; // anvil's default

const KEEP_STATE = Boolean(process.env.SG_KEEP_TEST_STATE);

// ---- every child this process started is killed when it exits, whatever the reason ----

const children = new Set();
const tempDirs = new Set();

function killAll() {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  children.clear();
  if (!KEEP_STATE) {
    for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  }
  tempDirs.clear();
}

process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    killAll();
    process.exit(128 + (os.constants.signals[signal] ?? 1));
  });
}

// Children and their pipes do not keep this process alive: a test that hangs or forgets to stop
// them still lets the file's process end, and the exit hook above kills them.
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) stream?.unref?.();
  return child;
}

export function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

/** SIGTERM, then SIGKILL if it has not exited after `graceMs`. Resolves once it is gone. */
export async function stopChild(child, graceMs = 10_000) {
  if (!child || exited(child)) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (!exited(child)) child.kill('SIGKILL');
  }, graceMs);
  await gone;
  clearTimeout(timer);
}

// ---- ports, temp dirs, waiting ----

/** A loopback port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A loopback port that refuses connections (nothing listens there). */
export const closedPort = freePort;

/** A fresh directory under the system temp dir, removed when this process exits. */
export function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `streamgate-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function randomSecret() {
  return randomBytes(32).toString('hex'); // 64 ASCII characters, 64 bytes of UTF-8
}

// ---- anvil ----

async function rpc(url, method, params = []) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    signal: AbortSignal.timeout(2_000),
  });
  const body = await res.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

/**
 * Starts anvil on a free port (or on `port`, e.g. to bring a stopped chain back where the app
 * expects it). Returns `{ url, hostPort, port, rpc(), stop(), running }`; `stop()` is idempotent.
 */
export async function startAnvil({ port: fixedPort } = {}) {
  if (!fs.existsSync(ANVIL_BIN)) {
    throw new Error(`${ANVIL_BIN} does not exist: run \`npm ci\` in tests/node (scripts/test does)`);
  }
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = fixedPort ?? (await freePort());
    const url = `http://127.0.0.1:${port}`;
    let stderr = '';
    const child = track(
      spawn(ANVIL_BIN, ['--host', '127.0.0.1', '--port', String(port), '--silent'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    );
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !exited(child)) {
      try {
        const chainId = Number(await rpc(url, 'eth_chainId'));
        if (chainId !== CHAIN_ID) throw new Error(`anvil answers chain id ${chainId}, not ${CHAIN_ID}`);
        return {
          url,
          port,
          hostPort: `127.0.0.1:${port}`,
          rpc: (method, params) => rpc(url, method, params),
          stop: () => stopChild(child),
          get running() {
            return !exited(child);
          },
        };
      } catch (e) {
        lastError = e;
        await sleep(50);
      }
    }
    await stopChild(child);
    lastError = new Error(`anvil did not answer on ${url}: ${stderr.trim() || lastError?.message}`);
  }
  throw lastError;
}

// ---- the StreamGate host ----

/** Where libfaketime lives (Debian's `faketime` package), or null. */
export function libfaketime() {
  for (const p of [
    '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1',
    '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1',
    '/usr/lib/faketime/libfaketimeMT.so.1',
  ]) {
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/**
 * Starts `streamgate-host up --from spin.toml` on a free port with a fresh state directory
 * (unless `stateDir` is given) and the test configuration.
 *
 * options:
 * - `anvil`: the chain whose RPC URL the app is configured with (`chain_rpc_urls`).
 * - `vars`: Spin variables (lower-case names) to add or override; `undefined` removes one.
 * - `stateDir`: reuse this state directory (it is then not removed on stop).
 * - `clockOffsetSeconds`: run the host with its wall clock shifted (libfaketime).
 *
 * Returns `{ base, port, domain, uri, stateDir, vars, stop(), log() }`.
 */
export async function startHost({ anvil, vars = {}, stateDir, clockOffsetSeconds, args = [] } = {}) {
  if (!fs.existsSync(HOST_BIN)) {
    throw new Error(`${HOST_BIN} does not exist: build it first (scripts/test does: cargo build --release)`);
  }
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const ownState = !stateDir;
    const dir = stateDir ?? tempDir('state');
    const domain = `127.0.0.1:${port}`;
    const all = {
      siwe_domain: domain,
      siwe_uri: `http://${domain}`,
      chain_rpc_urls: anvil ? `${CHAIN_ID}=${anvil.url}` : undefined,
      chain_rpc_http_host: anvil ? anvil.hostPort : undefined,
      session_secret: randomSecret(),
      playback_secret: randomSecret(),
      events_secret: randomSecret(),
      rate_limit_nonce_per_ip: '10000/60',
      rate_limit_verify_per_ip: '10000/60',
      rate_limit_verify_per_address: '10000/60',
      ...(typeof vars === 'function' ? vars({ port, domain }) : vars),
    };
    // The tests' configuration is exactly this: nothing from the caller's environment.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SPIN_VARIABLE_')));
    for (const [name, value] of Object.entries(all)) {
      if (value !== undefined) env[`SPIN_VARIABLE_${name.toUpperCase()}`] = String(value);
    }
    if (clockOffsetSeconds) {
      const lib = libfaketime();
      if (!lib) throw new Error('libfaketime is not installed (Debian package `faketime`; scripts/test installs it)');
      env.LD_PRELOAD = lib;
      env.FAKETIME = `${clockOffsetSeconds >= 0 ? '+' : ''}${clockOffsetSeconds}s`;
      env.FAKETIME_DONT_FAKE_MONOTONIC = '1';
    }
    const logPath = path.join(dir, `host-${port}.log`);
    const logFd = fs.openSync(logPath, 'a');
    const child = track(
      spawn(
        HOST_BIN,
        ['up', '--from', MANIFEST, '--listen', `127.0.0.1:${port}`, '--state-dir', dir, ...args],
        { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', logFd] },
      ),
    );
    fs.closeSync(logFd);
    const log = () => (fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8') : '');

    const stop = async () => {
      await stopChild(child);
      if (ownState && !KEEP_STATE) fs.rmSync(dir, { recursive: true, force: true });
    };

    try {
      const first = await firstLine(child, 20_000);
      if (!first.startsWith('Serving http://')) throw new Error(`unexpected first line: ${first}`);
      child.stdout.resume(); // keep draining the route list and anything after it
      return { base: `http://${domain}`, port, domain, uri: `http://${domain}`, stateDir: dir, vars: all, stop, log };
    } catch (e) {
      const text = log();
      await stop();
      lastError = new Error(`the host did not start on port ${port}: ${e.message}\n${text}`);
      if (!/address already in use|Address in use|AddrInUse/i.test(text)) break;
    }
  }
  throw lastError;
}

export function firstLine(child, timeoutMs) {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => done(new Error(`no "Serving" line within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl >= 0) done(null, buffered.slice(0, nl));
    };
    const onExit = (code, signal) => done(new Error(`it exited (${signal ?? `code ${code}`})`));
    function done(err, line) {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(line);
    }
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
}

/**
 * Starts anvil and a host configured for it; `stop()` stops both. For a file's `before`/`after`.
 */
export async function startStack({ vars, clockOffsetSeconds } = {}) {
  const anvil = await startAnvil();
  try {
    const host = await startHost({ anvil, vars, clockOffsetSeconds });
    return {
      anvil,
      host,
      stop: async () => {
        await host.stop();
        await anvil.stop();
      },
    };
  } catch (e) {
    await anvil.stop();
    throw e;
  }
}
