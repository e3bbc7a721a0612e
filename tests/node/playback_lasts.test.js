// Playback that lasts (issue 9, docs/playback.md "How long a URL works"), through the whole real
// stack (lib/playback.js) and a real player: the entry token the playback API returns lives
// 3 s, the clip 12 s. hls.js in headless chromium (lib/browser.js), with a short forward buffer
// so that it keeps fetching segments as it plays (as it does on any long video), starts the
// entry URL, is paused for longer than the entry token lives, is resumed and plays to `ended`
// with no fatal error and no refused request: the segments it fetched after the entry token
// expired carried the viewing token the playlists component stamped. Then the entry URL itself
// is refused (403 token_expired), a media playlist re-read with a viewing token is renewed only
// up to st + playback_session_max_secs, and a segment URL from it is refused (403
// token_expired) once that has passed. A screenshot of the page after `ended` is kept in the
// test's temp dir.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { assertBrowserAvailable, launchChromium, recordTraffic, startPageServer, videoState } from './lib/browser.js';
import { sleep, tempDir } from './lib/fixtures.js';
import { playback, playlistUris, startPlaybackStack, tokenOf, uploadReadyVideo } from './lib/playback.js';

const ENTRY_SECS = 3; // playback_token_secs
const SESSION_MAX_SECS = 40; // playback_session_max_secs
const PAUSE_ALLOWANCE_SECS = 20; // playback_pause_allowance_secs
const ORIGIN_LEEWAY_SECS = 1; // the origin's --token-leeway-secs (default 30)
const CLIP_SECS = 12; // three 4 s segments per track
const PAUSE_MS = 5_000; // longer than the entry token lives

let stack;
let video;
let pages;
let context;
let shots;

before(async () => {
  assertBrowserAvailable();
  stack = await startPlaybackStack({
    hostVars: {
      playback_token_secs: String(ENTRY_SECS),
      playback_session_max_secs: String(SESSION_MAX_SECS),
      playback_pause_allowance_secs: String(PAUSE_ALLOWANCE_SECS),
    },
    originArgs: ['--token-leeway-secs', String(ORIGIN_LEEWAY_SECS)],
  });
  video = await uploadReadyVideo(stack, { seconds: CLIP_SECS });
  pages = await startPageServer();
  context = await launchChromium();
  shots = tempDir('playback-lasts');
});

after(async () => {
  await context?.close().catch(() => {});
  await pages?.close();
  await stack?.stop();
});

/** `{ st, exp, acl, data }` of a token as it appears in a URL. */
function fieldsOf(url) {
  const token = decodeURIComponent(tokenOf(url));
  const fields = Object.fromEntries(token.split('~').map((f) => [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)]));
  return { st: Number(fields.st), exp: Number(fields.exp), acl: fields.acl, data: fields.data };
}

async function codeOf(res) {
  const text = await res.text();
  let code;
  try {
    code = JSON.parse(text).code;
  } catch {
    code = text;
  }
  return [res.status, code];
}

const nowSecs = () => Date.now() / 1000;

/** Sleeps until the wall clock passes `unixSecs` (plus `marginMs`). */
async function sleepUntil(unixSecs, marginMs = 300) {
  const ms = unixSecs * 1000 + marginMs - Date.now();
  if (ms > 0) await sleep(ms);
}

test('hls.js plays past the entry token and a pause longer than it; the session limit still ends every URL', async (t) => {
  const page = await context.newPage();
  const { responses, consoleLines } = recordTraffic(page, pages.base);
  const started = Date.now();
  let state;
  const report = () =>
    JSON.stringify({ elapsedMs: Date.now() - started, state }, null, 1) +
    `\nresponses:\n${responses.map((r) => `  ${new Date(r.at).toISOString()} ${r.status} ${r.url}`).join('\n')}` +
    `\nconsole:\n${consoleLines.slice(-40).join('\n')}`;
  try {
    await page.goto(pages.base);

    // Admitted now: the entry token lives ENTRY_SECS.
    const res = await playback(stack, video.id, stack.holder);
    assert.equal(res.status, 200, `A's playback: ${res.status} ${res.text}`);
    const entryUrl = res.json.hls;
    const entry = fieldsOf(entryUrl);
    assert.equal(entry.exp - entry.st, ENTRY_SECS, `the entry token lives playback_token_secs: ${entryUrl}`);
    assert.equal(entry.data, stack.holder.address);

    // A short forward buffer (4 s, one segment), as on any video much longer than the buffer:
    // hls.js fetches segments while it plays, so some are fetched after the pause.
    await page.evaluate(
      ([u, config]) => window.startHls(u, config),
      [entryUrl, { maxBufferLength: 4, maxMaxBufferLength: 4, backBufferLength: 0 }],
    );
    await page
      .waitForFunction(() => window.sg.fatal !== null || document.getElementById('v').currentTime > 1, null, {
        timeout: 20_000,
        polling: 100,
      })
      .catch(() => {});
    state = await videoState(page);
    assert.equal(state.fatal, null, `no fatal error before the pause\n${report()}`);
    assert.ok(state.currentTime > 1, `playing before the pause\n${report()}`);

    // Paused for longer than the entry token lives, and past its expiry.
    await page.evaluate(() => document.getElementById('v').pause());
    const pausedAt = Date.now();
    await sleep(PAUSE_MS);
    await sleepUntil(entry.exp + ORIGIN_LEEWAY_SECS);
    assert.ok(Date.now() - pausedAt > ENTRY_SECS * 1000, 'the pause outlasted the entry token');

    // The entry URL is dead now (the playlist routes allow no skew) ...
    assert.deepEqual(await codeOf(await fetch(entryUrl)), [403, 'token_expired'], 'the entry URL after its lifetime');

    // ... but the player, resumed, plays to the end.
    await page.evaluate(() => document.getElementById('v').play());
    await page
      .waitForFunction(() => window.sg.fatal !== null || document.getElementById('v').ended, null, {
        timeout: (CLIP_SECS + 20) * 1000,
        polling: 100,
      })
      .catch(() => {});
    state = await videoState(page);
    assert.equal(state.fatal, null, `no fatal player error\n${report()}`);
    assert.equal(state.ended, true, `played to the end\n${report()}`);
    assert.ok(state.currentTime > CLIP_SECS - 1, `currentTime ${state.currentTime} at the end\n${report()}`);
    assert.ok(state.audioDecodedBytes > 0 && state.videoDecodedBytes > 0, `audio and video decoded\n${report()}`);
    const shot = path.join(shots, 'ended.png');
    await page.screenshot({ path: shot });
    assert.ok(fs.statSync(shot).size > 0, `screenshot ${shot}`);
    t.diagnostic(`screenshot after ended: ${shot} (kept with SG_KEEP_TEST_STATE=1)`);

    const refused = responses.filter((r) => r.status !== 200 && r.status !== 206);
    assert.deepEqual(refused, [], `every request to the host and the origin succeeded\n${report()}`);
    const mediaPrefix = `${stack.origin.base}/media/${video.id}/`;
    const segments = responses.filter((r) => r.url.startsWith(mediaPrefix) && /\.m4s\?/.test(r.url));
    const late = segments.filter((r) => r.at > (entry.exp + ORIGIN_LEEWAY_SECS) * 1000);
    assert.ok(
      late.some((r) => r.url.startsWith(`${mediaPrefix}audio/`)) && late.some((r) => !r.url.startsWith(`${mediaPrefix}audio/`)),
      `video and audio segments were fetched after the entry token expired\n${report()}`,
    );
    for (const r of segments) {
      const t = fieldsOf(r.url);
      assert.equal(t.st, entry.st, `a segment token keeps the admission's st: ${r.url}`);
      assert.equal(t.data, entry.data, `and the viewer: ${r.url}`);
      assert.ok(t.exp > entry.exp && t.exp <= entry.st + SESSION_MAX_SECS, `a viewing token: ${r.url}`);
    }

    // A viewing token presented again (a media playlist the player read, re-read now) is
    // renewed, but only up to st + playback_session_max_secs.
    const mediaPlaylist = responses.find(
      (r) => r.url.startsWith(`${stack.host.base}/stream/${video.id}/`) && /\/(?!master)[^/]+\.m3u8\?/.test(r.url),
    );
    assert.ok(mediaPlaylist, `hls.js read a media playlist\n${report()}`);
    const reread = await fetch(mediaPlaylist.url);
    const text = await reread.text();
    assert.equal(reread.status, 200, `re-reading ${mediaPlaylist.url}: ${text}`);
    assert.match(reread.headers.get('cache-control'), /^private, max-age=\d{1,3}$/);
    const segmentUrl = playlistUris(text, mediaPlaylist.url)[0];
    const renewed = fieldsOf(segmentUrl);
    assert.equal(renewed.st, entry.st);
    assert.ok(renewed.exp >= fieldsOf(mediaPlaylist.url).exp, 'never shorter than the token presented');
    assert.equal(renewed.exp, entry.st + SESSION_MAX_SECS, `capped at the session limit: ${segmentUrl}`);
    assert.equal((await fetch(segmentUrl)).status, 200, 'the segment URL works within the session');

    // Past the session limit (and the origin's skew leeway) the URL is refused, and the
    // playlist that would renew it too.
    assert.ok(renewed.exp + ORIGIN_LEEWAY_SECS - nowSecs() < SESSION_MAX_SECS, 'a bounded wait');
    await sleepUntil(renewed.exp + ORIGIN_LEEWAY_SECS);
    assert.deepEqual(await codeOf(await fetch(segmentUrl)), [403, 'token_expired'], 'a segment URL after the session limit');
    const playlistWithRenewed = mediaPlaylist.url.replace(/([?&]hdnts=)[^&]*/, `$1${tokenOf(segmentUrl)}`);
    assert.deepEqual(
      await codeOf(await fetch(playlistWithRenewed)),
      [403, 'token_expired'],
      'its token cannot be renewed past the session limit either',
    );
  } finally {
    await page.close();
  }
});
