// The viewer's half in a real browser: Debian's chromium, headless, driven by playwright-core
// (no browser is downloaded), plays the signed URLs of a gated video through the whole real
// stack (lib/playback.js: anvil, host, redis, `native-transcoder` origin + worker). A small page
// served from a local node http server (its own origin, so every request to the host and the
// origin is cross-origin and needs their CORS headers) loads hls.js and dash.js from
// node_modules; hls.js plays A's signed HLS URL and dash.js A's signed DASH URL, muted, until
// `video.currentTime` passes 1 s, with no fatal player error, no refused request, and both the
// video and the separate audio track fetched from the origin and decoded. Both players run with
// their default settings.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

import { NODE_DIR, freePort, tempDir } from './lib/fixtures.js';
import { playback, startPlaybackStack, uploadReadyVideo } from './lib/playback.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const PLAY_TIMEOUT_MS = 20_000;

const LIBS = {
  '/hls.js': path.join(NODE_DIR, 'node_modules/hls.js/dist/hls.min.js'),
  '/dash.js': path.join(NODE_DIR, 'node_modules/dashjs/dist/modern/umd/dash.all.min.js'),
};

// The page: one muted <video>, both libraries, and two entry points that record what the
// players report (window.sg) instead of throwing, so the test can show it on failure.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>StreamGate playback</title>
<script src="/hls.js"></script>
<script src="/dash.js"></script>
</head><body>
<video id="v" muted playsinline width="640" height="360"></video>
<script>
  window.sg = { errors: [], fatal: null, events: [] };
  const video = document.getElementById('v');
  video.muted = true;
  for (const ev of ['loadedmetadata', 'canplay', 'playing', 'waiting', 'ended']) {
    video.addEventListener(ev, () => window.sg.events.push(ev + '@' + video.currentTime.toFixed(2)));
  }
  video.addEventListener('error', () => {
    const e = video.error;
    window.sg.fatal = 'video element error ' + (e && e.code) + ': ' + (e && e.message);
  });
  window.startHls = (url) => {
    const hls = new Hls({ enableWorker: true });
    hls.on(Hls.Events.ERROR, (_, d) => {
      const msg = d.type + '/' + d.details + (d.fatal ? ' (fatal)' : '') +
        (d.response ? ' status ' + d.response.code : '') + (d.url ? ' ' + d.url : '') +
        (d.error ? ' ' + d.error.message : '') + (d.reason ? ' ' + d.reason : '');
      window.sg.errors.push(msg);
      if (d.fatal) window.sg.fatal = msg;
    });
    hls.on(Hls.Events.MANIFEST_PARSED, (_, d) => window.sg.events.push('manifest:' + d.levels.length + ' levels'));
    hls.loadSource(url);
    hls.attachMedia(video);
    video.play().catch((e) => window.sg.errors.push('play(): ' + e.message));
    window.player = hls;
  };
  window.startDash = (url, streaming) => {
    const player = dashjs.MediaPlayer().create();
    player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING }, streaming: streaming || {} });
    player.on(dashjs.MediaPlayer.events.ERROR, (e) => {
      const err = e.error || {};
      const msg = 'dash.js error ' + err.code + ': ' + err.message +
        (err.data ? ' ' + JSON.stringify(err.data).slice(0, 300) : '');
      window.sg.errors.push(msg);
      window.sg.fatal = msg; // dash.js only sends ERROR for what stops playback
    });
    player.on(dashjs.MediaPlayer.events.PLAYBACK_ERROR, (e) => {
      const msg = 'dash.js playback error: ' + JSON.stringify(e.error || e).slice(0, 300);
      window.sg.errors.push(msg);
      window.sg.fatal = msg;
    });
    player.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, () => window.sg.events.push('stream initialized'));
    player.initialize(video, url, true);
    window.player = player;
  };
</script>
</body></html>`;

let stack;
let video;
let urls; // A's playback answer
let server;
let pageBase;
let context;

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} (Debian's chromium; scripts/lib.sh installs it)`);
  for (const file of Object.values(LIBS)) assert.ok(fs.existsSync(file), `${file} (npm ci)`);

  stack = await startPlaybackStack();
  video = await uploadReadyVideo(stack);
  const res = await playback(stack, video.id, stack.holder);
  assert.equal(res.status, 200, `A's playback: ${res.status} ${res.text}`);
  urls = res.json;

  server = http.createServer((req, res) => {
    const file = LIBS[req.url];
    if (file) {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      fs.createReadStream(file).pipe(res);
    } else if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
    } else if (req.url === '/favicon.ico') {
      res.writeHead(204).end();
    } else {
      res.writeHead(404).end();
    }
  });
  const port = await freePort();
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  pageBase = `http://127.0.0.1:${port}/`;

  context = await chromium.launchPersistentContext(tempDir('chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
});

after(async () => {
  await context?.close().catch(() => {});
  await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
  await stack?.stop();
});

/**
 * Opens the page, calls `start` (startHls / startDash) with `url`, and waits (bounded) until the
 * video plays past 1 s or the player reports a fatal error. Returns what happened, with every
 * response from the host and the origin and the browser console, for assertions and messages.
 */
async function playInBrowser(start, url, options) {
  const page = await context.newPage();
  const responses = [];
  const consoleLines = [];
  page.on('response', (r) => {
    if (!r.url().startsWith(pageBase)) responses.push({ url: r.url(), status: r.status() });
  });
  page.on('requestfailed', (r) => responses.push({ url: r.url(), status: `failed: ${r.failure()?.errorText}` }));
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  try {
    await page.goto(pageBase);
    const support = await page.evaluate(() => ({
      hls: Hls.isSupported(),
      h264aac: MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001e,mp4a.40.2"'),
    }));
    await page.evaluate(([fn, u, o]) => window[fn](u, o), [start, url, options ?? null]);
    const started = Date.now();
    let timedOut = false;
    try {
      await page.waitForFunction(
        () => window.sg.fatal !== null || document.getElementById('v').currentTime > 1,
        null,
        { timeout: PLAY_TIMEOUT_MS, polling: 100 },
      );
    } catch {
      timedOut = true;
    }
    const state = await page.evaluate(() => {
      const v = document.getElementById('v');
      return {
        currentTime: v.currentTime,
        paused: v.paused,
        muted: v.muted,
        readyState: v.readyState,
        videoWidth: v.videoWidth,
        videoHeight: v.videoHeight,
        // Chromium's counters of bytes its decoders took: audio really played, not just video.
        audioDecodedBytes: v.webkitAudioDecodedByteCount,
        videoDecodedBytes: v.webkitVideoDecodedByteCount,
        ...window.sg,
      };
    });
    const report = () =>
      JSON.stringify({ support, timedOut, elapsedMs: Date.now() - started, state }, null, 1) +
      `\nresponses:\n${responses.map((r) => `  ${r.status} ${r.url}`).join('\n')}` +
      `\nconsole:\n${consoleLines.slice(-40).join('\n')}`;
    return { support, timedOut, state, responses, report };
  } finally {
    await page.close();
  }
}

/** The checks both players share. */
function assertPlayed(result, what) {
  const { state, responses, report } = result;
  assert.equal(state.fatal, null, `${what}: no fatal player error\n${report()}`);
  assert.ok(state.currentTime > 1, `${what}: currentTime ${state.currentTime} > 1 within ${PLAY_TIMEOUT_MS} ms\n${report()}`);
  assert.equal(state.muted, true, 'muted');
  assert.ok(state.videoWidth > 0 && state.videoHeight > 0, `${what}: decoded frames have a size\n${report()}`);
  const refused = responses.filter((r) => r.status !== 200 && r.status !== 206);
  assert.deepEqual(refused, [], `${what}: every request to the host and the origin succeeded\n${report()}`);
  const segments = responses.filter((r) => r.url.startsWith(`${stack.origin.base}/media/${video.id}/`) && /\.m4s\?/.test(r.url));
  assert.ok(segments.length > 0, `${what}: segments came from the origin\n${report()}`);
  const audio = segments.filter((r) => r.url.startsWith(`${stack.origin.base}/media/${video.id}/audio/`));
  assert.ok(audio.length > 0 && audio.length < segments.length, `${what}: audio and video segments came from the origin\n${report()}`);
  assert.ok(state.audioDecodedBytes > 0, `${what}: the audio track was decoded\n${report()}`);
  assert.ok(state.videoDecodedBytes > 0, `${what}: the video was decoded\n${report()}`);
  for (const r of segments) assert.ok(r.url.includes('hdnts='), `${what}: segment URL carries the token: ${r.url}`);
}

test('hls.js in headless chromium plays the signed HLS URL: currentTime advances past 1 s', async () => {
  const result = await playInBrowser('startHls', urls.hls);
  assert.equal(result.support.hls, true, `hls.js supported (MSE)\n${result.report()}`);
  assert.equal(result.support.h264aac, true, `chromium's MSE takes H.264 + AAC\n${result.report()}`);
  assertPlayed(result, 'hls.js');
  assert.ok(
    result.responses.some((r) => r.url.startsWith(`${stack.host.base}/stream/${video.id}/`) && /\.m3u8\?/.test(r.url) && r.status === 200),
    `hls.js read the playlists from the host\n${result.report()}`,
  );
});

// dash.js 5 checks each Representation's codecs with navigator.mediaCapabilities, one codec per
// contentType: the MPD's video and audio AdaptationSets (audio is its own CMAF track) are what
// it accepts with its default settings.
test('dash.js (default settings) in headless chromium plays the signed DASH URL: currentTime advances past 1 s', async () => {
  const result = await playInBrowser('startDash', urls.dash);
  assertPlayed(result, 'dash.js');
  assert.ok(
    result.responses.some((r) => r.url.startsWith(`${stack.host.base}/stream/${video.id}/`) && /\.mpd\?/.test(r.url) && r.status === 200),
    `dash.js read the MPD from the host\n${result.report()}`,
  );
});
