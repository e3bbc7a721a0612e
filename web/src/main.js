// StreamGate's web app: a tiny router over three pages (browse, watch, studio), the account
// area in the header, and one notice line for what went wrong and what to do next.

import './style.css';

import { api, endSession, onSessionChange, session } from './api.js';
import { $, el } from './dom.js';
import { chainName, shortAddress } from './chains.js';
import { WalletError, followStoredSession, signIn, signOut, walletChange } from './wallet.js';

const main = $('#main');
let leave = null; // the current page's cleanup

/** Shows `message` (with an optional `{ label, run }` action) in the notice line. */
export function notify(message, { action, kind = 'info' } = {}) {
  const box = $('#notice');
  box.replaceChildren();
  if (!message) return;
  box.append(
    el('div', { class: `notice ${kind}` },
      el('p', {}, message),
      action ? el('button', { type: 'button', onclick: () => { notify(''); action.run(); } }, action.label) : '',
      el('button', { type: 'button', class: 'secondary', 'aria-label': 'Dismiss message', onclick: () => notify('') }, '×')),
  );
}

/** Signs in, telling the user what happened; resolves to the session or null. */
export async function startSignIn() {
  notify('Check your wallet to connect and sign in…');
  try {
    const s = await signIn();
    notify('');
    return s;
  } catch (e) {
    if (e instanceof WalletError) {
      if (e.kind === 'cancelled') notify('');
      else {
        const action = e.action
          ? { label: e.action.label, run: () => e.action.run().then(() => notify(''), (err) => notify(err.message, { kind: 'error' })) }
          : { label: 'Try again', run: startSignIn };
        notify(e.message, { kind: 'error', action });
      }
    } else notify(`Sign-in failed: ${e?.message ?? e}`, { kind: 'error' });
    return null;
  }
}

function renderAccount() {
  const box = $('#account');
  const s = session();
  box.replaceChildren(
    s
      ? el('div', { class: 'account' },
          el('span', { class: 'address', title: s.address, 'data-testid': 'address' }, shortAddress(s.address)),
          el('button', { type: 'button', class: 'secondary', onclick: () => signOut() }, 'Sign out'))
      : el('button', { type: 'button', onclick: startSignIn }, 'Sign in with wallet'),
  );
}

onSessionChange((s, why) => {
  renderAccount();
  if (!s && why === 'expired') notify('Your session has ended. Sign in again to continue.', { kind: 'error', action: { label: 'Sign in', run: startSignIn } });
  if (!s && why === 'revoked') notify('You were signed out (the session was revoked). Sign in again to continue.', { kind: 'error', action: { label: 'Sign in', run: startSignIn } });
  if (!s && why === 'signed_out') notify('You are signed out.');
  if (!s && why === 'wallet_changed') {
    const c = walletChange ?? {};
    const what = c.chainId !== undefined
      ? `Your wallet switched to ${chainName(c.chainId)}`
      : c.address ? `Your wallet switched to account ${c.address}` : 'Your wallet disconnected its account';
    notify(`${what}, so you were signed out${c.was ? ` of ${c.was}` : ''}. Sign in again to continue${c.address || c.chainId !== undefined ? ' with it' : ''}.`, { kind: 'error', action: { label: 'Sign in', run: startSignIn } });
  }
  route();
});

// ---- routing ----

export function navigate(path) {
  history.pushState(null, '', path);
  route();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest?.('a[href]');
  if (!a || a.target || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
  if (url.hash && url.pathname === location.pathname) return; // in-page link (skip link)
  e.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', route);

let routing = 0;
async function route() {
  const my = ++routing;
  leave?.();
  leave = null;
  const path = location.pathname.replace(/\/+$/, '') || '/';
  for (const a of document.querySelectorAll('nav a')) {
    const current = a.getAttribute('href') === path || (a.getAttribute('href') === '/' && path === '/browse');
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  let page;
  const watch = /^\/watch\/([A-Za-z0-9_-]+)$/.exec(path);
  if (watch) page = (await import('./watch.js')).watchPage(watch[1]);
  else if (path === '/studio') page = (await import('./studio.js')).studioPage();
  else if (path === '/' || path === '/browse') page = (await import('./browse.js')).browsePage();
  else page = { title: 'Not found', node: el('section', {}, el('h1', {}, 'Page not found'), el('p', {}, el('a', { href: '/' }, 'Browse videos'))) };
  if (my !== routing) return page.leave?.();
  leave = page.leave ?? null;
  document.title = `${page.title} · StreamGate`;
  main.replaceChildren(page.node);
}

renderAccount();
route();
// A stored session may have been revoked elsewhere: ask once (a 401 ends it, with a message).
if (session()) api('GET', '/api/v1/auth/me').catch(() => {});
followStoredSession();
// The session's end, while the page stays open.
setInterval(() => {
  const raw = localStorage.getItem('streamgate.session');
  if (raw && !session()) endSession('expired');
}, 30_000);
