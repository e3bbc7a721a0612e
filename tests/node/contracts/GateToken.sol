// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// An ERC-20 for the playback-gate tests: anyone may mint (test chain only).
contract GateToken is ERC20 {
    constructor() ERC20("Gate Token", "GATE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
