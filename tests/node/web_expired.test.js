// The watch page when the signed playback URLs expire before the player uses them: the host
// signs segment tokens that last 2 s at most (playback_session_max_secs), and the browser's
// requests to the media origin (no clock leeway) are held back 3 s (a slow network, simulated with playwright's
// request routing; the origin's 403 token_expired is real). The page says the link expired and
// "Continue watching" gets new URLs, and then the video plays. The wallet is the test helper
// of lib/test_wallet.js (an anvil key).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { assertBrowserAvailable, launchChromium } from './lib/browser.js';
import { sleep } from './lib/fixtures.js';
import { startPlaybackStack, uploadReadyVideo } from './lib/playback.js';
import { installTestWallet } from './lib/test_wallet.js';

let stack;
let video;
let context;

before(async () => {
  assertBrowserAvailable();
  stack = await startPlaybackStack({
    hostVars: { playback_token_secs: '2', playback_session_max_secs: '2' },
    originArgs: ['--token-leeway-secs', '0'],
  });
  video = await uploadReadyVideo(stack);
  context = await launchChromium();
  await installTestWallet(context, stack.holder.key);
});

after(async () => {
  await context?.close().catch(() => {});
  await stack?.stop();
});

test('an expired viewing link is explained, and "Continue watching" plays on with new URLs', async () => {
  const page = await context.newPage();
  const refused = [];
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(m.text()));
  page.on('response', (r) => {
    if (r.url().startsWith(`${stack.origin.base}/media/`) && r.status() === 403) refused.push(r.url());
  });
  let slow = true;
  await page.route(`${stack.origin.base}/media/**`, async (route) => {
    if (slow) await sleep(3_000);
    await route.continue();
  });
  await page.goto(`${stack.host.base}/watch/${video.id}`);
  await page.getByRole('button', { name: 'Sign in to watch' }).click();
  await page
    .waitForFunction(() => document.querySelector('.stage')?.dataset.state === 'expired', null, { timeout: 40_000, polling: 100 })
    .catch(async (e) => {
      const state = await page.evaluate(() => ({ state: document.querySelector('.stage')?.dataset.state, text: document.querySelector('#main')?.innerText, notice: document.querySelector('#notice')?.innerText }));
      assert.fail(`${e.message}\n${JSON.stringify(state)}\nrefused: ${refused.join(' ')}\nconsole: ${consoleLines.join('\n')}`);
    });
  assert.ok(refused.length > 0, 'the origin refused the late requests (403)');
  assert.match(await page.locator('.watch-message').innerText(), /Your viewing link has expired/);

  slow = false;
  await page.getByRole('button', { name: 'Continue watching' }).click();
  await page.waitForFunction(() => document.getElementById('player')?.currentTime > 1, null, { timeout: 30_000, polling: 100 });
  assert.equal(await page.locator('.stage').getAttribute('data-state'), 'playing');
  assert.equal(await page.evaluate(() => document.getElementById('player').error), null);
});
