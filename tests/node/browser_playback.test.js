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
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { assertBrowserAvailable, launchChromium, recordTraffic, startPageServer, videoState } from './lib/browser.js';
import { playback, startPlaybackStack, uploadReadyVideo } from './lib/playback.js';

const PLAY_TIMEOUT_MS = 20_000;
const run = promisify(execFile);

let stack;
let video;
let urls; // A's playback answer
let pages;
let pageBase;
let context;

before(async () => {
  assertBrowserAvailable();
  stack = await startPlaybackStack();
  video = await uploadReadyVideo(stack);
  const res = await playback(stack, video.id, stack.holder);
  assert.equal(res.status, 200, `A's playback: ${res.status} ${res.text}`);
  urls = res.json;
  // The players below read the kept playlists, stamped with A's token (issue 15 item 3), not a
  // per-request render: the host stored them when the transcode completed.
  const { stdout } = await run('sqlite3', [
    path.join(stack.host.stateDir, 'sqlite_db.db'),
    `SELECT file FROM playlist_templates WHERE video_id = '${video.id}' ORDER BY file`,
  ]);
  assert.deepEqual(stdout.trim().split('\n'), ['240p.m3u8', '360p.m3u8', 'audio.m3u8', 'manifest.mpd', 'master.m3u8']);
  pages = await startPageServer();
  pageBase = pages.base;
  context = await launchChromium();
});

after(async () => {
  await context?.close().catch(() => {});
  await pages?.close();
  await stack?.stop();
});

/**
 * Opens the page, calls `start` (startHls / startDash) with `url`, and waits (bounded) until the
 * video plays past 1 s or the player reports a fatal error. Returns what happened, with every
 * response from the host and the origin and the browser console, for assertions and messages.
 */
async function playInBrowser(start, url, options) {
  const page = await context.newPage();
  const { responses, consoleLines } = recordTraffic(page, pageBase);
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
    const state = await videoState(page);
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
