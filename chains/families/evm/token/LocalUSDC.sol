// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title A 6-decimal USDC-like token for local chains only: anyone may mint.
/// @notice `devnet up` places this contract's runtime code at a fixed address with
/// `anvil_setCode`, so nothing its constructor writes to storage survives: the name and
/// symbol are constants here instead of OpenZeppelin's storage strings. The EIP-712 name
/// of ERC20Permit is an immutable (in the code) and its domain separator is rebuilt for
/// the address the code runs at, so EIP-2612 permits work there as on USDC.
contract LocalUSDC is ERC20, ERC20Permit {
    constructor() ERC20("", "") ERC20Permit("USD Coin") {}

    function name() public pure override returns (string memory) {
        return "USD Coin";
    }

    function symbol() public pure override returns (string memory) {
        return "USDC";
    }

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Local chains only: the devnet faucet mints to the agents it funds.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
