// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// An ERC-721 for the playback-gate tests: anyone may mint (test chain only).
contract GateNFT is ERC721 {
    constructor() ERC721("Gate NFT", "GNFT") {}

    function mint(address to, uint256 tokenId) external {
        _mint(to, tokenId);
    }
}
