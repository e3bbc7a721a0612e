// The EIP-1271 test wallet (contracts/OwnedWallet.sol): compiled at test time with solc-js
// against @openzeppelin/contracts from node_modules, deployed on anvil with viem.

import fs from 'node:fs';
import path from 'node:path';

import solc from 'solc';
import { createPublicClient, createWalletClient, getAddress, hashMessage, http } from 'viem';
import { foundry } from 'viem/chains';

import { NODE_DIR } from './fixtures.js';

const CONTRACTS = path.join(NODE_DIR, 'contracts');
const NODE_MODULES = path.join(NODE_DIR, 'node_modules');

/** Compiles `contracts/<name>.sol`; returns `{ abi, bytecode }`. Throws on any compiler error. */
export function compile(name = 'OwnedWallet') {
  const file = `${name}.sol`;
  const input = {
    language: 'Solidity',
    sources: { [file]: { content: fs.readFileSync(path.join(CONTRACTS, file), 'utf8') } },
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: 'cancun',
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  };
  const findImports = (importPath) => {
    const resolved = path.resolve(NODE_MODULES, importPath);
    if (!resolved.startsWith(NODE_MODULES + path.sep) || !fs.existsSync(resolved)) {
      return { error: `not found: ${importPath}` };
    }
    return { contents: fs.readFileSync(resolved, 'utf8') };
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) throw new Error(`solc: ${errors.map((e) => e.formattedMessage).join('\n')}`);
  const contract = output.contracts[file][name];
  return { abi: contract.abi, bytecode: `0x${contract.evm.bytecode.object}` };
}

/**
 * Deploys an `OwnedWallet` owned by `owner`, from one of anvil's unlocked accounts.
 * Returns `{ address, abi, isValidSignature(text, signature) }`; the last one asks the
 * contract directly (eth_call), as a check of the test's own setup.
 */
export async function deployWallet(anvil, owner, compiled = compile()) {
  const transport = http(anvil.url);
  const publicClient = createPublicClient({ chain: foundry, transport });
  const [deployer] = await publicClient.request({ method: 'eth_accounts' });
  const walletClient = createWalletClient({ account: deployer, chain: foundry, transport });
  const hash = await walletClient.deployContract({ abi: compiled.abi, bytecode: compiled.bytecode, args: [owner] });
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== 'success' || !receipt.contractAddress) {
    throw new Error(`wallet deployment failed: ${JSON.stringify(receipt)}`);
  }
  const address = getAddress(receipt.contractAddress);
  return {
    address,
    abi: compiled.abi,
    owner: () => publicClient.readContract({ address, abi: compiled.abi, functionName: 'owner' }),
    isValidSignature: (text, signature) =>
      publicClient.readContract({
        address,
        abi: compiled.abi,
        functionName: 'isValidSignature',
        args: [hashMessage(text), signature],
      }),
  };
}
