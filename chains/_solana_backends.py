"""Where the Solana adapter's calls go: a JSON-RPC endpoint (solana-py's AsyncClient)
or an in-process LiteSVM ledger. Both answer in plain values, so the adapter's logic is
one code path; errors arrive already converted to the ChainError tree."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable
from typing import Any, NamedTuple, TypeVar

from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment, Confirmed, Finalized
from solana.rpc.core import RPCException
from solana.rpc.models import TxOpts
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from chains import _retry
from chains.devnet._svm import RpcFailure, SvmLedger
from config.errors import ChainError, RpcUnreachable

T = TypeVar("T")


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

    @abstractmethod
    async def genesis_hash(self) -> str: ...

    @abstractmethod
    async def latest_blockhash(self, commitment: str) -> tuple[Hash, int]: ...

    @abstractmethod
    async def balance(self, address: Pubkey) -> int: ...

    @abstractmethod
    async def account(self, address: Pubkey) -> AccountData | None: ...

    async def accounts(self, addresses: list[Pubkey]) -> list[AccountData | None]:
        """Several accounts in one request where the backend can."""
        return [await self.account(address) for address in addresses]

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

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


_COMMITMENTS: dict[str, Commitment] = {"confirmed": Confirmed, "finalized": Finalized}


class RpcBackend(SolanaBackend):
    """A Solana JSON-RPC endpoint through solana-py's AsyncClient."""

    def __init__(self, url: str) -> None:
        self._client = AsyncClient(url, timeout=10)
        self._where = url

    async def _call(self, awaitable: Awaitable[T], what: str) -> T:
        try:
            return await awaitable
        except SolanaRpcException as exc:
            raise RpcUnreachable(
                f"Solana RPC {self._where} {what}: endpoint unreachable "
                f"({exc.__cause__.__class__.__name__ if exc.__cause__ else exc}); check that "
                "the node is running and the rpc URL is right"
            ) from exc
        except RPCException as exc:
            raise ChainError(f"Solana RPC {self._where} {what}: {exc}") from exc

    async def _read(self, make: Any, what: str) -> Any:
        return await _retry.read(lambda: self._call(make(), what))

    async def genesis_hash(self) -> str:
        return str((await self._read(self._client.get_genesis_hash, "getGenesisHash")).value)

    async def latest_blockhash(self, commitment: str) -> tuple[Hash, int]:
        level = _COMMITMENTS[commitment]
        value = (
            await self._read(lambda: self._client.get_latest_blockhash(level), "getLatestBlockhash")
        ).value
        return value.blockhash, int(value.last_valid_block_height)

    async def balance(self, address: Pubkey) -> int:
        response = await self._read(lambda: self._client.get_balance(address), "getBalance")
        return int(response.value)

    async def account(self, address: Pubkey) -> AccountData | None:
        value = (
            await self._read(lambda: self._client.get_account_info(address), "getAccountInfo")
        ).value
        if value is None:
            return None
        return AccountData(int(value.lamports), str(value.owner), bytes(value.data))

    async def accounts(self, addresses: list[Pubkey]) -> list[AccountData | None]:
        values = (
            await self._read(
                lambda: self._client.get_multiple_accounts(addresses), "getMultipleAccounts"
            )
        ).value
        return [
            None if v is None else AccountData(int(v.lamports), str(v.owner), bytes(v.data))
            for v in values
        ]

    async def simulate(self, tx: VersionedTransaction, *, sig_verify: bool) -> SimResult:
        value = (
            await self._read(
                lambda: self._client.simulate_transaction(tx, sig_verify=sig_verify),
                "simulateTransaction",
            )
        ).value
        return SimResult(value.err, list(value.logs or []), value.units_consumed)

    async def send(self, raw: bytes) -> str:
        # Never retried here: the caller decides, after asking the chain.
        options = TxOpts(skip_preflight=True, skip_confirmation=True, max_retries=0)
        response = await self._call(
            self._client.send_raw_transaction(raw, options), "sendTransaction"
        )
        return str(response.value)

    async def status(self, signature: str) -> SigStatus | None:
        value = (
            await self._read(
                lambda: self._client.get_signature_statuses(
                    [Signature.from_string(signature)], search_transaction_history=True
                ),
                "getSignatureStatuses",
            )
        ).value[0]
        if value is None:
            return None
        level = str(value.confirmation_status).rsplit(".", 1)[-1].lower()
        return SigStatus(int(value.slot), value.err, level)

    async def block_height(self) -> int:
        response = await self._read(
            lambda: self._client.get_block_height(Finalized), "getBlockHeight"
        )
        return int(response.value)

    async def minimum_rent(self, size: int) -> int:
        response = await self._read(
            lambda: self._client.get_minimum_balance_for_rent_exemption(size),
            "getMinimumBalanceForRentExemption",
        )
        return int(response.value)

    async def close(self) -> None:
        await self._client.close()


class LedgerBackend(SolanaBackend):
    """An in-process LiteSVM ledger: the zero-install fallback for `rpc: local`."""

    def __init__(self, ledger: SvmLedger) -> None:
        self.ledger = ledger

    async def genesis_hash(self) -> str:
        return self.ledger.genesis_hash

    async def latest_blockhash(self, commitment: str) -> tuple[Hash, int]:
        blockhash, last_valid = self.ledger.latest_blockhash()
        return Hash.from_string(blockhash), last_valid

    async def balance(self, address: Pubkey) -> int:
        return self.ledger.balance(str(address))

    async def account(self, address: Pubkey) -> AccountData | None:
        account = self.ledger.svm.get_account(address)
        if account is None or (account.lamports == 0 and not account.data):
            return None
        return AccountData(int(account.lamports), str(account.owner), bytes(account.data))

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
