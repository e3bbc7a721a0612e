// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// A minimal smart-contract wallet for the sign-in tests: one owner, and EIP-1271
/// `isValidSignature(hash, signature)` answers the magic value iff the owner signed `hash`.
///
/// A sign-in server passes as `hash` the EIP-191 (personal_sign) digest of the SIWE text, and
/// the owner personal_signs that text: its signature is over that very digest. So the wallet
/// checks the raw `hash` and must not prefix or hash it again (a wallet that did would refuse
/// every personal_sign signature). `SignatureChecker` also accepts an owner that is itself an
/// EIP-1271 contract.
contract OwnedWallet is IERC1271 {
    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view override returns (bytes4) {
        return SignatureChecker.isValidSignatureNow(owner, hash, signature)
            ? IERC1271.isValidSignature.selector
            : bytes4(0xffffffff);
    }
}
