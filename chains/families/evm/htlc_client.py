"""Calldata builders and decoders for the Covenant EVM HTLC contract.

Everything here is pure: it turns arguments into calldata (and ``msg.value``) and turns
return data, logs and revert data back into typed values, using the ABI from the
committed artifact ``chains/htlc/evm/HTLC.json``. It never signs or sends; the chain
adapter and the signer do that with the bytes returned here.

Deadline semantics (unix seconds, ``block.timestamp``): ``claim`` succeeds only while
``block.timestamp < deadline``; ``refund`` only when ``block.timestamp >= deadline``.
Amounts are integers in the token's base units (wei for the native coin).

Escrows are named by their sender and id: the contract keys them by
``keccak256(abi.encode(sender, id))`` (:func:`escrow_key`), so each locker has its own
id namespace. Every builder below that names an existing escrow takes both.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from chains.htlc.evm import CONTRACT_DIR
from config.errors import ChainError, TransactionReverted

ARTIFACT_PATH = CONTRACT_DIR / "HTLC.json"
NATIVE_COIN = "0x0000000000000000000000000000000000000000"
PREIMAGE_LEN = 32
CLAIM_GAS_NATIVE = 80_000
"""Execution gas a native ``claim`` gets, above the transaction's intrinsic cost. Measured
on anvil (solc 0.8.37, Prague rules): 49,665 paying an empty account (25,000 of it for
creating the account), 24,665 an existing one; the rest is margin."""
CLAIM_GAS_TOKEN = 200_000
"""Execution gas an ERC-20 ``claim`` gets. Measured on anvil: 56,306 with the test token
(a plain transfer plus four ``balanceOf`` reads); the rest is for tokens whose transfer
costs more (a proxy, blocklist checks, hooks)."""


class SwapState(enum.IntEnum):
    """``HTLC.State`` on chain."""

    EMPTY = 0
    LOCKED = 1
    CLAIMED = 2
    REFUNDED = 3


@dataclass(frozen=True)
class Swap:
    """The terms and state of one swap id, as returned by ``swaps(id)``."""

    sender: str
    recipient: str
    token: str
    amount: int
    hashlock: bytes
    deadline: int
    state: SwapState


@dataclass(frozen=True)
class LockedEvent:
    """``Locked(id, sender, recipient, token, amount, hashlock, deadline)``."""

    id: bytes
    sender: str
    recipient: str
    token: str
    amount: int
    hashlock: bytes
    deadline: int


@dataclass(frozen=True)
class ClaimedEvent:
    """``Claimed(key, preimage)``: the claim revealed the preimage on chain."""

    key: bytes
    preimage: bytes

    def __repr__(self) -> str:
        # The preimage is public once claimed, but reprs end up in logs; keep it out.
        return f"ClaimedEvent(key=0x{self.key.hex()}, preimage=<redacted>)"


@dataclass(frozen=True)
class RefundedEvent:
    """``Refunded(key)``."""

    key: bytes


HtlcEvent = LockedEvent | ClaimedEvent | RefundedEvent


class HtlcReverted(TransactionReverted):
    """The HTLC contract reverted with one of its custom errors."""

    def __init__(self, error: str, args: tuple[Any, ...]) -> None:
        super().__init__(f"HTLC reverted with {error}{_format_args(args)}", reason=error)
        self.error = error
        self.args_decoded = args


def _format_args(args: tuple[Any, ...]) -> str:
    shown = ("0x" + a.hex() if isinstance(a, bytes) else repr(a) for a in args)
    return "(" + ", ".join(shown) + ")"


# --- ABI plumbing ------------------------------------------------------------------------


def _signature(entry: dict[str, Any]) -> str:
    return f"{entry['name']}({','.join(item['type'] for item in entry['inputs'])})"


@dataclass(frozen=True)
class _Abi:
    functions: dict[str, dict[str, Any]]
    events: dict[bytes, dict[str, Any]]
    errors: dict[bytes, dict[str, Any]]


@cache
def _abi() -> _Abi:
    entries: list[dict[str, Any]] = json.loads(ARTIFACT_PATH.read_text(encoding="utf-8"))["abi"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_type.setdefault(entry["type"], []).append(entry)
    return _Abi(
        functions={e["name"]: e for e in by_type.get("function", [])},
        events={keccak(text=_signature(e)): e for e in by_type.get("event", [])},
        errors={keccak(text=_signature(e))[:4]: e for e in by_type.get("error", [])},
    )


def abi() -> list[dict[str, Any]]:
    """The contract ABI (for tools that want it whole)."""
    data: dict[str, Any] = json.loads(ARTIFACT_PATH.read_text(encoding="utf-8"))
    return list(data["abi"])


def bytecode() -> bytes:
    """Creation bytecode from the committed artifact (deploy it with no constructor args)."""
    data: dict[str, Any] = json.loads(ARTIFACT_PATH.read_text(encoding="utf-8"))
    return bytes.fromhex(str(data["bytecode"]).removeprefix("0x"))


def _calldata(name: str, values: Sequence[Any]) -> bytes:
    entry = _abi().functions[name]
    types = [item["type"] for item in entry["inputs"]]
    return keccak(text=_signature(entry))[:4] + encode(types, list(values))


def _bytes32(value: bytes, what: str) -> bytes:
    if len(value) != 32:
        raise ChainError(f"{what} must be 32 bytes, got {len(value)}")
    return value


# --- calldata -------------------------------------------------------------------------------


def lock_calldata(
    swap_id: bytes, *, recipient: str, hashlock: bytes, deadline: int, token: str, amount: int
) -> bytes:
    """Calldata for ``lock``; send it with ``value=lock_value(token, amount)``."""
    if amount <= 0:
        raise ChainError(f"amount must be a positive integer in base units, got {amount}")
    values = [
        _bytes32(swap_id, "swap id"),
        to_checksum_address(recipient),
        _bytes32(hashlock, "hashlock"),
        deadline,
        to_checksum_address(token),
        amount,
    ]
    return _calldata("lock", values)


def lock_value(token: str, amount: int) -> int:
    """``msg.value`` for a lock: the amount for the native coin, zero for an ERC-20."""
    return amount if int(token, 16) == 0 else 0


def escrow_key(sender: str, swap_id: bytes) -> bytes:
    """The contract's key of the escrow `sender` locked under `swap_id`:
    ``keccak256(abi.encode(sender, id))``, as ``HTLC.escrowKey`` computes it."""
    return keccak(encode(["address", "bytes32"], [to_checksum_address(sender), swap_id]))


def claim_gas(token: str) -> int:
    """The execution gas budget of a ``claim`` of `token` (:data:`NATIVE_COIN` or an
    ERC-20): a fixed figure, so a claim is built without sending its calldata (which holds
    the preimage) to any node for an estimate."""
    return CLAIM_GAS_NATIVE if int(token, 16) == 0 else CLAIM_GAS_TOKEN


def claim_calldata(swap_id: bytes, preimage: bytes, *, sender: str, min_payout: int) -> bytes:
    """Calldata for ``claim`` of `sender`'s escrow `swap_id`; refuses a preimage that is
    not exactly 32 bytes. `min_payout`: the least the recipient accepts of an ERC-20 (the
    locked amount unless the preimage is already public; see ``HTLC.claim``)."""
    _bytes32(preimage, "preimage")
    if min_payout < 0:
        raise ChainError(f"min_payout must be >= 0 base units, got {min_payout}")
    key = escrow_key(sender, _bytes32(swap_id, "swap id"))
    return _calldata("claim", [key, preimage, min_payout])


def raw_claim_calldata(key: bytes, preimage: bytes, min_payout: int = 0) -> bytes:
    """Calldata for ``claim`` of escrow `key` with any preimage length (for tests of the
    contract's checks)."""
    return _calldata("claim", [key, preimage, min_payout])


def refund_calldata(swap_id: bytes, *, sender: str) -> bytes:
    """Calldata for ``refund`` of `sender`'s escrow `swap_id`."""
    return _calldata("refund", [escrow_key(sender, _bytes32(swap_id, "swap id"))])


def swaps_calldata(swap_id: bytes, *, sender: str) -> bytes:
    """Calldata for the ``swaps(key)`` view of `sender`'s escrow `swap_id` (use with
    ``eth_call``)."""
    return _calldata("swaps", [escrow_key(sender, _bytes32(swap_id, "swap id"))])


# --- decoding -------------------------------------------------------------------------------


def decode_swap(return_data: bytes) -> Swap:
    """Decode the return data of ``swaps(id)``."""
    types = [item["type"] for item in _abi().functions["swaps"]["outputs"]]
    sender, recipient, token, amount, hashlock, deadline, state = decode(types, return_data)
    return Swap(
        to_checksum_address(sender),
        to_checksum_address(recipient),
        to_checksum_address(token),
        amount,
        hashlock,
        deadline,
        SwapState(state),
    )


def decode_event(topics: Sequence[bytes], data: bytes) -> HtlcEvent | None:
    """Decode one log of the HTLC contract; ``None`` if it is not one of its events."""
    entry = _abi().events.get(bytes(topics[0])) if topics else None
    if entry is None:
        return None
    values = _event_values(entry, topics, data)
    if entry["name"] == "Locked":
        return LockedEvent(**_normalize(values))
    if entry["name"] == "Claimed":
        return ClaimedEvent(values["key"], values["preimage"])
    return RefundedEvent(values["key"])


def _event_values(entry: dict[str, Any], topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
    indexed = [item for item in entry["inputs"] if item["indexed"]]
    plain = [item for item in entry["inputs"] if not item["indexed"]]
    values = {
        item["name"]: decode([item["type"]], bytes(topic))[0]
        for item, topic in zip(indexed, topics[1:], strict=True)
    }
    values.update(
        zip((i["name"] for i in plain), decode([i["type"] for i in plain], data), strict=True)
    )
    return values


def _normalize(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: to_checksum_address(value) if isinstance(value, str) else value
        for key, value in values.items()
    }


def decode_revert(revert_data: bytes) -> HtlcReverted | None:
    """Turn revert data into :class:`HtlcReverted`, or ``None`` if it is not ours."""
    entry = _abi().errors.get(bytes(revert_data[:4]))
    if entry is None:
        return None
    args = decode([item["type"] for item in entry["inputs"]], bytes(revert_data[4:]))
    return HtlcReverted(entry["name"], tuple(args))
