// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title DevToken
/// @notice A plain ERC-20 for the local devnet and tests (a stand-in for a campaign's reward token or a quote
///         asset such as USDT). Only the deployer can mint; there is no owner transfer, pause or blacklist.
contract DevToken is ERC20 {
    address public immutable minter;
    uint8 private immutable _decimals;

    error NotMinter(address caller);

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20(name_, symbol_) {
        minter = msg.sender;
        _decimals = decimals_;
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    function mint(address to, uint256 amount) external {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        _mint(to, amount);
    }
}
