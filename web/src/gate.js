import { chainName, shortAddress } from './chains.js';

const STANDARD = { erc721: 'ERC-721', erc1155: 'ERC-1155', erc20: 'ERC-20' };

/** "holders of <contract> on <chain>", one line per rule; public when there are none. */
export function gateText(gate) {
  if (!gate || gate.length === 0) return 'Anyone signed in with a wallet (public video)';
  return gate.map(ruleText).join(', or ');
}

export function ruleText(r) {
  const what = r.token_id !== undefined && r.token_id !== null ? ` token #${r.token_id}` : '';
  const min = r.min_balance && r.min_balance !== '1' ? `at least ${r.min_balance} of ` : '';
  return `holders of ${min}${STANDARD[r.standard] ?? r.standard}${what} ${r.contract} on ${chainName(r.chain_id)}`;
}

export function gateShort(gate) {
  if (!gate || gate.length === 0) return 'Public';
  const r = gate[0];
  return `Holders of ${shortAddress(r.contract)} on ${chainName(r.chain_id)}${gate.length > 1 ? ` (+${gate.length - 1})` : ''}`;
}
