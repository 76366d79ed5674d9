"""Convert web3.py, aiohttp and eth-tester errors into the ChainError tree."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Iterable
from typing import Any

import aiohttp
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    RequestTimedOut,
    TimeExhausted,
    Web3RPCError,
)

from chains._revert import decode_revert, revert_data
from chains.base import NonceTooLow
from config.errors import (
    ChainError,
    ChainTimeout,
    InsufficientFunds,
    RpcUnreachable,
    TransactionReverted,
)

_UNREACHABLE = (
    aiohttp.ClientError,
    ConnectionError,
    ProviderConnectionError,
    RequestTimedOut,
    asyncio.TimeoutError,
)


def map_error(exc: BaseException, where: str, abi: Iterable[dict[str, Any]] = ()) -> ChainError:
    """The ChainError that says what `exc` means; `where` names the endpoint or call."""
    if isinstance(exc, ChainError):
        return exc
    if isinstance(exc, _UNREACHABLE):
        return RpcUnreachable(
            f"{where}: endpoint unreachable ({exc.__class__.__name__}); check that the node "
            "is running and the rpc URL is right"
        )
    if isinstance(exc, TimeExhausted):
        return ChainTimeout(f"{where}: {exc}")
    return _reverted(exc, where, abi) or _by_message(exc, where)


def _by_message(exc: BaseException, where: str) -> ChainError:
    message = _rpc_message(exc)
    lowered = message.lower()
    if "insufficient funds" in lowered or "does not have enough balance" in lowered:
        return InsufficientFunds(f"{where}: {message}; fund the sender or lower the amount")
    # "Underpriced replacement": the node holds another transaction with this nonce and
    # refused ours, which is as final for these bytes as a used nonce.
    if (
        "nonce too low" in lowered
        or "replacement transaction underpriced" in lowered
        or _tester_nonce_too_low(lowered)
    ):
        return NonceTooLow(f"{where}: {message}")
    return ChainError(f"{where}: {exc.__class__.__name__}: {message}")


def _reverted(exc: BaseException, where: str, abi: Iterable[dict[str, Any]]) -> ChainError | None:
    if isinstance(exc, ContractLogicError):
        data = revert_data(exc)
        reason = decode_revert(data, abi) if data is not None else str(exc.message)
        return TransactionReverted(f"{where}: reverted: {reason}", reason=reason)
    if isinstance(exc, Web3RPCError) and "revert" in _rpc_message(exc).lower():
        data = _rpc_data(exc)
        reason = decode_revert(data, abi) if data is not None else _rpc_message(exc)
        return TransactionReverted(f"{where}: reverted: {reason}", reason=reason)
    if exc.__class__.__name__ == "TransactionFailed":  # eth-tester, imported lazily
        reason = _tester_reason(str(exc.args[0]) if exc.args else "", abi)
        return TransactionReverted(f"{where}: reverted: {reason}", reason=reason)
    return None


def _tester_reason(message: str, abi: Iterable[dict[str, Any]]) -> str:
    # eth-tester decodes Error(string) itself and otherwise gives repr(bytes) of the data.
    text = message.removeprefix("execution reverted: ")
    if text.startswith(("b'", 'b"')):
        try:
            data = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(data, bytes):
            return decode_revert(data, abi)
    return text or "reverted without reason"


def _tester_nonce_too_low(message: str) -> bool:
    # eth-tester: "Invalid transaction nonce: Expected 3, but got 1"
    numbers = [int(word.strip(",.")) for word in message.split() if word.strip(",.").isdigit()]
    return "invalid transaction nonce" in message and len(numbers) == 2 and numbers[1] < numbers[0]


def _rpc_data(exc: Web3RPCError) -> bytes | None:
    error = exc.rpc_response.get("error") if isinstance(exc.rpc_response, dict) else None
    data = error.get("data") if isinstance(error, dict) else None
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


def _rpc_message(exc: BaseException) -> str:
    if isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, dict):
        error = exc.rpc_response.get("error")
        if isinstance(error, dict):
            return str(error.get("message", exc))
    return str(exc)
