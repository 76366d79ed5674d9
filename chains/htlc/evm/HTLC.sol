// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Covenant hash-time-locked escrow for native coin and ERC-20 tokens.
/// @notice A sender locks funds under a SHA-256 hashlock until a deadline (unix seconds,
/// compared with block.timestamp). Anyone may claim with the 32-byte preimage while
/// block.timestamp < deadline; the funds always go to the recorded recipient. From
/// block.timestamp >= deadline on, anyone may refund, and the funds go back to the
/// sender. For every block exactly one of claim and refund is possible. An id is used
/// once: it can never be locked again, even after a claim or a refund.
contract HTLC {
    enum State {
        Empty,
        Locked,
        Claimed,
        Refunded
    }

    struct Swap {
        address sender;
        address recipient;
        address token; // address(0) = native coin
        uint64 deadline;
        State state;
        uint256 amount;
        bytes32 hashlock;
    }

    mapping(bytes32 => Swap) private _swaps;
    // Re-entrancy guard in transient storage (EIP-1153, Cancun): a token callback must not
    // lock, claim or refund while another call is moving tokens, or one balance delta
    // could be counted for two swaps.
    bool private transient _entered;

    event Locked(
        bytes32 indexed id,
        address indexed sender,
        address indexed recipient,
        address token,
        uint256 amount,
        bytes32 hashlock,
        uint256 deadline
    );
    event Claimed(bytes32 indexed id, bytes32 preimage);
    event Refunded(bytes32 indexed id);

    error SwapExists(bytes32 id);
    error SwapNotFound(bytes32 id);
    error SwapSettled(bytes32 id, State state);
    error InvalidRecipient();
    error ZeroAmount();
    error InvalidDeadline(uint256 deadline, uint256 timestamp);
    error WrongValue(uint256 expected, uint256 received);
    error NotAContract(address token);
    error TokenAmountMismatch(uint256 expected, uint256 received);
    error TokenTransferFailed(address token);
    error NativeTransferFailed(address to);
    error DeadlinePassed(uint256 deadline, uint256 timestamp);
    error DeadlineNotReached(uint256 deadline, uint256 timestamp);
    error InvalidPreimageLength(uint256 length);
    error WrongPreimage();
    error Reentrancy();

    modifier nonReentrant() {
        if (_entered) revert Reentrancy();
        _entered = true;
        _;
        _entered = false;
    }

    /// @notice Lock `amount` of `token` (0 = native coin, sent as msg.value) for `recipient`.
    /// @dev ERC-20: the contract must be approved for `amount`; tokens that take a fee on
    /// transfer are rejected because the escrow must hold exactly `amount`.
    function lock(
        bytes32 id,
        address recipient,
        bytes32 hashlock,
        uint256 deadline,
        address token,
        uint256 amount
    ) external payable nonReentrant {
        if (_swaps[id].state != State.Empty) revert SwapExists(id);
        if (recipient == address(0)) revert InvalidRecipient();
        if (amount == 0) revert ZeroAmount();
        if (deadline <= block.timestamp || deadline > type(uint64).max) {
            revert InvalidDeadline(deadline, block.timestamp);
        }
        uint256 expectedValue = token == address(0) ? amount : 0;
        if (msg.value != expectedValue) revert WrongValue(expectedValue, msg.value);
        // Effects before interactions: the id is taken before any token call can re-enter.
        _swaps[id] = Swap(msg.sender, recipient, token, uint64(deadline), State.Locked, amount, hashlock);
        if (token != address(0)) _pullToken(token, msg.sender, amount);
        emit Locked(id, msg.sender, recipient, token, amount, hashlock, deadline);
    }

    /// @notice Release the funds of `id` to its recipient; callable by anyone who knows the
    /// preimage, only while block.timestamp < deadline.
    function claim(bytes32 id, bytes calldata preimage) external nonReentrant {
        Swap storage swap = _requireLocked(id);
        if (block.timestamp >= swap.deadline) revert DeadlinePassed(swap.deadline, block.timestamp);
        if (preimage.length != 32) revert InvalidPreimageLength(preimage.length);
        if (sha256(preimage) != swap.hashlock) revert WrongPreimage();
        swap.state = State.Claimed;
        emit Claimed(id, bytes32(preimage));
        _pay(swap.token, swap.recipient, swap.amount);
    }

    /// @notice Return the funds of `id` to its sender; callable by anyone once
    /// block.timestamp >= deadline.
    function refund(bytes32 id) external nonReentrant {
        Swap storage swap = _requireLocked(id);
        if (block.timestamp < swap.deadline) revert DeadlineNotReached(swap.deadline, block.timestamp);
        swap.state = State.Refunded;
        emit Refunded(id);
        _pay(swap.token, swap.sender, swap.amount);
    }

    /// @notice The recorded terms and state of `id` (all zero and Empty if never locked).
    function swaps(bytes32 id)
        external
        view
        returns (
            address sender,
            address recipient,
            address token,
            uint256 amount,
            bytes32 hashlock,
            uint256 deadline,
            State state
        )
    {
        Swap storage swap = _swaps[id];
        return (swap.sender, swap.recipient, swap.token, swap.amount, swap.hashlock, swap.deadline, swap.state);
    }

    function _requireLocked(bytes32 id) private view returns (Swap storage swap) {
        swap = _swaps[id];
        if (swap.state == State.Empty) revert SwapNotFound(id);
        if (swap.state != State.Locked) revert SwapSettled(id, swap.state);
    }

    function _pay(address token, address to, uint256 amount) private {
        if (token == address(0)) {
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert NativeTransferFailed(to);
        } else {
            _callToken(token, abi.encodeWithSelector(0xa9059cbb, to, amount)); // transfer
        }
    }

    function _pullToken(address token, address from, uint256 amount) private {
        if (token.code.length == 0) revert NotAContract(token);
        uint256 before = _balanceOf(token);
        _callToken(token, abi.encodeWithSelector(0x23b872dd, from, address(this), amount)); // transferFrom
        uint256 received = _balanceOf(token) - before;
        if (received != amount) revert TokenAmountMismatch(amount, received);
    }

    function _balanceOf(address token) private view returns (uint256) {
        (bool ok, bytes memory ret) = token.staticcall(abi.encodeWithSelector(0x70a08231, address(this)));
        if (!ok || ret.length < 32) revert TokenTransferFailed(token);
        return abi.decode(ret, (uint256));
    }

    /// @dev Accepts tokens that return true and tokens that return nothing (e.g. USDT);
    /// rejects a revert, a false, or a malformed return value.
    function _callToken(address token, bytes memory data) private {
        (bool ok, bytes memory ret) = token.call(data);
        if (!ok) revert TokenTransferFailed(token);
        if (ret.length != 0 && (ret.length < 32 || !abi.decode(ret, (bool)))) revert TokenTransferFailed(token);
    }
}
