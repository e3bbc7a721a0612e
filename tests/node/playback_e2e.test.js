// The viewer's half end to end, real parts only: the creator (viem + siwe on anvil) uploads a
// generated clip with tus-js-client, gated on an ERC-721 (GateNFT, solc-js + OpenZeppelin)
// minted to viewer A; the real worker (ffmpeg) transcodes it; A signs in and gets signed URLs
// from the real host; ffprobe (Debian ffmpeg) reads the signed master and media playlists over
// HTTP (host for the playlists, `native-transcoder serve` for the segments); the origin serves
// a segment; tampered, other-video and expired tokens are 403 from the origin and the playlist
// routes; viewer B without the NFT gets 403 not_token_holder.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { assertError } from './lib/auth.js';
import { FFPROBE } from './lib/pipeline.js';
import {
  eventOnlyReadyVideo,
  forgeToken,
  mapUri,
  playback,
  playlistUris,
  startPlaybackStack,
  tokenOf,
  uploadReadyVideo,
  withToken,
} from './lib/playback.js';

const run = promisify(execFile);

let stack;
let video;
let urls; // A's playback answer

before(async () => {
  stack = await startPlaybackStack();
  video = await uploadReadyVideo(stack);
  const res = await playback(stack, video.id, stack.holder);
  assert.equal(res.status, 200, `A's playback: ${res.status} ${res.text}`);
  urls = res.json;
});

after(async () => {
  await stack?.stop();
});

/** ffprobe over HTTP (the signed URL is all it gets, as a player that cannot add headers). */
async function probeUrl(url) {
  try {
    const { stdout } = await run(
      FFPROBE,
      [
        '-v', 'error',
        '-protocol_whitelist', 'file,http,tcp,crypto',
        '-print_format', 'json',
        '-show_streams', '-show_programs', '-show_format',
        url,
      ],
      { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
    );
    return JSON.parse(stdout);
  } catch (e) {
    throw new Error(`ffprobe ${url}: ${e.stderr ?? e.message}\n${stack.logs()}`);
  }
}

const codeOf = async (res) => {
  const text = await res.text();
  let code = null;
  try {
    code = JSON.parse(text).code;
  } catch {
    code = `(not JSON: ${text.slice(0, 80)})`;
  }
  return [res.status, code];
};

test('A holds the NFT: signed HLS and DASH URLs on the host, each carrying one EdgeAuth token for this video', () => {
  assert.ok(video.renditions.length >= 2, `≥ 2 renditions: ${JSON.stringify(video.renditions.map((r) => r.name))}`);
  for (const url of [urls.hls, urls.dash]) {
    assert.ok(url.startsWith(`${stack.host.base}/stream/${video.id}/`), url);
  }
  const token = decodeURIComponent(tokenOf(urls.hls));
  assert.match(
    token,
    new RegExp(`^st=\\d+~exp=\\d+~acl=/stream/${video.id}/\\*!/media/${video.id}/\\*~data=0x[0-9a-fA-F]{40}~hmac=[0-9a-f]{64}$`),
  );
  assert.equal(token.match(/data=(0x[0-9a-fA-F]{40})/)[1].toLowerCase(), stack.holder.address.toLowerCase());
});

test('ffprobe reads the signed master playlist (≥ 2 variants at the rendition sizes, one AAC audio group) and each media playlist', async () => {
  const expected = video.renditions.map((r) => `${r.width}x${r.height}`).sort();

  const master = await probeUrl(urls.hls);
  const videoStreams = master.streams.filter((s) => s.codec_type === 'video');
  assert.ok(videoStreams.length >= 2, `ffprobe finds ≥ 2 video streams: ${videoStreams.length}`);
  assert.deepEqual(
    videoStreams.map((s) => `${s.width}x${s.height}`).sort(),
    expected,
    'one video stream per rendition, at its resolution',
  );
  for (const s of videoStreams) assert.equal(s.codec_name, 'h264');
  assert.ok(master.streams.some((s) => s.codec_type === 'audio' && s.codec_name === 'aac'), 'the master offers AAC audio');
  assert.equal(master.programs.length, video.renditions.length, 'one HLS variant (program) per rendition');

  const masterText = await (await fetch(urls.hls)).text();
  const mediaUrls = playlistUris(masterText, urls.hls);
  assert.equal(mediaUrls.length, video.renditions.length, 'one media playlist per rendition');
  for (const url of mediaUrls) {
    assert.ok(url.startsWith(`${stack.host.base}/stream/${video.id}/`), url);
    assert.ok(url.includes('hdnts='), `the media playlist URI carries the token: ${url}`);
    const name = new URL(url).pathname.split('/').pop().replace(/\.m3u8$/, '');
    const r = video.renditions.find((x) => x.name === name);
    assert.ok(r, `${name} is a rendition`);
    const probe = await probeUrl(url);
    const v = probe.streams.filter((s) => s.codec_type === 'video');
    assert.equal(v.length, 1, `${name}: one video stream`);
    assert.deepEqual([v[0].width, v[0].height], [r.width, r.height], `${name}: the rendition's size`);
    assert.ok(!probe.streams.some((s) => s.codec_type === 'audio'), `${name}: video only (audio is its own track)`);
    const duration = Number(probe.format.duration);
    assert.ok(Math.abs(duration - 4) < 0.5, `${name}: ffprobe measures ${duration} s for a 4 s clip`);
  }

  // The audio group's one track, named by URI in #EXT-X-MEDIA, signed like the rest.
  const media = masterText.split('\n').filter((l) => l.startsWith('#EXT-X-MEDIA:'));
  assert.equal(media.length, 1, `one #EXT-X-MEDIA line:\n${masterText}`);
  assert.match(media[0], /TYPE=AUDIO,GROUP-ID="audio"/);
  for (const line of masterText.split('\n').filter((l) => l.startsWith('#EXT-X-STREAM-INF:'))) {
    assert.match(line, /CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2",AUDIO="audio"/, 'each variant names the audio group and codec');
  }
  const audioUrl = new URL(/URI="([^"]+)"/.exec(media[0])[1], urls.hls).href;
  assert.ok(audioUrl.includes('hdnts='), `the audio playlist URI carries the token: ${audioUrl}`);
  const audio = await probeUrl(audioUrl);
  assert.deepEqual(audio.streams.map((s) => [s.codec_type, s.codec_name]), [['audio', 'aac']], 'the audio playlist is AAC only');
  const audioDuration = Number(audio.format.duration);
  assert.ok(Math.abs(audioDuration - 4) < 0.5, `audio: ffprobe measures ${audioDuration} s for a 4 s clip`);
  const audioText = await (await fetch(audioUrl)).text();
  const audioSegment = await fetch(playlistUris(audioText, audioUrl)[0]);
  assert.equal(audioSegment.status, 200);
  assert.equal(audioSegment.headers.get('content-type'), 'audio/mp4', 'the origin types audio segments as audio');
});

test("ffprobe reads the signed DASH MPD: one H.264 stream per rendition and the AAC track, each the clip's length", async () => {
  const mpd = await probeUrl(urls.dash);
  const videoStreams = mpd.streams.filter((s) => s.codec_type === 'video');
  assert.deepEqual(
    videoStreams.map((s) => `${s.width}x${s.height}`).sort(),
    video.renditions.map((r) => `${r.width}x${r.height}`).sort(),
    'one video representation per rendition, at its size',
  );
  for (const s of videoStreams) assert.equal(s.codec_name, 'h264');
  const audioStreams = mpd.streams.filter((s) => s.codec_type === 'audio');
  assert.deepEqual(audioStreams.map((s) => [s.codec_name, s.channels, Number(s.sample_rate)]), [['aac', 2, 48000]], 'one AAC stereo 48 kHz representation');
  const duration = Number(mpd.format.duration);
  assert.ok(Math.abs(duration - 4) < 0.5, `ffprobe measures ${duration} s for a 4 s clip`);
});

test('the origin serves a segment from a signed media playlist; tampered, other-video and expired tokens are 403 from the origin and the playlist routes', async () => {
  const masterText = await (await fetch(urls.hls)).text();
  const mediaUrl = playlistUris(masterText, urls.hls)[0];
  const mediaRes = await fetch(mediaUrl);
  assert.equal(mediaRes.status, 200);
  const mediaText = await mediaRes.text();
  const segmentUrl = playlistUris(mediaText, mediaUrl)[0];
  const initUrl = mapUri(mediaText, mediaUrl);
  assert.ok(segmentUrl.startsWith(`${stack.origin.base}/media/${video.id}/`), `segment on the origin: ${segmentUrl}`);

  const seg = await fetch(segmentUrl);
  assert.equal(seg.status, 200, `segment: ${seg.status}`);
  assert.equal(seg.headers.get('content-type'), 'video/iso.segment');
  const body = Buffer.from(await seg.arrayBuffer());
  assert.ok(body.length > 0 && body.length === Number(seg.headers.get('content-length')), 'the whole segment');
  assert.ok(body.includes(Buffer.from('moof')), 'a CMAF fragment (moof)');
  const init = await fetch(initUrl);
  assert.equal(init.status, 200);
  assert.equal(init.headers.get('content-type'), 'video/mp4');
  await init.arrayBuffer();

  // Bad tokens, each tried on the segment (origin), the master and the media playlist (host).
  const good = decodeURIComponent(tokenOf(segmentUrl));
  const tampered = good.replace(/hmac=([0-9a-f])/, (_, c) => `hmac=${c === '0' ? '1' : '0'}`);
  assert.notEqual(tampered, good);
  const otherId = await eventOnlyReadyVideo(stack);
  const other = await playback(stack, otherId, stack.holder);
  assert.equal(other.status, 200, `the other (public) video's playback: ${other.text}`);
  const otherToken = decodeURIComponent(tokenOf(other.json.hls));
  assert.ok(otherToken.includes(`/media/${otherId}/*`), 'a real token of the other video');
  const now = Math.floor(Date.now() / 1000);
  const expired = forgeToken(stack.host.vars.playback_secret, {
    id: video.id, st: now - 900, exp: now - 300, data: stack.holder.address,
  });
  // The forge is right: the same fields with a live expiry open the segment.
  const live = forgeToken(stack.host.vars.playback_secret, { id: video.id, st: now - 5, exp: now + 300 });
  assert.equal((await fetch(withToken(segmentUrl, live))).status, 200, 'a forged live token works');
  assert.equal((await fetch(withToken(segmentUrl, encodeURIComponent(live)))).status, 200, 'also percent-encoded');

  const cases = [
    ['tampered hmac', tampered, 'invalid_token'],
    ['another video\'s token', otherToken, 'token_wrong_path'],
    ['expired token', expired, 'token_expired'],
  ];
  // Tokens go in as the server writes them (unencoded); the origin also gets them
  // percent-encoded (docs/native-transcoder.md: plain or percent-encoded).
  const targets = [
    ['origin segment', segmentUrl, (t) => t],
    ['origin segment, percent-encoded', segmentUrl, encodeURIComponent],
    ['origin init', initUrl, (t) => t],
    ['master', urls.hls, (t) => t],
    ['media playlist', mediaUrl, (t) => t],
  ];
  for (const [what, token, code] of cases) {
    for (const [where, url, encode] of targets) {
      const res = await fetch(withToken(url, encode(token)));
      assert.deepEqual(await codeOf(res), [403, code], `${what} on the ${where}`);
    }
  }
  // Missing token, on both sides.
  for (const url of [segmentUrl, mediaUrl]) {
    const bare = url.replace(/[?&]hdnts=[^&]*/, '');
    assert.deepEqual(await codeOf(await fetch(bare)), [403, 'missing_token'], bare);
  }
  // And the good one still works afterwards.
  assert.equal((await fetch(segmentUrl)).status, 200);
});

test('viewer B without the NFT gets 403 not_token_holder', async () => {
  assertError(await playback(stack, video.id, stack.stranger), 403, 'not_token_holder');
});

test(
  'a percent-encoded valid token opens the playlist routes, as it opens the origin',
  async () => {
    const encoded = encodeURIComponent(decodeURIComponent(tokenOf(urls.hls)));
    const res = await fetch(withToken(urls.hls, encoded));
    assert.equal(res.status, 200, `${res.status} ${await res.text()}`);
  },
);
