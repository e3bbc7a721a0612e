// The web app in a real browser (Debian's chromium via playwright-core) against the whole real
// stack (lib/playback.js: anvil with an ERC-721, the host with every component including `web`,
// redis, the native origin and worker), signing with anvil keys through the TEST HELPER wallet
// (lib/test_wallet.js, injected as an EIP-1193 provider and announced with EIP-6963).
//
// - A viewer without the token signs in through the page and is told why not; the session
//   survives a reload; after receiving the NFT on chain, the same page plays the video with
//   hls.js (currentTime advances, no player error).
// - Rejected signature, wrong network (and the switch), sign-out (revoked on the server), an
//   expired session: each says so.
// - A creator creates a gated video in the studio (an invalid contract is shown on its field),
//   uploads a real clip through the page (progress moves, pauses, resumes, reaches 100 %), and
//   sees it become ready with a poster; deletes a video after confirming.
// - axe-core (injected into the page) finds no serious or critical violation on each page at
//   phone and desktop sizes; quality selection; not_ready and gate_check_unavailable (anvil
//   stopped) explained; no Content-Security-Policy violation is reported; screenshots of
//   the main pages at both sizes are written to docs/screenshots/.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { createWalletClient, http } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { foundry } from 'viem/chains';

import { api } from './lib/auth.js';
import { assertBrowserAvailable, launchChromium } from './lib/browser.js';
import { CHAIN_ID, NODE_DIR, REPO_ROOT, sleep, tempDir } from './lib/fixtures.js';
import { makeTestVideo } from './lib/pipeline.js';
import { eventOnlyReadyVideo, startPlaybackStack, uploadReadyVideo } from './lib/playback.js';
import { installTestWallet } from './lib/test_wallet.js';
import { compile } from './lib/wallet.js';
import { startWireRelay } from './lib/wire.js';

const SHOTS = path.join(REPO_ROOT, 'docs/screenshots');
const AXE = fs.readFileSync(path.join(NODE_DIR, 'node_modules/axe-core/axe.min.js'), 'utf8');
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

let stack;
let relay; // between the browser and the media origin (lib/wire.js): the app's media_base_url
let video; // ready, gated by the ERC-721 (the holder has token 1)
let context;
let wallet; // the test helper wallet: its key is switched between the test's users
let page;
let studioVideoId; // the video the creator made in the studio (gated by the ERC-721)
const cspViolations = [];
const pageErrors = [];

before(async () => {
  assertBrowserAvailable();
  relay = await startWireRelay(() => stack.origin.port);
  stack = await startPlaybackStack({ hostVars: { gate_cache_negative_secs: '1', media_base_url: `http://127.0.0.1:${relay.port}` } });
  video = await uploadReadyVideo(stack);
  context = await launchChromium();
  wallet = await installTestWallet(context, stack.stranger.key);
  // A second wallet, so the page must offer the EIP-6963 chooser.
  await installTestWallet(context, stack.stranger.key, { name: 'Another Test Wallet' });
  page = await context.newPage();
  page.on('console', (m) => {
    if (/Content Security Policy|Content-Security-Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

after(async () => {
  await context?.close().catch(() => {});
  await stack?.stop();
  await relay?.close();
});

const url = (p) => `${stack.host.base}${p}`;
const notice = () => page.locator('#notice').innerText();

/** axe-core in the page: no serious or critical violation. */
async function assertAccessible(what) {
  await page.evaluate(AXE); // DevTools evaluation: not subject to the page's CSP
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`),
    [],
    `${what}: axe-core violations`,
  );
}

/** Accessibility at both sizes, and a screenshot of each when `shot` names it. */
async function checkBothSizes(what, shot) {
  for (const [size, viewport] of [['phone', PHONE], ['desktop', DESKTOP]]) {
    await page.setViewportSize(viewport);
    await sleep(150);
    await assertAccessible(`${what} (${size})`);
    if (shot) await page.screenshot({ path: path.join(SHOTS, `${shot}-${size}.png`), fullPage: size === 'desktop' });
  }
}

/** Clicks a sign-in button, picks the test wallet in the chooser. */
async function signInThroughPage(buttonName = 'Sign in with wallet') {
  await page.getByRole('button', { name: buttonName }).first().click();
  const dialog = page.getByRole('dialog', { name: 'Choose a wallet' });
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'StreamGate Test Wallet (anvil key)' }).click();
}

/**
 * The origin has the whole file of the card's video: the page says "Uploaded" (the origin's
 * answer to the last PATCH; the page's percentage only counts what the browser handed to its
 * socket), or the video has moved on (the panel then goes). `why()` explains a timeout.
 */
async function uploadFinished(id, timeout, why) {
  await page
    .waitForFunction((i) => {
      const c = document.querySelector(`.studio-card[data-id="${i}"]`);
      return c && (/Uploaded/.test(c.querySelector('[data-testid=upload] .upload-text')?.textContent ?? '') || c.dataset.status !== 'awaiting_upload');
    }, id, { timeout, polling: 50 })
    .catch(async (e) => assert.fail(`${e.message}; ${await why()}`));
}

async function signedInAs(address) {
  await page.locator('[data-testid=address]').waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('[data-testid=address]').getAttribute('title'), address);
}

test('browse lists the ready videos, newest first, a page at a time; a watch page says who may watch and asks to sign in', async () => {
  // The list sorts by created_at, whole seconds, and a tie by id, which is random: `video` is
  // the oldest only if the 12 are made in a later second (a fast upload and transcode can end
  // within its creation's second).
  while (Math.floor(Date.now() / 1000) <= video.created_at) await sleep(50);
  for (let i = 0; i < 12; i++) await eventOnlyReadyVideo(stack); // newer than `video`
  await page.setViewportSize(DESKTOP);
  await page.goto(url('/'));
  const cards = page.locator('ul.grid > li');
  await page.waitForFunction(() => document.querySelectorAll('ul.grid > li').length === 12);
  assert.equal(await page.getByRole('link', { name: video.title }).count(), 0, 'the oldest is not on the first page');
  await page.getByRole('button', { name: 'Load more' }).click();
  const link = page.getByRole('link', { name: video.title });
  await link.waitFor();
  assert.equal(await cards.count(), 13);
  assert.equal(await cards.last().locator('h3').innerText(), video.title, 'newest first: the first video is last');
  assert.equal(await page.getByRole('button', { name: 'Load more' }).isVisible(), false, 'no more pages');
  // The poster of a ready video is public like its title: in the video JSON, served without a
  // token, and on its card before anyone signs in (the event-only videos have none).
  const anonymous = await api(stack.host.base, 'GET', `/api/v1/videos/${video.id}`);
  const posterUrl = `http://127.0.0.1:${relay.port}/posters/${video.id}.jpg`;
  assert.equal(anonymous.json.poster_url, posterUrl);
  const poster = await fetch(posterUrl);
  assert.equal(poster.status, 200);
  assert.equal(poster.headers.get('content-type'), 'image/jpeg');
  const thumb = cards.last().locator('.thumb img');
  await page.waitForFunction(() => document.querySelector('ul.grid > li:last-child .thumb img')?.naturalWidth > 0);
  assert.equal(await thumb.getAttribute('src'), posterUrl);
  assert.equal(await cards.first().locator('.thumb img').count(), 0, 'no poster: the initial');
  await checkBothSizes('browse', 'browse');
  await link.click();
  await page.waitForURL(url(`/watch/${video.id}`));
  await page.getByRole('heading', { level: 1, name: video.title }).waitFor();
  const who = await page.locator('.who').innerText();
  assert.match(who, new RegExp(`holders of ERC-721 ${stack.nft} on local chain`), who);
  await page.getByRole('button', { name: 'Sign in to watch' }).waitFor();
  await page.waitForFunction(() => document.querySelector('.stage img.still')?.naturalWidth > 0);
  assert.equal(await page.getByRole('img', { name: `Poster of ${video.title}` }).getAttribute('src'), posterUrl);
  await checkBothSizes('watch page, signed out', 'watch-signed-out');
});

test('a rejected signature and a wrong network are explained; the switch then signs in', async () => {
  await page.setViewportSize(DESKTOP);
  await page.goto(url(`/watch/${video.id}`));
  wallet.reject = 'personal_sign';
  await signInThroughPage('Sign in to watch');
  await page.locator('#notice .notice.error').waitFor();
  assert.match(await notice(), /declined the signature request/);
  assert.equal(await page.locator('[data-testid=address]').count(), 0, 'not signed in');

  wallet.reject = null;
  wallet.chainId = 1;
  await signInThroughPage('Sign in to watch');
  await page.getByRole('button', { name: /Switch to local chain/ }).waitFor();
  assert.match(await notice(), /Your wallet is on Ethereum/);
  await page.getByRole('button', { name: /Switch to local chain/ }).click();
  await page.getByRole('dialog', { name: 'Choose a wallet' }).getByRole('button', { name: 'StreamGate Test Wallet (anvil key)' }).click();
  await signedInAs(stack.stranger.address);
  assert.equal(wallet.chainId, CHAIN_ID, 'the page asked the wallet to switch');
});

test('a non-holder is told why not; signed in across a reload; after receiving the NFT the video plays', async () => {
  await page.setViewportSize(DESKTOP);
  const stage = page.locator('.stage');
  await page.waitForFunction(() => document.querySelector('.stage')?.dataset.state === 'denied', null, { timeout: 15_000 });
  const why = await page.locator('.watch-message').innerText();
  assert.match(why, new RegExp(`Your wallet ${stack.stranger.address} may not watch`), why);
  assert.match(why, /holders of ERC-721/);
  await checkBothSizes('watch page, not a holder', 'watch-denied');

  await page.reload();
  await signedInAs(stack.stranger.address);
  await page.waitForFunction(() => document.querySelector('.stage')?.dataset.state === 'denied', null, { timeout: 15_000 });

  // The stranger receives token 2 on chain.
  const { abi } = compile('GateNFT');
  const deployer = createWalletClient({ account: privateKeyToAccount(stack.creator.key), chain: foundry, transport: http(stack.anvil.url) });
  await deployer.writeContract({ address: stack.nft, abi, functionName: 'mint', args: [stack.stranger.address, 2n] });
  await sleep(1_500); // the gate's negative cache (gate_cache_negative_secs = 1)
  await page.getByRole('button', { name: 'Check again' }).click();
  await page.locator('video#player').waitFor({ timeout: 15_000 });
  await page.waitForFunction(() => document.getElementById('player')?.currentTime > 1, null, { timeout: 30_000, polling: 100 });
  assert.equal(await stage.getAttribute('data-state'), 'playing');
  const state = await page.evaluate(() => {
    const v = document.getElementById('player');
    return { error: v.error?.code ?? null, width: v.videoWidth, poster: v.poster };
  });
  assert.equal(state.error, null, 'no player error');
  assert.ok(state.width > 0, 'frames decoded');
  assert.equal(state.poster, `http://127.0.0.1:${relay.port}/posters/${video.id}.jpg`);
  const qualities = await page.getByLabel('Quality').locator('option').allInnerTexts();
  assert.deepEqual(qualities, ['Auto', '360p', '240p'], 'the ladder to choose from');
  await page.getByLabel('Quality').selectOption({ label: '240p' });
  const before = await page.evaluate(() => document.getElementById('player').currentTime);
  await page.waitForFunction((t) => document.getElementById('player').currentTime > t + 0.5, before, { timeout: 10_000 });
  assert.equal(await page.evaluate(() => document.getElementById('player').error), null, 'still no player error');
  await page.evaluate(() => document.getElementById('player').pause());
  await checkBothSizes('watch page, playing', 'watch-playing');
});

test('sign-out revokes the session on the server; an expired session says so', async () => {
  await page.setViewportSize(DESKTOP);
  const token = await page.evaluate(() => JSON.parse(localStorage.getItem('streamgate.session')).token);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in with wallet' }).waitFor();
  assert.match(await notice(), /signed out/);
  const me = await api(stack.host.base, 'GET', '/api/v1/auth/me', { token });
  assert.equal(me.status, 401);
  assert.equal(me.json.code, 'token_revoked');

  // A settled page (nothing left to read the session) before the stored one is replaced.
  await page.goto(url('/'));
  await page.getByRole('button', { name: 'Load more' }).waitFor();
  await page.evaluate((t) => localStorage.setItem('streamgate.session', JSON.stringify({ token: t, address: '0x0', expires_at: '2000-01-01T00:00:00Z' })), token);
  await page.reload();
  await page.locator('#notice .notice.error').waitFor();
  assert.match(await notice(), /Your session has ended/);

  // A stored session that the server revoked (e.g. signed out in another browser).
  await page.evaluate((t) => localStorage.setItem('streamgate.session', JSON.stringify({ token: t, address: '0x0', expires_at: '2999-01-01T00:00:00Z' })), token);
  await page.reload();
  await page.getByRole('button', { name: 'Sign in with wallet' }).waitFor();
  await page.locator('#notice .notice.error').waitFor();
  assert.match(await notice(), /signed out \(the session was revoked\)/);
});

test('the creator creates a gated video in the studio, uploads it (pause, resume, 100 %), sees it ready with a poster, and deletes one', { timeout: 240_000 }, async () => {
  await page.setViewportSize(DESKTOP);
  wallet.setKey(stack.creator.key);
  await page.goto(url('/studio'));
  await signInThroughPage('Sign in');
  await signedInAs(stack.creator.address);
  await page.getByRole('heading', { name: 'New video' }).waitFor();

  const clip = await makeTestVideo(tempDir('web-clip'), { seconds: 4, size: '640x360', rate: 25 });
  await page.getByLabel('Title').fill('Made in the studio');
  await page.getByLabel('Description (optional)').fill('Uploaded through the web app.');
  await page.getByLabel('Video file').setInputFiles(clip);
  await page.getByRole('button', { name: 'Add a rule' }).click();
  await page.getByLabel('Token contract').fill(stack.nft.toLowerCase()); // not EIP-55: the API says so
  await page.getByRole('button', { name: 'Create and upload' }).click();
  const contract = page.getByLabel('Token contract');
  await page.waitForFunction(() => document.querySelector('input[name=contract]')?.getAttribute('aria-invalid') === 'true');
  const fieldError = await page.locator(`#${await contract.getAttribute('id')}-error`).innerText();
  assert.match(fieldError, /EIP-55/, fieldError);
  await checkBothSizes('studio, a field error', 'studio-form');

  // Slow the upload down on the wire so it is paused half way (about 6 s for the whole file),
  // and let the paused PATCH stay open on the origin, as if its connection had died on the way.
  const size = fs.statSync(clip).size;
  relay.setUploadRate(Math.max(20_000, size / 6));
  relay.holdOriginSide(true);
  await contract.fill(stack.nft);
  const tusLog = []; // 'PATCH <offset sent>' and 'HEAD <offset answered>'
  page.on('request', (r) => {
    if (r.method() === 'PATCH') tusLog.push(`PATCH ${r.headers()['upload-offset']}`);
  });
  page.on('response', (r) => {
    if (r.request().method() === 'HEAD' && r.headers()['upload-offset'] !== undefined) tusLog.push(`HEAD ${r.headers()['upload-offset']}`);
  });
  await page.getByRole('button', { name: 'Create and upload' }).click();
  const upload = page.locator('[data-testid=upload]');
  await upload.waitFor();
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=upload]')?.dataset.percent) > 0, null, { timeout: 20_000 });
  const text = await upload.locator('.upload-text').innerText();
  assert.match(text, /\d+ % · .* of .*(· .*\/s · about .* left)?/, text);
  await sleep(1_000); // some of the file on the origin, not all of it
  await upload.getByRole('button', { name: 'Pause' }).click();
  await upload.locator('.upload-text', { hasText: 'Paused at' }).waitFor();
  await relay.settled();
  relay.setUploadRate(null);
  const resumed = Date.now();
  await upload.getByRole('button', { name: 'Resume' }).click();
  // The paused PATCH still waits for its body on the origin (for 30 s); the resume must not
  // wait for it (nor for the upload lock's 10 s).
  const made = await page.locator('.studio-card', { hasText: 'Made in the studio' }).getAttribute('data-id');
  await uploadFinished(made, 8_000, async () => `${await upload.innerText().catch(() => '')}; tus requests: ${tusLog.join(', ')}`);
  assert.ok(Date.now() - resumed < 8_000);
  relay.holdOriginSide(false);
  // Resuming asked the server where the upload stands (HEAD: part of the file) and went on
  // from that offset.
  const head = tusLog.findLastIndex((l) => l.startsWith('HEAD '));
  const at = Number(tusLog[head]?.slice(5));
  assert.ok(head > 0 && at > 0 && at < size && tusLog[head + 1] === `PATCH ${at}`, `tus requests: ${tusLog.join(', ')}`);

  const card = page.locator('.studio-card', { hasText: 'Made in the studio' });
  const id = await card.getAttribute('data-id');
  studioVideoId = id;
  await page.waitForFunction((i) => document.querySelector(`.studio-card[data-id="${i}"][data-status="ready"] img.poster:not([hidden])`)?.naturalWidth > 0, id, { timeout: 90_000, polling: 250 });
  assert.equal(await card.getAttribute('data-status'), 'ready');
  assert.match(await card.locator('.who').innerText().catch(() => card.innerText()), new RegExp(stack.nft));
  await checkBothSizes('studio, my videos', 'studio');

  // Delete, after confirming, the video made by the fixture.
  const other = page.locator('.studio-card', { hasText: video.title });
  await other.getByRole('button', { name: `Delete ${video.title}` }).click();
  const confirm = page.getByRole('dialog', { name: `Delete “${video.title}”?` });
  await confirm.getByRole('button', { name: 'Delete video' }).click();
  await other.waitFor({ state: 'detached', timeout: 15_000 });
  const gone = await api(stack.host.base, 'GET', `/api/v1/videos/${video.id}`);
  assert.equal(gone.status, 404);
});

test('the studio: an upload cut by a page reload resumes from the server\'s offset; the gate is edited (a field error, then saved)', async () => {
  await page.setViewportSize(DESKTOP);
  const clip = await makeTestVideo(tempDir('web-clip2'), { seconds: 4, size: '640x360', rate: 25, name: 'second.mp4' });
  relay.setUploadRate(Math.max(20_000, fs.statSync(clip).size / 6));
  await page.getByLabel('Title').fill('Resumed after a reload');
  await page.getByLabel('Video file').setInputFiles(clip);
  await page.getByRole('button', { name: 'Create and upload' }).click();
  const card = page.locator('.studio-card', { hasText: 'Resumed after a reload' });
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=upload]')?.dataset.percent) > 0, null, { timeout: 20_000 });
  const id = await card.getAttribute('data-id');

  await page.reload(); // the upload stops with the page
  await relay.settled();
  relay.setUploadRate(null);
  const tusLog = [];
  page.on('request', (r) => {
    if (r.url().startsWith(`http://127.0.0.1:${relay.port}/uploads/`) && (r.method() === 'PATCH' || r.method() === 'POST')) tusLog.push(`${r.method()} ${r.headers()['upload-offset'] ?? r.url()}`);
  });
  page.on('response', (r) => {
    if (r.request().method() === 'HEAD' && r.headers()['upload-offset'] !== undefined) tusLog.push(`HEAD ${r.headers()['upload-offset']}`);
  });
  const again = page.locator(`.studio-card[data-id="${id}"]`);
  await again.waitFor();
  assert.equal(await again.getAttribute('data-status'), 'awaiting_upload');
  // Its watch page, for its owner, says it is not ready yet (playback: 409 not_ready).
  const watch = await context.newPage();
  try {
    await watch.goto(url(`/watch/${id}`));
    await watch.waitForFunction(() => document.querySelector('.stage')?.dataset.state === 'denied', null, { timeout: 15_000 });
    assert.match(await watch.locator('.watch-message').innerText(), /not ready yet \(awaiting_upload\)/);
  } finally {
    await watch.close();
  }
  await again.getByLabel('Upload (or resume) the file').setInputFiles(clip);
  await uploadFinished(id, 30_000, async () => `card: ${await again.innerText()}\ntus: ${tusLog.join(', ')}`);
  const head = tusLog.findIndex((l) => l.startsWith('HEAD '));
  assert.ok(head === 0 && tusLog[1] === `PATCH ${tusLog[0].slice(5)}`, `resumed, not created again: ${tusLog.join(', ')}`);
  await page.waitForFunction((i) => document.querySelector(`.studio-card[data-id="${i}"]`)?.dataset.status === 'ready', id, { timeout: 90_000, polling: 250 });

  // Edit the gate of this public video: a malformed contract is shown on its field, then a
  // valid rule is saved.
  await again.getByRole('button', { name: 'Edit who may watch for Resumed after a reload' }).click();
  const form = again.locator('form.edit-gate');
  await form.waitFor();
  await form.getByRole('button', { name: 'Add a rule' }).click();
  await form.getByLabel('Token contract').fill('0x1234');
  await form.getByRole('button', { name: 'Save' }).click();
  await page.waitForFunction(() => document.querySelector('form.edit-gate input[name=contract]')?.getAttribute('aria-invalid') === 'true');
  await form.getByLabel('Token contract').fill(stack.nft);
  await form.getByRole('button', { name: 'Save' }).click();
  await form.waitFor({ state: 'detached' });
  assert.match(await again.innerText(), new RegExp(`Who may watch: holders of ERC-721 ${stack.nft}`));
  const res = await api(stack.host.base, 'GET', `/api/v1/videos/${id}`);
  assert.equal(res.status, 200);
  assert.deepEqual(res.json.gate.map((r) => r.contract), [stack.nft]);
});

test('the studio: an upload whose connection drops goes on from the server\'s offset when the browser is back online', async () => {
  await page.setViewportSize(DESKTOP);
  const clip = await makeTestVideo(tempDir('web-clip3'), { seconds: 4, size: '640x360', rate: 25, name: 'third.mp4' });
  const size = fs.statSync(clip).size;
  const tusLog = [];
  const onRequest = (r) => {
    if (r.method() === 'PATCH') tusLog.push(`PATCH ${r.headers()['upload-offset']}`);
  };
  const onResponse = (r) => {
    if (r.request().method() === 'HEAD' && r.headers()['upload-offset'] !== undefined) tusLog.push(`HEAD ${r.headers()['upload-offset']}`);
  };
  page.on('request', onRequest);
  page.on('response', onResponse);
  try {
    // The connection dies on the way: the browser's side fails, the origin's stays open.
    relay.setUploadRate(Math.max(20_000, size / 6));
    relay.holdOriginSide(true);
    await page.getByLabel('Title').fill('Resumed after a dropped connection');
    await page.getByLabel('Video file').setInputFiles(clip);
    await page.getByRole('button', { name: 'Create and upload' }).click();
    const card = page.locator('.studio-card', { hasText: 'Resumed after a dropped connection' });
    const upload = card.locator('[data-testid=upload]');
    await upload.waitFor();
    await page.waitForFunction((u) => Number(u.dataset.percent) > 0, await upload.elementHandle(), { timeout: 20_000 });
    await sleep(1_000);
    // The browser goes offline and its connection is reset; the origin's side stays open.
    await context.setOffline(true);
    relay.cutBrowserSide();
    await upload.locator('.upload-text', { hasText: 'The connection dropped at' }).waitFor({ timeout: 10_000 })
      .catch(async (e) => assert.fail(`${e.message}; ${await upload.innerText()}; tus requests: ${tusLog.join(', ')}`));
    await relay.settled();
    relay.setUploadRate(null);
    await sleep(500);
    const back = Date.now();
    await context.setOffline(false); // no click: the page goes on by itself
    const id = await card.getAttribute('data-id');
    await uploadFinished(id, 8_000, async () => `${await card.innerText()}; tus requests: ${tusLog.join(', ')}`);
    assert.ok(Date.now() - back < 8_000);
    const head = tusLog.findLastIndex((l) => l.startsWith('HEAD '));
    const at = Number(tusLog[head]?.slice(5));
    assert.ok(head > 0 && at > 0 && at < size && tusLog[head + 1] === `PATCH ${at}`, `resumed from the origin's offset: ${tusLog.join(', ')}`);
    await page.waitForFunction((i) => document.querySelector(`.studio-card[data-id="${i}"]`)?.dataset.status === 'ready', id, { timeout: 90_000, polling: 250 });
  } finally {
    await context.setOffline(false);
    relay.setUploadRate(null);
    relay.holdOriginSide(false);
    page.off('request', onRequest);
    page.off('response', onResponse);
  }
});

test('keyboard: the sign-out and sign-in buttons and the wallet chooser work with Tab and Enter', async () => {
  await page.goto(url('/'));
  await page.getByRole('button', { name: 'Sign out' }).focus();
  await page.keyboard.press('Enter');
  const signIn = page.getByRole('button', { name: 'Sign in with wallet' });
  await signIn.waitFor();
  await page.keyboard.press('Tab'); // to the skip link first, from the top of the page
  await signIn.focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Choose a wallet' });
  await dialog.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.closest('dialog') !== null), true, 'focus moved into the chooser');
  await page.keyboard.press('Enter'); // the first wallet: the one chosen last time
  await signedInAs(stack.creator.address);
});

test('the wallet switches account, or network: the session ends on the server, the page says so and signs in again', async () => {
  await page.setViewportSize(DESKTOP);
  const chooseTestWallet = () => page.getByRole('dialog', { name: 'Choose a wallet' }).getByRole('button', { name: 'StreamGate Test Wallet (anvil key)' }).click();
  const signInFromNotice = async () => {
    await page.locator('#notice').getByRole('button', { name: 'Sign in', exact: true }).click();
    await chooseTestWallet();
  };
  const storedToken = () => page.evaluate(() => JSON.parse(localStorage.getItem('streamgate.session')).token);
  const assertRevoked = async (token) => {
    const me = await api(stack.host.base, 'GET', '/api/v1/auth/me', { token });
    assert.equal(me.status, 401);
    assert.equal(me.json.code, 'token_revoked', 'ended on the server, not only forgotten by the page');
  };
  await page.goto(url('/'));
  await signedInAs(stack.creator.address);

  // The user picks another account in the wallet (EIP-1193 accountsChanged).
  let token = await storedToken();
  wallet.setKey(stack.holder.key);
  await wallet.emit(page, 'accountsChanged', [stack.holder.address.toLowerCase()]);
  await page.getByRole('button', { name: 'Sign in with wallet' }).waitFor();
  assert.match(await notice(), new RegExp(`Your wallet switched to account ${stack.holder.address}, so you were signed out of ${stack.creator.address}\\. Sign in again`));
  await assertRevoked(token);
  await signInFromNotice();
  await signedInAs(stack.holder.address);

  // Switched while the page was closed: found at the next load (eth_accounts).
  token = await storedToken();
  wallet.setKey(stack.creator.key);
  await page.reload();
  await page.locator('#notice .notice.error').waitFor();
  assert.match(await notice(), new RegExp(`Your wallet switched to account ${stack.creator.address}, so you were signed out of ${stack.holder.address}`));
  await assertRevoked(token);
  await signInFromNotice();
  await signedInAs(stack.creator.address);

  // The user switches the wallet to another network (chainChanged): signed out; signing in
  // again says the network is not accepted and offers the switch back.
  token = await storedToken();
  wallet.chainId = 1;
  await wallet.emit(page, 'chainChanged', '0x1');
  await page.getByRole('button', { name: 'Sign in with wallet' }).waitFor();
  assert.match(await notice(), /Your wallet switched to Ethereum, so you were signed out/);
  await assertRevoked(token);
  await signInFromNotice();
  await page.getByRole('button', { name: /Switch to local chain/ }).click();
  await chooseTestWallet();
  await signedInAs(stack.creator.address);
  assert.equal(wallet.chainId, CHAIN_ID);
});

test('the chain does not answer: the watch page says ownership could not be checked', async () => {
  wallet.setKey(stack.holder.key);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signInThroughPage();
  await signedInAs(stack.holder.address);
  // A video nobody has asked the chain about yet (no cached answer): the studio's, or a fresh
  // one when the studio test did not get that far.
  const fresh = studioVideoId ?? (await uploadReadyVideo(stack)).id;
  await stack.anvil.stop();
  await page.goto(url(`/watch/${fresh}`));
  await page.waitForFunction(() => document.querySelector('.stage')?.dataset.state === 'error', null, { timeout: 30_000 });
  assert.match(await page.locator('.watch-message').innerText(), /Ownership could not be checked right now because the blockchain did not answer/);
  await page.getByRole('button', { name: 'Try again' }).waitFor();
});

test('no Content-Security-Policy violation and no page error along the way', () => {
  assert.deepEqual(cspViolations, []);
  assert.deepEqual(pageErrors, []);
});
