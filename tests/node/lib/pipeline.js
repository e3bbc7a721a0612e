// Fixtures for the creator-flow tests: a private redis-server, the native side
// (`native-transcoder serve`: the tus upload origin; `native-transcoder work`: the ffmpeg
// worker), test media made with the real ffmpeg, a real tus client (tus-js-client), ffprobe,
// and signed events built here with node:crypto from docs/pipeline.md alone.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

import * as tus from 'tus-js-client';

import {
  REPO_ROOT,
  exited,
  firstLine,
  freePort,
  randomSecret,
  sleep,
  startAnvil,
  startHost,
  stopChild,
  tempDir,
  track,
} from './fixtures.js';

const run = promisify(execFile);

export const NATIVE_BIN =
  process.env.STREAMGATE_NATIVE_BIN ?? path.join(REPO_ROOT, 'target/release/native-transcoder');
export const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';
export const FFMPEG = process.env.FFMPEG ?? 'ffmpeg';
export const FFPROBE = process.env.FFPROBE ?? 'ffprobe';

/** The environment of a child: ours without any StreamGate or Spin configuration, plus `extra`. */
function cleanEnv(extra = {}) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('SPIN_VARIABLE_') && !k.startsWith('STREAMGATE_')),
  );
  return { ...env, ...extra };
}

// ---- a minimal RESP client (enough to inspect the job stream) ----

function encodeCommand(args) {
  let out = `*${args.length}\r\n`;
  for (const a of args) {
    const s = Buffer.from(String(a));
    out += `$${s.length}\r\n${s.toString('binary')}\r\n`;
  }
  return Buffer.from(out, 'binary');
}

/** Parses one RESP reply from `buf` at `pos`; returns [value, nextPos] or null if incomplete. */
function parseReply(buf, pos = 0) {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[pos]);
  const line = buf.toString('utf8', pos + 1, eol);
  const next = eol + 2;
  switch (type) {
    case '+':
      return [line, next];
    case '-':
      return [new Error(line), next];
    case ':':
      return [Number(line), next];
    case '$': {
      const n = Number(line);
      if (n < 0) return [null, next];
      if (buf.length < next + n + 2) return null;
      return [buf.toString('utf8', next, next + n), next + n + 2];
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return [null, next];
      const items = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, p);
        if (!r) return null;
        items.push(r[0]);
        p = r[1];
      }
      return [items, p];
    }
    default:
      throw new Error(`unexpected RESP type ${JSON.stringify(type)}`);
  }
}

/**
 * One command on a fresh connection to 127.0.0.1:`port`, first authenticated as `auth`
 * (`{ user, password }`) when given; resolves with the reply (a Redis error, of the AUTH or of
 * the command, rejects).
 */
export function redisCommand(port, auth, ...args) {
  const commands = auth ? [['AUTH', auth.user, auth.password], args] : [args];
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const replies = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis ${args[0]}: no answer within 5 s`));
    }, 5_000);
    socket.on('connect', () => socket.write(Buffer.concat(commands.map(encodeCommand))));
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const r = parseReply(buf);
        if (!r) return;
        replies.push(r[0]);
        buf = buf.subarray(r[1]);
        if (replies.length === commands.length) break;
      }
      clearTimeout(timer);
      socket.end();
      const failed = replies.findIndex((reply) => reply instanceof Error);
      if (failed >= 0) reject(new Error(`redis ${commands[failed][0]}: ${replies[failed].message}`));
      else resolve(replies.at(-1));
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

// ---- redis-server ----

/** The Redis users of infra/redis/users.acl.template, as `scripts/up` runs it. */
export const REDIS_USERS = { admin: 'streamgate-admin', app: 'streamgate-app', worker: 'streamgate-worker' };

/**
 * The ACL file for `passwords` (`{ admin, app, worker }`): the repository's template with its
 * comment lines dropped and each `@<USER>_PASSWORD_SHA256@` replaced, as scripts/lib.sh renders it.
 */
export function renderRedisAcl(passwords) {
  const template = fs.readFileSync(path.join(REPO_ROOT, 'infra/redis/users.acl.template'), 'utf8');
  const sha256 = (s) => createHash('sha256').update(s).digest('hex');
  return template
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) =>
      line
        .replace('@ADMIN_PASSWORD_SHA256@', sha256(passwords.admin))
        .replace('@APP_PASSWORD_SHA256@', sha256(passwords.app))
        .replace('@WORKER_PASSWORD_SHA256@', sha256(passwords.worker)),
    )
    .join('\n')
    .concat('\n');
}

/**
 * A private redis-server on a free port, no persistence, data in a temp dir, with the users of
 * infra/redis/users.acl.template and fresh passwords (the default user is off). `appUrl` and
 * `workerUrl` carry the app's and the worker's credentials; `hostVars` are the Spin variables
 * that point the app at it (`redis_address`, `redis_host`); `command(...)` runs as the admin.
 */
export async function startRedis() {
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const dir = tempDir('redis');
    const passwords = { admin: randomSecret(), app: randomSecret(), worker: randomSecret() };
    const aclFile = path.join(dir, 'users.acl');
    fs.writeFileSync(aclFile, renderRedisAcl(passwords), { mode: 0o600 });
    const child = track(
      spawn(
        REDIS_SERVER,
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--aclfile', aclFile],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.once('error', (e) => (output += `\n${e.message}`));
    const admin = { user: REDIS_USERS.admin, password: passwords.admin };
    const host = `127.0.0.1:${port}`;
    const url = (who) => `redis://${REDIS_USERS[who]}:${passwords[who]}@${host}`;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !exited(child)) {
      try {
        if ((await redisCommand(port, admin, 'PING')) === 'PONG') {
          return {
            port,
            host,
            appUrl: url('app'),
            workerUrl: url('worker'),
            hostVars: { redis_address: url('app'), redis_host: host },
            command: (...args) => redisCommand(port, admin, ...args),
            stop: () => stopChild(child),
          };
        }
      } catch (e) {
        lastError = e;
      }
      await sleep(50);
    }
    await stopChild(child);
    lastError = new Error(`redis-server did not start on port ${port}: ${output.trim() || lastError?.message}`);
  }
  throw lastError;
}

// ---- the native side ----

function requireNative() {
  if (!fs.existsSync(NATIVE_BIN)) {
    throw new Error(`${NATIVE_BIN} does not exist: build it first (scripts/test does: cargo build --release)`);
  }
}

/** Spawns `native-transcoder <args>` with its log (stderr) in `logPath`; resolves at its first stdout line. */
async function spawnNative(args, { secret, playbackSecret, logPath, readyPrefix, timeoutMs = 20_000, env: extraEnv = {} }) {
  requireNative();
  const logFd = fs.openSync(logPath, 'a');
  const env = { STREAMGATE_EVENTS_SECRET: secret, RUST_LOG: process.env.RUST_LOG ?? 'info', NO_COLOR: '1', ...extraEnv };
  if (playbackSecret) env.STREAMGATE_PLAYBACK_SECRET = playbackSecret;
  const child = track(
    spawn(NATIVE_BIN, args, {
      cwd: REPO_ROOT,
      env: cleanEnv(env),
      stdio: ['ignore', 'pipe', logFd],
    }),
  );
  fs.closeSync(logFd);
  const log = () => (fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8') : '');
  try {
    const line = await firstLine(child, timeoutMs);
    if (!line.startsWith(readyPrefix)) throw new Error(`unexpected first line: ${line}`);
    child.stdout.resume();
    return { child, line, log };
  } catch (e) {
    await stopChild(child);
    throw new Error(`native-transcoder ${args[0]} did not start: ${e.message}\n${log()}`);
  }
}

/**
 * `native-transcoder serve` on `port` (the one the app's media_base_url names), its media root
 * `mediaDir`, sending events to `eventsUrl`; `playbackSecret` (the app's playback_secret) lets
 * it check signed media URLs; `extraArgs` go on its command line. Returns
 * `{ base, port, stop(), log() }`.
 */
export async function startOrigin({ port, mediaDir, eventsUrl, secret, playbackSecret, logDir, extraArgs = [], env = {} }) {
  const logPath = path.join(logDir, `origin-${port}.log`);
  const { child, line, log } = await spawnNative(
    ['serve', '--listen', `127.0.0.1:${port}`, '--media-dir', mediaDir, '--events-url', eventsUrl, ...extraArgs],
    { secret, playbackSecret, logPath, readyPrefix: 'native-transcoder origin listening on http://', env },
  );
  const base = line.slice(line.indexOf('http://')).trim();
  assert.equal(base, `http://127.0.0.1:${port}`, 'the origin listens where it was told');
  return { base, port, stop: () => stopChild(child), log };
}

let workerCount = 0;

/**
 * `native-transcoder work` consuming `redisUrl` (the worker's credentialed URL, given in
 * STREAMGATE_REDIS_URL as scripts/up does, not on the command line). Returns
 * `{ pid, consumer, stop() (SIGTERM), kill() (SIGKILL, resolves once it is gone), log(), running }`.
 */
export async function startWorker({
  mediaDir,
  eventsUrl,
  redisUrl,
  secret,
  logDir,
  claimTimeoutMs = 2_000,
  preset = 'ultrafast',
  extraArgs = [],
}) {
  const consumer = `test-worker-${process.pid}-${++workerCount}`;
  const logPath = path.join(logDir, `${consumer}.log`);
  const { child, log } = await spawnNative(
    [
      'work',
      '--media-dir',
      mediaDir,
      '--events-url',
      eventsUrl,
      '--consumer',
      consumer,
      '--claim-timeout-ms',
      String(claimTimeoutMs),
      '--shutdown-grace-secs',
      '5',
      '--preset',
      preset,
      ...extraArgs,
    ],
    { secret, logPath, readyPrefix: 'native-transcoder worker ready', env: { STREAMGATE_REDIS_URL: redisUrl } },
  );
  return {
    pid: child.pid,
    consumer,
    log,
    stop: () => stopChild(child, 15_000),
    kill: async () => {
      if (exited(child)) return;
      // The child is unref'd: a timer keeps the event loop alive while it dies.
      let timer;
      const gone = new Promise((resolve) => {
        child.once('exit', resolve);
        timer = setTimeout(resolve, 10_000);
      });
      child.kill('SIGKILL');
      await gone;
      clearTimeout(timer);
    },
    get running() {
      return !exited(child);
    },
  };
}

/**
 * Everything the creator flow needs, each part real and on its own free port: anvil, Redis,
 * the host (metadata + auth components) configured for them, the origin and one worker, all
 * sharing one events secret; the origin checks media tokens under the host's playback_secret.
 * `hostVars` adds or overrides the host's Spin variables, `originArgs` go on the origin's
 * command line and `originEnv` into its environment, `hostArgs` on the host's command line.
 * `stop()` stops them all.
 */
export async function startPipeline({ workerOptions = {}, hostVars = {}, originArgs = [], originEnv = {}, hostArgs = [] } = {}) {
  const parts = [];
  const stopAll = async () => {
    for (const p of parts.reverse()) await p.stop().catch(() => {});
  };
  try {
    const eventsSecret = randomSecret();
    const root = tempDir('pipeline');
    const mediaDir = path.join(root, 'media-root');
    const logDir = path.join(root, 'logs');
    fs.mkdirSync(logDir, { recursive: true });

    const anvil = await startAnvil();
    parts.push(anvil);
    const redis = await startRedis();
    parts.push(redis);
    const originPort = await freePort();
    const host = await startHost({
      anvil,
      args: hostArgs,
      // `hostVars`: more Spin variables, or a function of `{ port, domain }` returning them
      // (e.g. `stream_base_url` naming the host itself).
      vars: (where) => ({
        events_secret: eventsSecret,
        ...redis.hostVars,
        media_base_url: `http://127.0.0.1:${originPort}`,
        ...(typeof hostVars === 'function' ? hostVars(where) : hostVars),
      }),
    });
    parts.push(host);
    const eventsUrl = `${host.base}/internal/v1/events`;
    const origin = await startOrigin({
      port: originPort,
      mediaDir,
      eventsUrl,
      secret: eventsSecret,
      playbackSecret: host.vars.playback_secret,
      logDir,
      extraArgs: originArgs,
      env: originEnv,
    });
    parts.push(origin);

    const stack = {
      anvil,
      redis,
      host,
      origin,
      eventsSecret,
      eventsUrl,
      mediaDir,
      logDir,
      worker: null,
      /** Starts a worker for this stack; the caller stops it (or `stop()` does). */
      async startWorker(options = {}) {
        const worker = await startWorker({
          mediaDir,
          eventsUrl,
          redisUrl: redis.workerUrl,
          secret: eventsSecret,
          logDir,
          ...workerOptions,
          ...options,
        });
        parts.push({ stop: () => worker.stop() });
        return worker;
      },
      /** Every process's log, for a failure message. */
      logs() {
        const out = [];
        for (const f of fs.existsSync(logDir) ? fs.readdirSync(logDir) : []) {
          out.push(`--- ${f}\n${fs.readFileSync(path.join(logDir, f), 'utf8').slice(-4000)}`);
        }
        out.push(`--- host\n${host.log().slice(-4000)}`);
        return out.join('\n');
      },
      stop: stopAll,
    };
    stack.worker = await stack.startWorker();
    return stack;
  } catch (e) {
    await stopAll();
    throw e;
  }
}

// ---- test media ----

/**
 * An H.264/AAC MP4 made by ffmpeg from lavfi's testsrc2 + sine: `seconds` long, `size` pixels.
 * Returns its path.
 */
export async function makeTestVideo(dir, { seconds = 6, size = '1280x720', rate = 30, name = 'clip.mp4' } = {}) {
  const out = path.join(dir, name);
  await run(
    FFMPEG,
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-nostdin',
      '-y',
      '-f',
      'lavfi',
      '-i',
      `testsrc2=size=${size}:rate=${rate}`,
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=440:sample_rate=48000',
      '-t',
      String(seconds),
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-pix_fmt',
      'yuv420p',
      '-c:a',
      'aac',
      '-b:a',
      '96k',
      '-movflags',
      '+faststart',
      out,
    ],
    { timeout: 120_000 },
  );
  return out;
}

/** Runs ffprobe on `file`; returns its JSON (format + streams), or throws with ffprobe's complaint. */
export async function ffprobe(file) {
  const { stdout } = await run(
    FFPROBE,
    ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', file],
    { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
  );
  return JSON.parse(stdout);
}

/**
 * A CMAF media segment is not a file a player opens alone: it needs its rendition's init
 * segment in front. Probes init + segment as one fMP4 file and returns `{ streams, duration,
 * frames }`, where `duration` is the video stream's packet durations added up (a fragment's
 * container-level duration is the movie's, not the fragment's).
 */
export async function probeSegment(initPath, segmentPath, scratchDir) {
  const joined = path.join(scratchDir, `probe-${randomBytes(6).toString('hex')}.mp4`);
  fs.writeFileSync(joined, Buffer.concat([fs.readFileSync(initPath), fs.readFileSync(segmentPath)]));
  try {
    const { stdout } = await run(
      FFPROBE,
      [
        '-v',
        'error',
        '-print_format',
        'json',
        '-show_entries',
        'stream=index,codec_type,codec_name,width,height:packet=stream_index,pts_time,duration_time',
        joined,
      ],
      { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
    );
    const json = JSON.parse(stdout);
    // The segment's timing stream: its video, or its audio in an audio-only segment.
    const timed = json.streams.find((st) => st.codec_type === 'video') ?? json.streams.find((st) => st.codec_type === 'audio');
    const packets = (json.packets ?? []).filter((p) => timed && p.stream_index === timed.index);
    const duration = packets.reduce((sum, p) => sum + Number(p.duration_time ?? 0), 0);
    return { streams: json.streams, duration, frames: packets.length };
  } finally {
    fs.rmSync(joined, { force: true });
  }
}

// ---- tus (tus-js-client, as a creator's uploader uses it) ----

/**
 * Starts a tus-js-client upload of the file at `filePath` and resolves when it ends: `{ ok: true }`
 * on success, `{ ok: false, aborted: true }` if the test aborted it (`onChunk(...)` returned true
 * after a chunk was acknowledged), or `{ ok: false, error }`; `accepted` is the last offset the
 * server acknowledged. Every request the client makes is recorded in `requests`
 * (`{ method, url, offset }`). `resume: 'find'` resumes the upload that `findPreviousUploads()`
 * finds in `urlStorage` for the same file, as an uploader does after a restart.
 */
export function tusUpload(
  filePath,
  { endpoint, chunkSize, urlStorage, resume = 'find', onChunk, requests = [] },
) {
  return new Promise((resolve) => {
    let settled = false;
    let accepted = 0; // the last offset the server acknowledged to this client
    const finish = (outcome) => {
      if (!settled) {
        settled = true;
        resolve({ accepted, ...outcome, upload, requests });
      }
    };
    const upload = new tus.Upload(fs.createReadStream(filePath), {
      endpoint,
      chunkSize,
      ...(urlStorage ? { urlStorage } : {}),
      retryDelays: null, // failures are the test's to see, not the client's to hide
      metadata: { filename: path.basename(filePath), filetype: 'video/mp4' },
      onBeforeRequest(req) {
        requests.push({ method: req.getMethod(), url: req.getURL(), offset: req.getHeader('Upload-Offset') });
      },
      onChunkComplete(chunk, offset, total) {
        accepted = offset;
        if (onChunk?.(chunk, offset, total, upload)) {
          upload.abort().then(() => finish({ ok: false, aborted: true }));
        }
      },
      onSuccess: () => finish({ ok: true }),
      onError: (error) => finish({ ok: false, error }),
    });
    const start = async () => {
      if (resume === 'find') {
        const previous = await upload.findPreviousUploads();
        if (previous.length > 0) upload.resumeFromPreviousUpload(previous[0]);
      }
      upload.start();
    };
    start().catch((error) => finish({ ok: false, error }));
  });
}

/** tus HEAD on an upload URL: `{ status, offset, length }`. */
export async function tusHead(uploadUrl) {
  const res = await fetch(uploadUrl, {
    method: 'HEAD',
    headers: { 'Tus-Resumable': '1.0.0' },
    signal: AbortSignal.timeout(15_000),
  });
  return {
    status: res.status,
    offset: Number(res.headers.get('upload-offset')),
    length: Number(res.headers.get('upload-length')),
  };
}

/**
 * A PATCH whose connection drops mid-body, as on a flaky network: declares `declared` bytes at
 * `offset`, sends only `sent` of them (from the file at `filePath`), waits for the server to
 * take them in, then destroys the socket. Resolves once the socket is closed.
 */
export function cutPatch(uploadUrl, filePath, { offset, sent, declared }) {
  const data = fs.readFileSync(filePath).subarray(offset, offset + sent);
  return new Promise((resolve, reject) => {
    const req = http.request(uploadUrl, {
      method: 'PATCH',
      headers: {
        'Tus-Resumable': '1.0.0',
        'Upload-Offset': String(offset),
        'Content-Type': 'application/offset+octet-stream',
        'Content-Length': String(declared),
      },
    });
    req.on('error', () => {}); // the socket is destroyed on purpose
    req.on('response', (res) => reject(new Error(`the server answered ${res.statusCode} before the body ended`)));
    req.on('close', () => resolve());
    req.write(data, () => setTimeout(() => req.destroy(), 500));
  });
}

export { tus };

// ---- signed events (docs/pipeline.md, "Events") ----

/** key(purpose) = HMAC-SHA256(events_secret, "streamgate/<purpose>/v1"). */
export function deriveKey(secret, purpose) {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(`streamgate/${purpose}/v1`).digest();
}

/** `t=<unix>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>` */
export function signatureHeader(key, t, body) {
  return `t=${t},v1=${createHmac('sha256', key).update(`${t}.${body}`).digest('hex')}`;
}

/** POSTs the raw `body` to the events endpoint with the given signature header (none if null). */
export async function postEvent(eventsUrl, body, signature) {
  const headers = { 'content-type': 'application/json' };
  if (signature !== null) headers['StreamGate-Signature'] = signature;
  const res = await fetch(eventsUrl, { method: 'POST', headers, body, signal: AbortSignal.timeout(15_000) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, text, json };
}

// ---- files ----

/** Every entry under `dir` (relative paths, directories with a trailing "/"), sorted. */
export function listTree(dir) {
  const out = [];
  const walk = (d, prefix) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const rel = prefix + e.name;
      if (e.isDirectory()) {
        out.push(`${rel}/`);
        walk(path.join(d, e.name), `${rel}/`);
      } else {
        out.push(rel);
      }
    }
  };
  if (fs.existsSync(dir)) walk(dir, '');
  return out.sort();
}
