"""Decode EVM revert data into a readable reason.

Covers the two built-in Solidity errors, ``Error(string)`` and ``Panic(uint256)``, and
custom errors when the contract's ABI is known (matched by 4-byte selector).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import function_signature_to_4byte_selector

ERROR_SELECTOR = bytes.fromhex("08c379a0")
PANIC_SELECTOR = bytes.fromhex("4e487b71")

PANIC_CODES = {
    0x00: "generic compiler panic",
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "corrupt storage byte array",
    0x31: "pop on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialized function",
}


def decode_revert(data: bytes, abi: Iterable[dict[str, Any]] = ()) -> str:
    """A human-readable reason for revert `data` (empty data gives 'reverted without reason')."""
    if not data:
        return "reverted without reason"
    selector, body = data[:4], data[4:]
    try:
        if selector == ERROR_SELECTOR:
            return str(decode(["string"], body)[0])
        if selector == PANIC_SELECTOR:
            code = int(decode(["uint256"], body)[0])
            return f"Panic(0x{code:02x}): {PANIC_CODES.get(code, 'unknown panic code')}"
        for error in abi:
            if error.get("type") == "error" and _selector(error) == selector:
                return _custom(error, body)
    except DecodingError:
        return f"undecodable revert data 0x{data.hex()}"
    return f"custom error 0x{selector.hex()} (pass the contract ABI to decode it)"


def _types(entry: dict[str, Any]) -> list[str]:
    return [str(item["type"]) for item in entry.get("inputs", [])]


def _selector(entry: dict[str, Any]) -> bytes:
    return bytes(
        function_signature_to_4byte_selector(f"{entry['name']}({','.join(_types(entry))})")
    )


def _custom(error: dict[str, Any], body: bytes) -> str:
    values = decode(_types(error), body)
    names = [item.get("name") or f"arg{i}" for i, item in enumerate(error.get("inputs", []))]
    args = ", ".join(f"{name}={value!r}" for name, value in zip(names, values, strict=True))
    return f"{error['name']}({args})"


def revert_data(exc: BaseException) -> bytes | None:
    """The revert data carried by a web3 exception, if any."""
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, bytes):
        return data
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None
