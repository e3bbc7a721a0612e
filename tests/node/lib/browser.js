// A real browser for the playback tests: Debian's chromium, headless, driven by playwright-core
// (no browser is downloaded), and a small page served from a local node http server (its own
// origin, so every request to the host and the origin is cross-origin and needs their CORS
// headers) that loads hls.js and dash.js from node_modules. The page records what the players
// report (window.sg) instead of throwing, so a test can show it on failure.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { NODE_DIR, freePort, tempDir } from './fixtures.js';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

const LIBS = {
  '/hls.js': path.join(NODE_DIR, 'node_modules/hls.js/dist/hls.min.js'),
  '/dash.js': path.join(NODE_DIR, 'node_modules/dashjs/dist/modern/umd/dash.all.min.js'),
};

// One muted <video>, both libraries, and two entry points. `startHls(url, config)` passes
// `config` (if any) to hls.js over its defaults.
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
  for (const ev of ['loadedmetadata', 'canplay', 'playing', 'pause', 'waiting', 'ended']) {
    video.addEventListener(ev, () => window.sg.events.push(ev + '@' + video.currentTime.toFixed(2)));
  }
  video.addEventListener('error', () => {
    const e = video.error;
    window.sg.fatal = 'video element error ' + (e && e.code) + ': ' + (e && e.message);
  });
  window.startHls = (url, config) => {
    const hls = new Hls(Object.assign({ enableWorker: true }, config || {}));
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

/** Fails early, with what to install, when the browser or the player libraries are missing. */
export function assertBrowserAvailable() {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} (Debian's chromium; scripts/lib.sh installs it)`);
  for (const file of Object.values(LIBS)) assert.ok(fs.existsSync(file), `${file} (npm ci)`);
}

/** The page and the libraries on a free local port. Returns `{ base, close() }`. */
export async function startPageServer() {
  const server = http.createServer((req, res) => {
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
  return { base: `http://127.0.0.1:${port}/`, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** Headless chromium with a fresh profile, allowed to autoplay. */
export function launchChromium() {
  return chromium.launchPersistentContext(tempDir('chromium-profile'), {
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
}

/**
 * Records, for `page`, every response not from the page server (`{ url, status, at }`, `at` in
 * ms since the epoch) and failed request, and the browser console.
 */
export function recordTraffic(page, pageBase) {
  const responses = [];
  const consoleLines = [];
  page.on('response', (r) => {
    if (!r.url().startsWith(pageBase)) responses.push({ url: r.url(), status: r.status(), at: Date.now() });
  });
  page.on('requestfailed', (r) => responses.push({ url: r.url(), status: `failed: ${r.failure()?.errorText}`, at: Date.now() }));
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  return { responses, consoleLines };
}

/** What the page's <video> and players say (for assertions and failure messages). */
export function videoState(page) {
  return page.evaluate(() => {
    const v = document.getElementById('v');
    return {
      currentTime: v.currentTime,
      duration: v.duration,
      paused: v.paused,
      ended: v.ended,
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
}
