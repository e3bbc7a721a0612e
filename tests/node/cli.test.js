// The `streamgate` command-line client (cli/, docs/cli.md) against the whole real stack: anvil
// with an ERC-721, Redis, the host running spin.toml, the tus origin and the ffmpeg worker
// (lib/playback.js). The CLI signs in with keystores written by independent tools (Python
// eth-account, ethers v6) and with a private key from the environment; it uploads a clip that
// ffmpeg made, is SIGKILLed mid-upload and resumes from the origin's offset when run again,
// follows the transcode to `ready`, edits the gate, prints playback URLs that ffprobe reads,
// deletes, and signs out. Its progress bars are read in a pseudo-terminal (`script`), its
// `--json` output is parsed, and its exit codes are the documented ones.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';

import { encryptKeystoreJson, Wallet } from 'ethers';

import { api, newKey, PYTHON } from './lib/auth.js';
import { CHAIN_ID, REPO_ROOT, sleep, tempDir } from './lib/fixtures.js';
import { FFPROBE, makeTestVideo, tusHead } from './lib/pipeline.js';
import { startPlaybackStack } from './lib/playback.js';

const run = promisify(execFile);
const CLI = process.env.STREAMGATE_CLI_BIN ?? path.join(REPO_ROOT, 'target/release/streamgate');
const EXIT = { ok: 0, usage: 2, notSignedIn: 3, notFound: 4, forbidden: 5, api: 6, network: 7, wallet: 8, transcodeFailed: 9 };

let stack;
let scratch;
let clip;
/** The creator's config dir (keystore by eth-account) and the stranger's (keystore by ethers). */
let creatorDir;
let strangerDir;
let creatorAddress;
let strangerAddress;
let videoId;

before(async () => {
  assert.ok(fs.existsSync(CLI), `${CLI} does not exist: cargo build --release -p streamgate-cli`);
  scratch = tempDir('cli');
  [stack, clip] = await Promise.all([
    startPlaybackStack(),
    // 640x360 keeps the ladder short (360p + 240p); 10 s of testsrc2 is ~1 MB, enough to stop
    // the CLI halfway at a limited rate.
    makeTestVideo(scratch, { seconds: 10, size: '640x360', rate: 25, name: 'clip.mp4' }),
  ]);
  creatorDir = path.join(scratch, 'creator-config');
  strangerDir = path.join(scratch, 'stranger-config');
});

after(async () => {
  await stack?.stop();
});

/** The CLI's environment: nothing of ours leaks in but what the test names. */
function cliEnv(configDir, extra = {}) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('STREAMGATE_')));
  return { ...env, STREAMGATE_CONFIG_DIR: configDir, STREAMGATE_API: stack.host.base, ...extra };
}

/** Runs the CLI to its end: `{ code, stdout, stderr, json }` (`json`: stdout parsed, or null). */
function cli(args, { configDir = creatorDir, env = {}, timeoutMs = 180_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(CLI, args, { env: cliEnv(configDir, env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let json = null;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = null;
      }
      resolve({ code, signal, stdout, stderr, json });
    });
  });
}

const show = (r) => `exit ${r.code} ${r.signal ?? ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}\n${stack.logs()}`;

function assertExit(r, code, errorCode) {
  assert.equal(r.code, code, `expected exit ${code}: ${show(r)}`);
  if (errorCode) {
    assert.ok(r.json, `--json printed one JSON document: ${show(r)}`);
    assert.equal(r.json.code, errorCode, show(r));
    assert.equal(r.json.exit_code, code, show(r));
    assert.ok(r.json.error.length > 0, 'the error has a sentence');
    assert.match(r.stderr, /^error: /m, 'and people get it on stderr');
  }
}

/** A keystore written by Python eth-account (`Account.encrypt`, its default scrypt parameters). */
async function pythonKeystore(key, password, file) {
  const program = [
    'import json, os, sys',
    'from eth_account import Account',
    "ks = Account.encrypt(os.environ['KEY'], os.environ['PASSWORD'])",
    "open(sys.argv[1], 'w').write(json.dumps(ks))",
    'print(Account.from_key(os.environ["KEY"]).address)',
  ].join('\n');
  const { stdout } = await run(PYTHON, ['-c', program, file], {
    env: { ...process.env, KEY: key, PASSWORD: password },
    timeout: 120_000,
  });
  return stdout.trim();
}

test('without a session: exit 3 and a sentence saying to log in', async () => {
  const who = await cli(['whoami', '--json']);
  assertExit(who, EXIT.notSignedIn, 'not_signed_in');
  assert.match(who.stderr, /streamgate login/);
  const up = await cli(['upload', clip, '--title', 'x', '--json']);
  assertExit(up, EXIT.notSignedIn, 'not_signed_in');
  const nothing = await cli(['ls', '--json']);
  assertExit(nothing, EXIT.ok);
  assert.deepEqual(nothing.json.items, [], 'anonymous: no ready video yet');
});

test('login with an eth-account keystore: a wrong password is exit 8, the right one signs in; the session file is 0600', async () => {
  const key = newKey();
  const keystore = path.join(scratch, 'creator.json');
  creatorAddress = await pythonKeystore(key, 'correct horse', keystore);

  const wrong = await cli(['login', '--keystore', keystore, '--json'], {
    env: { STREAMGATE_KEYSTORE_PASSWORD: 'battery staple' },
  });
  assertExit(wrong, EXIT.wallet, 'wrong_password');
  assert.match(wrong.stderr, /wrong password for the keystore/);
  assert.equal(fs.existsSync(path.join(creatorDir, 'sessions.json')), false, 'nothing saved');

  // Not on a terminal and no password in the environment: told how to give one, not hung.
  const none = await cli(['login', '--keystore', keystore, '--json']);
  assertExit(none, EXIT.wallet, 'password_required');

  const ok = await cli(['login', '--keystore', keystore, '--json'], {
    env: { STREAMGATE_KEYSTORE_PASSWORD: 'correct horse' },
  });
  assertExit(ok, EXIT.ok);
  assert.equal(ok.json.address, creatorAddress, 'signed in as the keystore’s address');
  assert.equal(ok.json.api, stack.host.base);

  const file = path.join(creatorDir, 'sessions.json');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'the session file is private');
  const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
  const token = saved.sessions[stack.host.base].token;
  const me = await api(stack.host.base, 'GET', '/api/v1/auth/me', { token });
  assert.equal(me.status, 200, me.text);
  assert.equal(me.json.address, creatorAddress, 'the API knows the saved session as that wallet');

  const who = await cli(['whoami', '--json']);
  assertExit(who, EXIT.ok);
  assert.equal(who.json.address, creatorAddress);
});

test('login with an ethers v6 keystore (its "Crypto" spelling) as a second wallet', async () => {
  const wallet = new Wallet(newKey());
  // A lighter scrypt than ethers' default: the format is the point here, not the cost.
  const json = await encryptKeystoreJson(wallet, 'hunter2', { scrypt: { N: 1 << 14 } });
  assert.ok(JSON.parse(json).Crypto, 'ethers writes `Crypto`');
  const keystore = path.join(scratch, 'stranger.json');
  fs.writeFileSync(keystore, json);
  const ok = await cli(['login', '--keystore', keystore, '--json'], {
    configDir: strangerDir,
    env: { STREAMGATE_KEYSTORE_PASSWORD: 'hunter2' },
  });
  assertExit(ok, EXIT.ok);
  strangerAddress = ok.json.address;
  assert.equal(strangerAddress, wallet.address);
});

test('upload: killed mid-upload, run again it resumes from the origin’s offset and follows the transcode to ready', async () => {
  const size = fs.statSync(clip).size;
  const rule = `${CHAIN_ID}:${stack.nft}:erc721`;
  const args = ['upload', clip, '--title', 'CLI clip', '--description', 'made by ffmpeg', '--gate', rule, '--json'];
  const first = spawn(CLI, [...args, '--limit-rate', '96k'], { env: cliEnv(creatorDir), stdio: 'ignore' });
  const firstExit = new Promise((resolve) => first.on('close', (code, signal) => resolve({ code, signal })));

  // The remembered upload URL, then bytes arriving in the origin's `.part` file (read on disk:
  // the origin serialises a video's requests, so a HEAD would wait for the PATCH in flight).
  const uploadsFile = path.join(creatorDir, 'uploads.json');
  let pending;
  let part;
  const deadline = Date.now() + 60_000;
  for (;;) {
    assert.ok(Date.now() < deadline, `no upload under way after 60 s\n${stack.logs()}`);
    if (!pending?.upload_url && fs.existsSync(uploadsFile)) {
      pending = Object.values(JSON.parse(fs.readFileSync(uploadsFile, 'utf8')))[0];
      if (pending?.upload_url) {
        const [, video, upload] = new URL(pending.upload_url).pathname.split('/').filter(Boolean);
        part = path.join(stack.mediaDir, 'uploads', video, `${upload}.part`);
      }
    }
    if (part && fs.existsSync(part) && fs.statSync(part).size > 64 * 1024) break;
    await sleep(50);
  }
  assert.equal(fs.statSync(uploadsFile).mode & 0o777, 0o600, 'upload URLs (with their tokens) are private');
  first.kill('SIGKILL');
  const killed = await firstExit;
  assert.equal(killed.signal, 'SIGKILL', 'the first run was killed, it did not finish');
  await sleep(300);
  const kept = await tusHead(pending.upload_url);
  assert.equal(kept.length, size);
  assert.ok(kept.offset > 0 && kept.offset < size, `the origin kept part of the file: ${kept.offset}/${size}`);

  const second = await cli(args);
  assertExit(second, EXIT.ok);
  videoId = second.json.id;
  assert.equal(videoId, pending.video_id, 'the same video: no second creation');
  assert.equal(second.json.resumed, true);
  assert.equal(second.json.resumed_from, kept.offset, 'resumed at the origin’s offset, not at 0');
  assert.equal(second.json.status, 'ready', show(second));
  assert.deepEqual(second.json.renditions, ['360p', '240p']);
  assert.equal(second.json.watch_url, `${stack.host.base}/watch/${videoId}`);
  assert.match(second.stderr, /resuming the upload .* at byte \d+ of \d+/);
  assert.deepEqual(JSON.parse(fs.readFileSync(uploadsFile, 'utf8')), {}, 'a finished upload is forgotten');
  const done = await tusHead(pending.upload_url);
  assert.equal(done.offset, size, 'the origin holds the whole file');

  const mine = await cli(['ls', '--json']);
  assertExit(mine, EXIT.ok);
  assert.deepEqual(mine.json.items.map((v) => v.id), [videoId], 'one video, not two');

  const shown = await cli(['show', videoId, '--json']);
  assertExit(shown, EXIT.ok);
  assert.equal(shown.json.title, 'CLI clip');
  assert.equal(shown.json.description, 'made by ffmpeg');
  assert.deepEqual(shown.json.gate, [{ chain_id: CHAIN_ID, contract: stack.nft, standard: 'erc721', min_balance: '1' }]);
});

test('gate set: a bad rule is exit 2, a stranger is exit 5, the owner’s change is what the API answers', async () => {
  const bad = await cli(['gate', 'set', videoId, `${CHAIN_ID}:nothex:erc721`, '--json']);
  assertExit(bad, EXIT.usage, 'usage');
  const refused = await cli(['gate', 'set', videoId, '--public', '--json'], { configDir: strangerDir });
  assertExit(refused, EXIT.forbidden, 'not_owner');
  assert.match(refused.stderr, /only the video's owner/);
  const otherChain = await cli(['gate', 'set', videoId, `999:${stack.nft}:erc721`, '--json']);
  assertExit(otherChain, EXIT.api, 'chain_not_supported');
  const notChecksummed = await cli(['gate', 'set', videoId, `${CHAIN_ID}:${stack.nft.toLowerCase()}:erc721`, '--json']);
  assertExit(notChecksummed, EXIT.api, 'invalid_gate');
  assert.match(notChecksummed.stderr, /chain:contract:standard/, 'the hint shows the rule form');

  const set = await cli(['gate', 'set', videoId, `${CHAIN_ID}:${stack.nft}:erc721:1`, `${CHAIN_ID}:${stack.nft}:erc20::5`, '--json']);
  assertExit(set, EXIT.ok);
  const expected = [
    { chain_id: CHAIN_ID, contract: stack.nft, standard: 'erc721', token_id: '1', min_balance: '1' },
    { chain_id: CHAIN_ID, contract: stack.nft, standard: 'erc20', min_balance: '5' },
  ];
  assert.deepEqual(set.json.gate, expected);
  const read = await api(stack.host.base, 'GET', `/api/v1/videos/${videoId}`);
  assert.deepEqual(read.json.gate, expected, 'anyone reading the video sees the new gate');
});

test('play: signed HLS and DASH URLs that ffprobe reads; a non-holder is exit 5; --open hands the URL to a player', async () => {
  const urls = await cli(['play', videoId, '--json']);
  assertExit(urls, EXIT.ok);
  for (const url of [urls.json.hls, urls.json.dash]) {
    assert.match(url, /hdnts=/);
    const { stdout } = await run(
      FFPROBE,
      ['-v', 'error', '-protocol_whitelist', 'file,http,tcp,crypto', '-print_format', 'json', '-show_streams', '-show_format', url],
      { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
    );
    const probe = JSON.parse(stdout);
    const video = probe.streams.filter((s) => s.codec_type === 'video');
    assert.ok(video.some((s) => s.codec_name === 'h264' && s.width === 640 && s.height === 360), `${url}: ${stdout}`);
    assert.ok(Math.abs(Number(probe.format.duration) - 10) < 0.6, `${url}: 10 s, ffprobe says ${probe.format.duration}`);
  }

  const stranger = await cli(['play', videoId, '--json'], { configDir: strangerDir });
  assertExit(stranger, EXIT.forbidden, 'not_token_holder');
  assert.match(stranger.stderr, /does not hold/);

  // The holder of token 1 signs in with a key from the environment and plays it.
  const holderDir = path.join(scratch, 'holder-config');
  const login = await cli(['login', '--json'], { configDir: holderDir, env: { STREAMGATE_PRIVATE_KEY: stack.holder.key } });
  assertExit(login, EXIT.ok);
  assert.equal(login.json.address, stack.holder.address);
  // ffprobe as the "player": it prints the duration of what it was handed.
  const opened = await cli(['play', videoId, '--open', '--player', `${FFPROBE} -v error -show_entries format=duration -of csv=p=0`], {
    configDir: holderDir,
  });
  assertExit(opened, EXIT.ok);
  const lines = opened.stdout.trim().split('\n');
  assert.match(lines[0], /^HLS: {2}http:\/\/.*master\.m3u8\?hdnts=/);
  assert.ok(Math.abs(Number(lines.at(-1)) - 10) < 0.6, `the player read a 10 s video: ${opened.stdout}`);
});

test('on a terminal: the password prompt; both progress bars are drawn and reach 100 %; rm asks and takes "y"', async () => {
  const small = await makeTestVideo(scratch, { seconds: 3, size: '320x240', rate: 25, name: 'small.mp4' });
  const env = cliEnv(creatorDir, { COLUMNS: '120' });
  const quote = (s) => `'${s.replaceAll("'", "'\\''")}'`;
  const pty = (command, input) =>
    new Promise((resolve, reject) => {
      const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (input && out.includes(input.after)) {
          // A prompt is printed before the terminal's echo is turned off: give it that moment.
          const { send } = input;
          setTimeout(() => child.stdin.write(send), 500);
          input = null;
        }
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });
  // The keystore's password typed at the prompt (read from the terminal, not echoed).
  const keystore = path.join(scratch, 'creator.json');
  const login = await pty(`${quote(CLI)} login --keystore ${quote(keystore)}`, { after: 'Password for', send: 'correct horse\n' });
  assert.equal(login.code, 0, login.out);
  assert.ok(!login.out.includes('correct horse'), 'the password is not echoed');
  assert.match(login.out, new RegExp(`Signed in to .* as ${creatorAddress}`));

  const up = await pty(`${quote(CLI)} upload ${quote(small)} --title 'On a terminal' --limit-rate 64k`);
  const text = up.out.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '\n');
  assert.equal(up.code, 0, text);
  const uploadPercents = [...text.matchAll(/upload +\[[=> ]+\] +(\d+)% [\d.]+ [KMG]?i?B\/[\d.]+ [KMG]?i?B/g)].map((m) => Number(m[1]));
  assert.ok(uploadPercents.some((p) => p > 0 && p < 100), `the upload bar was drawn part way: ${text}`);
  assert.equal(uploadPercents.at(-1), 100, `the upload bar ends at 100%: ${text}`);
  assert.match(text, /upload .*B\/s/, 'it shows the rate');
  assert.match(text, /ready +\[=+\] 100%/, `the transcode bar ends ready at 100%: ${text}`);
  const id = text.match(/ready: .*\/watch\/([A-Za-z0-9_-]+)/)?.[1];
  assert.ok(id, `the watch URL is printed: ${text}`);

  // Not on a terminal: rm without --yes refuses (exit 2) and deletes nothing.
  const refused = await cli(['rm', id, '--json']);
  assertExit(refused, EXIT.usage, 'usage');
  assert.equal((await cli(['show', id, '--json'])).code, EXIT.ok);

  const rm = await pty(`${quote(CLI)} rm ${quote(id)}`, { after: '[y/N]', send: 'y\n' });
  assert.equal(rm.code, 0, rm.out);
  assert.match(rm.out, /Delete "On a terminal"/);
  assert.match(rm.out, /deleted/);
  const gone = await cli(['show', id, '--json']);
  assertExit(gone, EXIT.notFound, 'not_found');
});

test('a file that is not video: the CLI follows it to failed and prints the reason (exit 9)', async () => {
  const text = path.join(scratch, 'notes.txt');
  fs.writeFileSync(text, 'not a video\n'.repeat(1000));
  const r = await cli(['upload', text, '--title', 'Not a video', '--json']);
  assertExit(r, EXIT.transcodeFailed);
  assert.equal(r.json.status, 'failed');
  assert.ok(r.json.reason.length > 0, 'a reason');
  assert.match(r.stderr, /failed: /);
  const rm = await cli(['rm', r.json.id, '--yes', '--json']);
  assertExit(rm, EXIT.ok);
  assert.equal(rm.json.deleted, true);
});

test('stopped while following the transcode: run again, it follows the same video and sends nothing again', async () => {
  const small = await makeTestVideo(scratch, { seconds: 2, size: '320x240', rate: 25, name: 'queued.mp4' });
  const size = fs.statSync(small).size;
  await stack.worker.stop(); // the job waits in the queue
  const args = ['upload', small, '--title', 'Queued', '--json'];
  const first = spawn(CLI, args, { env: cliEnv(creatorDir), stdio: 'ignore' });
  const firstExit = new Promise((resolve) => first.on('close', (code, signal) => resolve({ code, signal })));
  const uploadsFile = path.join(creatorDir, 'uploads.json');
  let pending;
  const deadline = Date.now() + 60_000;
  while (!pending?.completed) {
    assert.ok(Date.now() < deadline, `the upload did not complete in 60 s\n${stack.logs()}`);
    await sleep(100);
    if (fs.existsSync(uploadsFile)) pending = Object.values(JSON.parse(fs.readFileSync(uploadsFile, 'utf8')))[0];
  }
  const token = JSON.parse(fs.readFileSync(path.join(creatorDir, 'sessions.json'), 'utf8')).sessions[stack.host.base].token;
  const queued = await api(stack.host.base, 'GET', `/api/v1/videos/${pending.video_id}`, { token });
  assert.equal(queued.json.status, 'queued', 'no worker: the video waits');
  first.kill('SIGKILL');
  assert.equal((await firstExit).signal, 'SIGKILL');

  stack.worker = await stack.startWorker();
  const second = await cli(args);
  assertExit(second, EXIT.ok);
  assert.equal(second.json.id, pending.video_id, 'the same video');
  assert.equal(second.json.resumed_from, size, 'nothing left to send');
  assert.equal(second.json.status, 'ready');
  assert.match(second.stderr, /uploaded to video .* already: following its transcode/);
  assert.deepEqual(JSON.parse(fs.readFileSync(uploadsFile, 'utf8')), {}, 'forgotten once ready');
  const mine = await cli(['ls', '--json']);
  assert.equal(mine.json.items.filter((v) => v.title === 'Queued').length, 1, 'one video, not two');
  assertExit(await cli(['rm', pending.video_id, '--yes', '--json']), EXIT.ok);
});

test('rm --yes, then show is exit 4; logout revokes the session on the server; then exit 3', async () => {
  const rm = await cli(['rm', videoId, '--yes', '--json']);
  assertExit(rm, EXIT.ok);
  assertExit(await cli(['show', videoId, '--json']), EXIT.notFound, 'not_found');
  assertExit(await cli(['rm', videoId, '--yes', '--json']), EXIT.notFound, 'not_found');

  const file = path.join(creatorDir, 'sessions.json');
  const token = JSON.parse(fs.readFileSync(file, 'utf8')).sessions[stack.host.base].token;
  const out = await cli(['logout', '--json']);
  assertExit(out, EXIT.ok);
  assert.equal(out.json.revoked, true);
  const me = await api(stack.host.base, 'GET', '/api/v1/auth/me', { token });
  assert.equal(me.status, 401);
  assert.equal(me.json.code, 'token_revoked', 'the old token no longer works anywhere');
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).sessions[stack.host.base], undefined, 'and it is forgotten');
  assertExit(await cli(['whoami', '--json']), EXIT.notSignedIn, 'not_signed_in');
  assertExit(await cli(['logout', '--json']), EXIT.notSignedIn, 'not_signed_in');
});

test('a revoked session kept on disk: the API’s token_revoked is exit 3 with a hint; an unreachable API is exit 7', async () => {
  const file = path.join(strangerDir, 'sessions.json');
  const token = JSON.parse(fs.readFileSync(file, 'utf8')).sessions[stack.host.base].token;
  const res = await api(stack.host.base, 'POST', '/api/v1/auth/logout', { token });
  assert.equal(res.status, 204);
  const r = await cli(['whoami', '--json'], { configDir: strangerDir });
  assertExit(r, EXIT.notSignedIn, 'token_revoked');
  assert.match(r.stderr, /streamgate login/);

  const down = await cli(['ls', '--json', '--api', 'http://127.0.0.1:9'], { configDir: strangerDir });
  assertExit(down, EXIT.network, 'network_error');
});
