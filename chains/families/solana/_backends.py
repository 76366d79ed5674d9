"""Where the Solana adapter's calls go: a JSON-RPC endpoint (over aiohttp) or an
in-process LiteSVM ledger. Both answer in plain values, so the adapter's logic is
one code path; errors arrive already converted to the ChainError tree."""

from __future__ import annotations

import base64
import itertools
from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import aiohttp
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from chains import _retry
from chains.families.solana._svm import RpcFailure, SvmLedger
from config.errors import ChainError, RpcUnreachable


class AccountData(NamedTuple):
    """An account's lamports, owner program and data."""

    lamports: int
    owner: str
    data: bytes


class SimResult(NamedTuple):
    """simulateTransaction's answer: err (None when it succeeded), logs, compute units."""

    err: Any
    logs: list[str]
    units: int | None


class SigStatus(NamedTuple):
    """getSignatureStatuses' answer for one signature."""

    slot: int
    err: Any
    confirmation: str


class SolanaBackend(ABC):
    """The RPC methods the Solana adapter needs."""

    on_error: _retry.ErrorHook | None = None
    """Told of every failed read; the adapter sets its own :meth:`rpc_error` here."""

    @abstractmethod
    async def genesis_hash(self) -> str: ...

    @abstractmethod
    async def latest_blockhash(self, commitment: str) -> tuple[Hash, int]: ...

    @abstractmethod
    async def balance(self, address: Pubkey, commitment: str) -> int: ...

    @abstractmethod
    async def account(self, address: Pubkey, commitment: str) -> AccountData | None: ...

    async def accounts(self, addresses: list[Pubkey]) -> list[AccountData | None]:
        """Several accounts at confirmed commitment (what the checks before signing read),
        in one request where the backend can."""
        return [await self.account(address, "confirmed") for address in addresses]

    @abstractmethod
    async def simulate(self, tx: VersionedTransaction, *, sig_verify: bool) -> SimResult: ...

    @abstractmethod
    async def send(self, raw: bytes) -> str: ...

    @abstractmethod
    async def status(self, signature: str) -> SigStatus | None: ...

    @abstractmethod
    async def block_height(self) -> int: ...

    @abstractmethod
    async def minimum_rent(self, size: int) -> int: ...

    async def read(self, method: str, params: list[Any]) -> Any:
        """The `result` of any other read-only JSON-RPC `method` (the escrow's history
        and account reads); ChainError where the backend serves no such call."""
        raise ChainError(f"{type(self).__name__} serves no {method}")

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


_UNREACHABLE = (aiohttp.ClientError, TimeoutError, OSError)


class RpcBackend(SolanaBackend):
    """A Solana JSON-RPC endpoint over one keep-alive aiohttp session.

    Not solana-py's AsyncClient: its httpx2 transport costs about 380 µs of client CPU
    per request against about 100 µs here (bench/bench_chains.py), and it resends a
    request once on a transport error, which must never happen to a sendTransaction.
    Answers are read as plain JSON (solders' typed parsers abort the process on an
    error variant they do not know), in the same form the in-process ledger returns.
    """

    def __init__(self, url: str, *, timeout: float = 10) -> None:
        self._client = _JsonRpc(url, timeout)

    async def _read(self, method: str, params: list[Any]) -> Any:
        return await _retry.read(lambda: self._client.call(method, params), on_error=self.on_error)

    async def read(self, method: str, params: list[Any]) -> Any:
        return await self._read(method, params)

    async def genesis_hash(self) -> str:
        return str(await self._read("getGenesisHash", []))

    async def latest_blockhash(self, commitment: str) -> tuple[Hash, int]:
        value = _value(await self._read("getLatestBlockhash", [{"commitment": commitment}]))
        return Hash.from_string(value["blockhash"]), int(value["lastValidBlockHeight"])

    async def balance(self, address: Pubkey, commitment: str) -> int:
        params = [str(address), {"commitment": commitment}]
        return int(_value(await self._read("getBalance", params)))

    async def account(self, address: Pubkey, commitment: str) -> AccountData | None:
        params = [str(address), {"commitment": commitment, "encoding": "base64"}]
        return account_data(_value(await self._read("getAccountInfo", params)))

    async def accounts(self, addresses: list[Pubkey]) -> list[AccountData | None]:
        # Confirmed, not finalized: the checks before signing must see recent spends.
        params = [[str(a) for a in addresses], {"commitment": "confirmed", "encoding": "base64"}]
        return [account_data(v) for v in _value(await self._read("getMultipleAccounts", params))]

    async def simulate(self, tx: VersionedTransaction, *, sig_verify: bool) -> SimResult:
        # Confirmed: the bank that knows a blockhash fetched at confirmed commitment.
        options = {"encoding": "base64", "sigVerify": sig_verify, "commitment": "confirmed"}
        value = _value(await self._read("simulateTransaction", [_b64(bytes(tx)), options]))
        return SimResult(
            value.get("err"), list(value.get("logs") or []), value.get("unitsConsumed")
        )

    async def send(self, raw: bytes) -> str:
        # Sent once, never retried here: the caller decides, after asking the chain.
        options = {"encoding": "base64", "skipPreflight": True, "maxRetries": 0}
        return str(await self._client.call("sendTransaction", [_b64(raw), options]))

    async def status(self, signature: str) -> SigStatus | None:
        params = [[signature], {"searchTransactionHistory": True}]
        value = _value(await self._read("getSignatureStatuses", params))[0]
        if value is None:
            return None
        # No confirmationStatus (older nodes): a null `confirmations` means rooted.
        level = value.get("confirmationStatus") or (
            "finalized" if value.get("confirmations") is None else "processed"
        )
        return SigStatus(int(value["slot"]), value.get("err"), str(level))

    async def block_height(self) -> int:
        return int(await self._read("getBlockHeight", [_FINALIZED]))

    async def minimum_rent(self, size: int) -> int:
        return int(await self._read("getMinimumBalanceForRentExemption", [size]))

    async def close(self) -> None:
        await self._client.close()


_FINALIZED = {"commitment": "finalized"}


class _JsonRpc:
    """JSON-RPC 2.0 calls to `url`, errors already in the ChainError tree."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)

    async def call(self, method: str, params: list[Any]) -> Any:
        """The `result` of `method`; RpcUnreachable when no answer came back."""
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            async with self._open().post(self._url, json=body) as response:
                if response.status != 200:
                    raise RpcUnreachable(self._down(method, f"HTTP {response.status}"))
                answer = await response.json(content_type=None)
        except _UNREACHABLE as exc:
            raise RpcUnreachable(self._down(method, exc.__class__.__name__)) from exc
        except ValueError as exc:
            raise ChainError(f"Solana RPC {self._url} {method}: not JSON ({exc})") from exc
        return self._result(method, answer)

    def _result(self, method: str, answer: Any) -> Any:
        if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
            raise ChainError(f"Solana RPC {self._url} {method}: not a JSON-RPC answer")
        error = answer.get("error")
        if error is not None:
            raise ChainError(f"Solana RPC {self._url} {method}: {error}")
        return answer["result"]

    def _down(self, method: str, why: str) -> str:
        return (
            f"Solana RPC {self._url} {method}: endpoint unreachable ({why}); check that "
            "the node is running and the rpc URL is right"
        )

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the event loop that runs it.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def request_airdrop(self, address: Pubkey, lamports: int) -> str:
        """A test cluster's faucet (requestAirdrop); the signature of the airdrop."""
        return str(await self.call("requestAirdrop", [str(address), lamports]))

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()


def _value(result: Any) -> Any:
    """The `value` of an RpcResponse (`{"context": …, "value": …}`)."""
    return result["value"]


def account_data(value: Any) -> AccountData | None:
    """An account from the `value` of a base64 ``getAccountInfo`` answer (None: none)."""
    if value is None:
        return None
    data, encoding = value["data"]
    if encoding != "base64":
        raise ChainError(f"Solana RPC answered account data in {encoding!r}, asked for base64")
    return AccountData(int(value["lamports"]), str(value["owner"]), base64.b64decode(data))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class LedgerBackend(SolanaBackend):
    """An in-process LiteSVM ledger: the zero-install fallback for `rpc: local`."""

    def __init__(self, ledger: SvmLedger) -> None:
        self.ledger = ledger

    async def genesis_hash(self) -> str:
        return self.ledger.genesis_hash

    async def latest_blockhash(self, commitment: str) -> tuple[Hash, int]:
        blockhash, last_valid = self.ledger.latest_blockhash()
        return Hash.from_string(blockhash), last_valid

    async def balance(self, address: Pubkey, commitment: str) -> int:
        return self.ledger.balance(str(address), commitment)

    async def account(self, address: Pubkey, commitment: str) -> AccountData | None:
        value = self.ledger.account(str(address), commitment)
        return None if value is None else account_data(value)

    async def simulate(self, tx: VersionedTransaction, *, sig_verify: bool) -> SimResult:
        try:
            result = self.ledger.simulate(bytes(tx), sig_verify=sig_verify)
        except RpcFailure as exc:
            raise ChainError(f"in-process Solana: {exc.message}") from exc
        return SimResult(result["err"], result["logs"], result["unitsConsumed"])

    async def send(self, raw: bytes) -> str:
        try:
            return self.ledger.send(raw, skip_preflight=True)
        except RpcFailure as exc:
            raise ChainError(f"in-process Solana: {exc.message}") from exc

    async def status(self, signature: str) -> SigStatus | None:
        value = self.ledger.statuses([signature])[0]
        if value is None:
            return None
        return SigStatus(value["slot"], value["err"], value["confirmationStatus"])

    async def block_height(self) -> int:
        return self.ledger.current_height()

    async def minimum_rent(self, size: int) -> int:
        return self.ledger.minimum_rent(size)
