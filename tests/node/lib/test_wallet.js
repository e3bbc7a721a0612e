// TEST HELPER ONLY: an injected EIP-1193 wallet for the browser tests. It signs in the test
// process with a private key of the test's own (viem local account, EIP-191 personal_sign) and
// announces itself to the page like a browser extension does (EIP-6963, and window.ethereum).
// Not a wallet anyone should use: it signs whatever the page asks, unless the test says no.

import { hexToString } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

import { CHAIN_ID } from './fixtures.js';

let walletCounter = 0;

/**
 * Installs the test wallet into every page of `context` (call before opening pages). Returns a
 * controller: `address`, `chainId` (what eth_chainId answers; wallet_switchEthereumChain changes
 * it), `reject` (a method name whose requests the "user" declines with 4001), `setKey(key)`,
 * `requests` (every method the page asked for), and `emit(page, event, arg)`, which fires an
 * EIP-1193 event (`accountsChanged`, `chainChanged`) in `page` as the wallet would when its user
 * switches account or network.
 */
export async function installTestWallet(context, key, { name = 'StreamGate Test Wallet (anvil key)' } = {}) {
  const id = ++walletCounter;
  const wallet = {
    account: privateKeyToAccount(key),
    chainId: CHAIN_ID,
    reject: null,
    requests: [],
    get address() {
      return this.account.address;
    },
    setKey(k) {
      this.account = privateKeyToAccount(k);
    },
    emit(page, event, arg) {
      return page.evaluate(([f, e, a]) => window[f](e, a), [`__sgTestWallet${id}Emit`, event, arg]);
    },
  };
  await context.exposeFunction(`__sgTestWallet${id}`, async (method, params) => {
    wallet.requests.push(method);
    if (wallet.reject === method) return { error: { code: 4001, message: 'User rejected the request.' } };
    switch (method) {
      case 'eth_requestAccounts':
      case 'eth_accounts':
        return { result: [wallet.address.toLowerCase()] };
      case 'eth_chainId':
        return { result: `0x${wallet.chainId.toString(16)}` };
      case 'wallet_switchEthereumChain':
        wallet.chainId = Number.parseInt(params[0].chainId, 16);
        return { result: null };
      case 'personal_sign': {
        const [data, address] = params;
        if (address.toLowerCase() !== wallet.address.toLowerCase()) {
          return { error: { code: 4100, message: `not this wallet's account: ${address}` } };
        }
        const text = hexToString(data); // what a wallet shows the user
        return { result: await wallet.account.signMessage({ message: text }) };
      }
      default:
        return { error: { code: 4200, message: `the test wallet does not support ${method}` } };
    }
  });
  await context.addInitScript(
    ([fn, walletName, uuid]) => {
      const listeners = {};
      const provider = {
        isStreamGateTestWallet: true,
        async request({ method, params }) {
          const answer = await window[fn](method, params ?? []);
          if (answer.error) throw Object.assign(new Error(answer.error.message), { code: answer.error.code });
          if (method === 'wallet_switchEthereumChain') for (const f of listeners.chainChanged ?? []) f(params[0].chainId);
          return answer.result;
        },
        on(event, f) {
          (listeners[event] ??= []).push(f);
        },
        removeListener(event, f) {
          listeners[event] = (listeners[event] ?? []).filter((g) => g !== f);
        },
      };
      const icon = 'data:image/svg+xml,' + encodeURIComponent('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><rect width="8" height="8" fill="#c33"/></svg>');
      const announce = () =>
        window.dispatchEvent(new CustomEvent('eip6963:announceProvider', {
          detail: Object.freeze({ info: { uuid, name: walletName, icon, rdns: 'test.streamgate.wallet' }, provider }),
        }));
      window[`${fn}Emit`] = (event, arg) => {
        for (const f of listeners[event] ?? []) f(arg);
      };
      window.addEventListener('eip6963:requestProvider', announce);
      announce();
      window.ethereum ??= provider;
    },
    [`__sgTestWallet${id}`, name, `00000000-0000-4000-8000-${String(id).padStart(12, '0')}`],
  );
  return wallet;
}
