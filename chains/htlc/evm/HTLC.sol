// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Covenant hash-time-locked escrow for native coin and ERC-20 tokens.
/// @notice A sender locks funds under a SHA-256 hashlock until a deadline (unix seconds,
/// compared with block.timestamp). Anyone may claim with the 32-byte preimage while
/// block.timestamp < deadline; the funds always go to the recorded recipient. From
/// block.timestamp >= deadline on, anyone may refund, and the funds go back to the
/// sender. For every block exactly one of claim and refund is possible.
///
/// Escrows are keyed by `escrowKey(sender, id)`: each locker has its own id namespace, so
/// nobody can take an id another party published (a 1-wei lock under it would otherwise
/// make the real lock revert). A sender uses an id once: it can never lock it again, even
/// after a claim or a refund. `claim`, `refund` and `swaps` take the key.
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

    mapping(bytes32 key => Swap) private _swaps;
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
    event Claimed(bytes32 indexed key, bytes32 preimage);
    event Refunded(bytes32 indexed key);

    error SwapExists(bytes32 key);
    error SwapNotFound(bytes32 key);
    error SwapSettled(bytes32 key, State state);
    error InvalidRecipient();
    error ZeroAmount();
    error InvalidDeadline(uint256 deadline, uint256 timestamp);
    error WrongValue(uint256 expected, uint256 received);
    error NotAContract(address token);
    error TokenAmountMismatch(uint256 expected, uint256 received);
    error TokenTransferFailed(address token);
    error ShortPayout(uint256 minimum, uint256 received);
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

    /// @notice The key of the escrow `sender` locks under `id`.
    function escrowKey(address sender, bytes32 id) public pure returns (bytes32) {
        return keccak256(abi.encode(sender, id));
    }

    /// @notice Lock `amount` of `token` (0 = native coin, sent as msg.value) for `recipient`
    /// under `escrowKey(msg.sender, id)`, which is returned.
    /// @dev ERC-20: the contract must be approved for `amount`; tokens that take a fee on
    /// transfer are rejected because the escrow must hold exactly `amount`.
    function lock(
        bytes32 id,
        address recipient,
        bytes32 hashlock,
        uint256 deadline,
        address token,
        uint256 amount
    ) external payable nonReentrant returns (bytes32 key) {
        key = escrowKey(msg.sender, id);
        if (_swaps[key].state != State.Empty) revert SwapExists(key);
        if (recipient == address(0)) revert InvalidRecipient();
        if (amount == 0) revert ZeroAmount();
        if (deadline <= block.timestamp || deadline > type(uint64).max) {
            revert InvalidDeadline(deadline, block.timestamp);
        }
        uint256 expectedValue = token == address(0) ? amount : 0;
        if (msg.value != expectedValue) revert WrongValue(expectedValue, msg.value);
        // Effects before interactions: the key is taken before any token call can re-enter.
        _swaps[key] = Swap(msg.sender, recipient, token, uint64(deadline), State.Locked, amount, hashlock);
        if (token != address(0)) _pullToken(token, msg.sender, amount);
        emit Locked(id, msg.sender, recipient, token, amount, hashlock, deadline);
    }

    /// @notice Release the funds of escrow `key` to its recipient; callable by anyone who
    /// knows the preimage, only while block.timestamp < deadline. Reverts with ShortPayout
    /// if the recipient would receive less than `minPayout` of an ERC-20.
    /// @dev Why a minimum rather than always exactly `amount`: a token can start taking a
    /// fee on transfer after the lock (an owner switch, an upgrade). A claimer whose
    /// preimage is still secret passes `amount`: its claim fails in simulation, it reveals
    /// nothing and both sides refund. A claimer whose preimage is already public (the
    /// second claim of a swap) must not be shut out, or the other side would refund this
    /// escrow too and keep both legs; it passes what it will accept. Native coin always
    /// pays exactly `amount`.
    function claim(bytes32 key, bytes calldata preimage, uint256 minPayout) external nonReentrant {
        Swap storage swap = _requireLocked(key);
        if (block.timestamp >= swap.deadline) revert DeadlinePassed(swap.deadline, block.timestamp);
        if (preimage.length != 32) revert InvalidPreimageLength(preimage.length);
        if (sha256(preimage) != swap.hashlock) revert WrongPreimage();
        swap.state = State.Claimed;
        emit Claimed(key, bytes32(preimage));
        _pay(swap.token, swap.recipient, swap.amount, minPayout);
    }

    /// @notice Return the funds of escrow `key` to its sender; callable by anyone once
    /// block.timestamp >= deadline.
    /// @dev A refund takes whatever a fee-switched token delivers of `amount` (no
    /// minimum): the sender chose the token, and a minimum would leave the funds in the
    /// contract for as long as the fee stays on. Only a token that would take more than
    /// `amount` from the contract (a fee charged to the payer) makes it revert, since that
    /// fee would come out of other escrows.
    function refund(bytes32 key) external nonReentrant {
        Swap storage swap = _requireLocked(key);
        if (block.timestamp < swap.deadline) revert DeadlineNotReached(swap.deadline, block.timestamp);
        swap.state = State.Refunded;
        emit Refunded(key);
        _pay(swap.token, swap.sender, swap.amount, 0);
    }

    /// @notice The recorded terms and state of escrow `key` (all zero and Empty if never
    /// locked).
    function swaps(bytes32 key)
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
        Swap storage swap = _swaps[key];
        return (swap.sender, swap.recipient, swap.token, swap.amount, swap.hashlock, swap.deadline, swap.state);
    }

    function _requireLocked(bytes32 key) private view returns (Swap storage swap) {
        swap = _swaps[key];
        if (swap.state == State.Empty) revert SwapNotFound(key);
        if (swap.state != State.Locked) revert SwapSettled(key, swap.state);
    }

    /// @dev ERC-20 payouts are measured on both ends. The contract's balance must fall by
    /// at most `amount`: a token that charges the fee to the payer would otherwise pay it
    /// out of other escrows' funds. The recipient must gain at least `minPayout`.
    function _pay(address token, address to, uint256 amount, uint256 minPayout) private {
        if (token == address(0)) {
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert NativeTransferFailed(to);
            return;
        }
        uint256 held = _balanceOf(token, address(this));
        uint256 had = _balanceOf(token, to);
        _callToken(token, abi.encodeWithSelector(0xa9059cbb, to, amount)); // transfer
        uint256 left = _balanceOf(token, address(this));
        uint256 sent = held > left ? held - left : 0;
        if (sent > amount) revert TokenAmountMismatch(amount, sent);
        uint256 has = _balanceOf(token, to);
        uint256 received = has > had ? has - had : 0;
        if (received < minPayout) revert ShortPayout(minPayout, received);
    }

    function _pullToken(address token, address from, uint256 amount) private {
        if (token.code.length == 0) revert NotAContract(token);
        uint256 before = _balanceOf(token, address(this));
        _callToken(token, abi.encodeWithSelector(0x23b872dd, from, address(this), amount)); // transferFrom
        uint256 received = _balanceOf(token, address(this)) - before;
        if (received != amount) revert TokenAmountMismatch(amount, received);
    }

    function _balanceOf(address token, address owner) private view returns (uint256) {
        (bool ok, bytes memory ret) = token.staticcall(abi.encodeWithSelector(0x70a08231, owner));
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
