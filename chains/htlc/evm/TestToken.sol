// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Minimal ERC-20 for tests. With `returnsBool = false` its transfer functions
/// return no data, like USDT on Ethereum mainnet, to exercise safe-transfer handling;
/// a non-zero `fee` is burnt from every transfer, like fee-on-transfer tokens (taken from
/// the amount the recipient gets, or with `setFee(fee, true)` charged to the payer on top
/// of it), and `setFee` may switch it on at any time, like an owner-controlled fee; a hook set
/// with `setHook` is called once during the next transfer, like an ERC-777 callback, and
/// its outcome is kept in `hookOk` / `hookResult` for the test to inspect.
contract TestToken {
    string public name;
    string public symbol;
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    bool public immutable returnsBool;
    uint256 public fee;
    bool public feeFromPayer;
    address public hookTarget;
    bytes public hookData;
    bool public hookOk;
    bytes public hookResult;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(string memory name_, string memory symbol_, bool returnsBool_) {
        name = name_;
        symbol = symbol_;
        returnsBool = returnsBool_;
    }

    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function setFee(uint256 fee_) external {
        fee = fee_;
        feeFromPayer = false;
    }

    function setFee(uint256 fee_, bool fromPayer) external {
        fee = fee_;
        feeFromPayer = fromPayer;
    }

    function setHook(address target, bytes calldata data) external {
        hookTarget = target;
        hookData = data;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        _return();
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        allowance[from][msg.sender] -= amount;
        _move(from, to, amount);
        _return();
        return true;
    }

    function _move(address from, address to, uint256 amount) private {
        uint256 delivered = feeFromPayer ? amount : amount - fee;
        balanceOf[from] -= delivered + fee;
        balanceOf[to] += delivered;
        totalSupply -= fee;
        emit Transfer(from, to, delivered);
        address target = hookTarget;
        if (target != address(0)) {
            hookTarget = address(0);
            (hookOk, hookResult) = target.call(hookData);
        }
    }

    function _return() private view {
        if (!returnsBool) {
            assembly {
                return(0, 0)
            }
        }
    }
}
