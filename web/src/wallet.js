// Wallets: EIP-6963 discovery (several injected wallets, the user chooses), EIP-1193 requests,
// and Sign-In with Ethereum (EIP-4361) through POST /api/v1/auth/nonce and /verify.

import { keccak_256 } from '@noble/hashes/sha3';
import { bytesToHex } from '@noble/hashes/utils';

import { ApiError, api, config, endSession, saveSession, session } from './api.js';
import { chainName } from './chains.js';
import { el } from './dom.js';

const announced = new Map(); // uuid -> { info, provider }
window.addEventListener('eip6963:announceProvider', (e) => {
  const d = e.detail;
  if (d?.info?.uuid && d.provider) announced.set(d.info.uuid, d);
});
window.dispatchEvent(new Event('eip6963:requestProvider'));

/** What the user can connect: announced wallets, or the legacy window.ethereum. */
export function wallets() {
  const list = [...announced.values()];
  if (list.length === 0 && window.ethereum) {
    list.push({ info: { uuid: 'injected', name: 'Browser wallet', icon: '', rdns: '' }, provider: window.ethereum });
  }
  return list;
}

let current = null; // the provider in use this page load
const PREFERRED_KEY = 'streamgate.wallet';

/** A user-facing failure: a sentence and, where there is one, a way forward. */
export class WalletError extends Error {
  constructor(kind, message, action) {
    super(message);
    this.kind = kind;
    this.action = action; // { label, run } or undefined
  }
}

/** EIP-55 checksum of a 0x address (the SIWE message must carry it). */
export function checksum(address) {
  const lower = address.toLowerCase().replace(/^0x/, '');
  const hash = bytesToHex(keccak_256(new TextEncoder().encode(lower)));
  let out = '0x';
  for (let i = 0; i < 40; i++) out += parseInt(hash[i], 16) >= 8 ? lower[i].toUpperCase() : lower[i];
  return out;
}

/** Lets the user pick one of several wallets (a modal dialog); resolves to it, or null. */
function choose(list) {
  if (list.length === 1) return Promise.resolve(list[0]);
  return new Promise((resolve) => {
    const dialog = el('dialog', { class: 'chooser', 'aria-labelledby': 'chooser-title' },
      el('h2', { id: 'chooser-title' }, 'Choose a wallet'),
      el('ul', {}, ...list.map((w) =>
        el('li', {}, el('button', { type: 'button', onclick: () => done(w) },
          w.info.icon ? el('img', { src: w.info.icon, alt: '', width: 24, height: 24 }) : '',
          w.info.name)))),
      el('button', { type: 'button', class: 'secondary', onclick: () => done(null) }, 'Cancel'));
    const done = (w) => {
      dialog.close();
      dialog.remove();
      resolve(w);
    };
    dialog.addEventListener('cancel', () => done(null));
    document.body.append(dialog);
    dialog.showModal();
  });
}

function rejected(e) {
  return e?.code === 4001 || e?.code === 'ACTION_REJECTED';
}

/**
 * Connects a wallet (asking which one when there are several) and signs in. Resolves to the
 * session; throws WalletError with what to do.
 */
export async function signIn() {
  const list = wallets();
  if (list.length === 0) {
    throw new WalletError('no_wallet', 'No wallet was found in this browser. Install a browser wallet (an extension or a wallet app\'s browser), then reload this page.');
  }
  const preferred = list.find((w) => w.info.uuid === localStorage.getItem(PREFERRED_KEY));
  const wallet = preferred && list.length > 1 ? await choose([preferred, ...list.filter((w) => w !== preferred)]) : await choose(list);
  if (!wallet) throw new WalletError('cancelled', 'Sign-in cancelled.');
  localStorage.setItem(PREFERRED_KEY, wallet.info.uuid);
  current = wallet.provider;
  const provider = wallet.provider;

  let accounts;
  try {
    accounts = await provider.request({ method: 'eth_requestAccounts' });
  } catch (e) {
    if (rejected(e)) throw new WalletError('rejected', 'You declined the connection request in your wallet. Nothing was shared; sign in again when you are ready.');
    throw new WalletError('wallet', `Your wallet could not connect: ${e?.message ?? e}`);
  }
  if (!accounts?.length) throw new WalletError('wallet', 'Your wallet shared no account. Unlock it, then sign in again.');
  const address = checksum(accounts[0]);

  const chainId = Number(await provider.request({ method: 'eth_chainId' }));
  const { chains } = await config();
  if (chains.length > 0 && !chains.includes(chainId)) {
    const target = chains[0];
    throw new WalletError(
      'wrong_network',
      `Your wallet is on ${chainName(chainId)}, which StreamGate does not accept for sign-in. Switch to ${chains.map(chainName).join(' or ')}.`,
      { label: `Switch to ${chainName(target)}`, run: () => switchChain(provider, target) },
    );
  }

  let nonce;
  try {
    ({ nonce } = await api('POST', '/api/v1/auth/nonce', { json: { address }, auth: false }));
  } catch (e) {
    throw new WalletError('api', e.message);
  }
  const message = siweMessage({ address, chainId, nonce });
  let signature;
  try {
    signature = await provider.request({ method: 'personal_sign', params: [utf8Hex(message), address] });
  } catch (e) {
    if (rejected(e)) throw new WalletError('rejected', 'You declined the signature request in your wallet, so you are not signed in. Nothing was signed or sent; sign in again when you are ready.');
    throw new WalletError('wallet', `Your wallet could not sign: ${e?.message ?? e}`);
  }
  try {
    const s = await api('POST', '/api/v1/auth/verify', { json: { message, signature }, auth: false });
    saveSession({ ...s, chain_id: chainId });
    follow(provider);
    return s;
  } catch (e) {
    if (e instanceof ApiError && e.code === 'chain_not_supported') {
      throw new WalletError('wrong_network', `StreamGate does not accept sign-in on ${chainName(chainId)}. Switch your wallet to another network and sign in again.`);
    }
    throw new WalletError('api', e.message);
  }
}

async function switchChain(provider, chainId) {
  try {
    await provider.request({ method: 'wallet_switchEthereumChain', params: [{ chainId: '0x' + chainId.toString(16) }] });
  } catch (e) {
    if (rejected(e)) throw new WalletError('rejected', 'You declined the network switch in your wallet.');
    throw new WalletError('wallet', `Switch your wallet to ${chainName(chainId)} yourself, then sign in again (${e?.message ?? e}).`);
  }
  return signIn();
}

function utf8Hex(text) {
  return '0x' + bytesToHex(new TextEncoder().encode(text));
}

/** The EIP-4361 message: this page's own origin is the domain and the URI. */
export function siweMessage({ address, chainId, nonce }) {
  const now = new Date();
  return [
    `${location.host} wants you to sign in with your Ethereum account:`,
    address,
    '',
    'Sign in to StreamGate to watch and publish videos.',
    '',
    `URI: ${location.origin}`,
    'Version: 1',
    `Chain ID: ${chainId}`,
    `Nonce: ${nonce}`,
    `Issued At: ${now.toISOString()}`,
  ].join('\n');
}

/** Server-side logout (the token is revoked), then forgets it here with `why`. */
export async function signOut(why = 'signed_out') {
  if (session()) {
    try {
      await api('POST', '/api/v1/auth/logout');
    } catch {
      // An expired or revoked token is signed out already.
    }
  }
  endSession(why);
  current = null;
}

// ---- the wallet changes under the session ----
//
// The session belongs to the account that signed in, on the chain it signed in on. A wallet
// that switches account (EIP-1193 `accountsChanged`, or none: locked, disconnected) or chain
// (`chainChanged`) would otherwise leave the page acting for someone the wallet no longer shows,
// so the session is ended on the server and the page says why.

/** What ended it, for the notice: `{ address, chainId }` of the change. */
export let walletChange = null;
const followed = new WeakSet();

function follow(provider) {
  current = provider;
  if (!provider?.on || followed.has(provider)) return;
  followed.add(provider);
  provider.on('accountsChanged', (accounts) => {
    const s = session();
    if (!s || provider !== current) return;
    const next = accounts?.[0] ? checksum(accounts[0]) : null;
    if (next === s.address) return;
    walletChange = { address: next, was: s.address };
    signOut('wallet_changed');
  });
  provider.on('chainChanged', (hex) => {
    const s = session();
    if (!s || provider !== current) return;
    const chainId = Number(hex);
    if (s.chain_id === undefined || chainId === s.chain_id) return;
    walletChange = { chainId, wasChain: s.chain_id };
    signOut('wallet_changed');
  });
}

/**
 * At load, with a stored session: follows the wallet last used, and ends the session if that
 * wallet already shows another account (switched while the page was closed).
 */
export function followStoredSession() {
  const s = session();
  if (!s) return;
  const list = wallets();
  const wallet = list.find((w) => w.info.uuid === localStorage.getItem(PREFERRED_KEY)) ?? (list.length === 1 ? list[0] : null);
  if (!wallet) return;
  follow(wallet.provider);
  wallet.provider.request({ method: 'eth_accounts' }).then((accounts) => {
    const now = session();
    const next = accounts?.[0] ? checksum(accounts[0]) : null;
    // No account shared without asking is a locked wallet, not a switch: keep the session.
    if (now && next && next !== now.address) {
      walletChange = { address: next, was: now.address };
      signOut('wallet_changed');
    }
  }, () => {});
}

export const provider = () => current;
