"""EVM adapter (Arbitrum, Optimism, Base or any chain id) on web3.py's AsyncWeb3.

One adapter serves one chain id, checked against the endpoint on connect. Every
transaction is EIP-1559 with fees capped by the chain's config, gas-estimated at build
time and simulated with ``eth_call`` again before it is sent. Nonces come from the store
(:class:`~chains._store.NonceStore`), so a restarted daemon does not reuse or skip one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal
from typing import Any, cast

import rlp  # type: ignore[import-untyped]
from eth_abi.abi import encode
from eth_account import Account
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import TransactionNotFound
from web3.providers.async_base import AsyncBaseProvider
from web3.types import BlockIdentifier, RPCEndpoint, TxParams

from chains import _retry
from chains._digest import evm_tx_digest
from chains._store import NonceStore
from chains.base import (
    ChainAdapter,
    ContractCall,
    FeeAboveCap,
    Intent,
    NativeTransfer,
    Simulation,
    TokenTransfer,
    TxId,
    TxStatus,
    UnsignedTx,
)
from chains.families.evm._errors import map_error
from chains.families.evm.config import BlockTagFinality, EvmChain
from chains.families.evm.tx import EvmUnsignedTx
from config.errors import ChainError, InsufficientFunds, TransactionReverted, WrongChainId
from config.models import Asset

GWEI = Decimal(10**9)
VIEW: BlockIdentifier = "pending"
"""The block every estimate and simulation runs against: the one a transaction sent now
would land in, with the timestamp the contract will see. The HTLC coordinator judges
deadlines by the same block; on a chain that makes blocks only for new transactions the
latest block keeps the lock's old timestamp, so a refund judged due reverted there.
(py-evm's in-process tester has no pending block; it mines one per transaction, and
there the adapter uses the latest.)"""
ERC20_ABI: tuple[dict[str, Any], ...] = (
    {
        "type": "function",
        "name": "transfer",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "type": "function",
        "name": "allowance",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
)
REPLACEMENT_BUMP = Decimal("1.125")
"""Nodes accept a same-nonce replacement only if both fee fields rise by >= 12.5%."""


class EvmAdapter(ChainAdapter):
    """Adapter for one EVM chain; create it with :meth:`connect`."""

    chain: EvmChain

    def __init__(
        self,
        chain: EvmChain,
        w3: AsyncWeb3[Any],
        *,
        where: str,
        nonces: NonceStore | None,
        fee_ttl: float = 1.0,
    ) -> None:
        self.chain = chain
        self._w3 = w3
        self._where = where
        self._nonces = nonces
        self._abis: dict[str, tuple[dict[str, Any], ...]] = {}
        self._senders: dict[bytes, str] = {}
        self._fee_ttl = fee_ttl
        self._market_cache: tuple[float, int, int] = (-float("inf"), 0, 0)
        tester = type(w3.provider).__name__ == "AsyncEthereumTesterProvider"
        self._view: BlockIdentifier = "latest" if tester else VIEW

    @classmethod
    async def connect(
        cls,
        chain: EvmChain,
        *,
        url: str | None = None,
        provider: AsyncBaseProvider | None = None,
        nonces: NonceStore | None = None,
        fee_ttl: float = 1.0,
    ) -> EvmAdapter:
        """Connect to `url` (or a ready `provider`) and refuse a different chain id.

        `fee_ttl` is how long (seconds) base fee and tip readings are reused; 0 reads them
        for every transaction.
        """
        if provider is None:
            if url is None:
                raise ChainError(f"chain {chain.name}: give an rpc url or a provider")
            provider = AsyncHTTPProvider(
                url, request_kwargs={"timeout": 10}, exception_retry_configuration=None
            )
            # web3 8.0.0 takes one threading.Lock, a class attribute of HTTPSessionManager
            # shared by every provider of the process, around each request (through
            # `async_lock` in web3/_utils/async_caching.py). A request cancelled while
            # its executor thread waits for that lock leaves it held for good, and every
            # later request of every provider then waits forever. A lock of its own
            # keeps such a leak inside the one adapter whose request was cancelled.
            provider._request_session_manager._lock = threading.Lock()
        # No default middleware: it re-reads eth_chainId on every call, while we check
        # the chain id once here and build complete EIP-1559 dicts ourselves.
        w3 = AsyncWeb3(provider, middleware=[])
        where = f"{chain.name} ({url or 'in-process'})"
        adapter = cls(chain, w3, where=where, nonces=nonces, fee_ttl=fee_ttl)
        try:
            await adapter._check_chain_id()
        except BaseException:
            await adapter.close()
            raise
        return adapter

    async def _check_chain_id(self) -> None:
        actual = await self._read(lambda: self._w3.eth.chain_id, "eth_chainId")
        if actual != self.chain.chain_id:
            raise WrongChainId(
                f"{self._where} serves chain id {actual}, but the deployment configures "
                f"{self.chain.chain_id}; fix chain_id or the rpc URL"
            )

    async def close(self) -> None:
        """Close the HTTP session."""
        if isinstance(self._w3.provider, AsyncHTTPProvider):
            await self._w3.provider.disconnect()

    @property
    def w3(self) -> AsyncWeb3[Any]:
        """The connection, for clients of contracts on this chain (the escrow). They read
        through :meth:`read`, so retries and error mapping happen here and only here."""
        return self._w3

    async def read(self, call: Any, what: str) -> Any:
        """Await `call()` (a read on :attr:`w3`), retried while the endpoint is
        unreachable, its errors mapped by :func:`map_error` (`what` names it in them)."""
        return await self._read(call, what)

    async def _read(self, call: Any, what: str, abi: Any = ()) -> Any:
        async def once() -> Any:
            try:
                return await call()
            except Exception as exc:
                raise map_error(exc, f"{self._where} {what}", abi) from exc

        return await _retry.read(once, on_error=self.rpc_error)

    # -- reads -------------------------------------------------------------------------

    async def balance(self, address: str, asset: Asset | str | None = None) -> int:
        """Native balance in wei, or an ERC-20 balance when `asset` names a token."""
        owner = to_checksum_address(address)
        token = asset.erc20 if isinstance(asset, Asset) else asset
        if token is None:
            return int(await self._read(lambda: self._w3.eth.get_balance(owner), "eth_getBalance"))
        data = encode_call(ERC20_ABI, "balanceOf", (owner,))
        call = {"to": to_checksum_address(token), "data": data}
        result = await self._read(lambda: self._w3.eth.call(call), "balanceOf")  # type: ignore[arg-type]
        return int.from_bytes(result, "big")

    async def height(self) -> int:
        """The latest block number."""
        return int(await self._read(lambda: self._w3.eth.block_number, "eth_blockNumber"))

    # -- build and simulate ------------------------------------------------------------

    async def build(
        self, intent: Intent, sender: str, *, gas_limit: int | None = None
    ) -> EvmUnsignedTx:
        """An EIP-1559 transaction for `intent`, gas-estimated (reverts raise here), or
        with the fixed `gas_limit`: then its calldata is sent nowhere before it is
        signed (an HTLC claim's preimage must not reach the RPC before authorization)."""
        sender = to_checksum_address(sender)
        to, value, data, abi = _encode_intent(intent)
        call = {"from": sender, "to": to, "value": value, "data": data}
        gas, (max_fee, tip), pending = await asyncio.gather(
            self._estimate(call, abi, gas_limit), self._fees(), self._pending_nonce(sender)
        )
        nonce = await self._reserve(sender, pending)
        tx = {
            "type": 2,
            "chainId": self.chain.chain_id,
            "nonce": nonce,
            "gas": gas,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": tip,
            **call,
        }
        del tx["from"]
        self._abis[to] = abi
        digest = self._remember(tx, sender)
        return EvmUnsignedTx(
            chain=self.chain.name, sender=sender, intent=intent, digest=digest, tx=tx
        )

    def _remember(self, tx: dict[str, Any], sender: str) -> bytes:
        digest = evm_tx_digest(tx)
        self._senders[digest] = sender
        if len(self._senders) > 4096:  # forget the oldest; they are recovered if needed
            del self._senders[next(iter(self._senders))]
        return digest

    async def _estimate(self, call: dict[str, Any], abi: Any, fixed: int | None = None) -> int:
        if fixed is not None:
            return fixed
        params = cast(TxParams, call)
        estimate = int(
            await self._read(
                lambda: self._w3.eth.estimate_gas(params, self._view), "estimateGas", abi
            )
        )
        # Plain transfers cost exactly 21000; anything else gets a margin because state
        # may change between estimation and inclusion.
        return estimate if estimate == 21_000 else estimate * 6 // 5

    async def _fees(self, *, fresh: bool = False) -> tuple[int, int]:
        cap_max = int(self.chain.fees.max_fee_gwei * GWEI)
        cap_tip = int(self.chain.fees.max_priority_fee_gwei * GWEI)
        base, market_tip = await self._market(fresh=fresh)
        tip = min(market_tip, cap_tip)
        if base + tip > cap_max:
            raise FeeAboveCap(
                f"{self._where}: base fee {Decimal(base) / GWEI} gwei plus tip exceeds "
                f"max_fee_gwei {self.chain.fees.max_fee_gwei}; wait or raise the cap"
            )
        return min(2 * base + tip, cap_max), tip

    async def _market(self, *, fresh: bool) -> tuple[int, int]:
        """Base fee and suggested tip, reused for `fee_ttl` seconds.

        Reusing them for a burst of transactions is safe because max fee is twice the
        base fee plus the tip, and the base fee rises at most 12.5% per block.
        """
        taken, base, tip = self._market_cache
        if fresh or time.monotonic() - taken > self._fee_ttl:
            block, market_tip = await asyncio.gather(
                self._read(lambda: self._w3.eth.get_block("latest"), "eth_getBlockByNumber"),
                self._read(lambda: self._w3.eth.max_priority_fee, "eth_maxPriorityFeePerGas"),
            )
            base, tip = int(block["baseFeePerGas"]), int(market_tip)
            self._market_cache = (time.monotonic(), base, tip)
        return base, tip

    async def _pending_nonce(self, sender: str) -> int:
        return int(
            await self._read(
                lambda: self._w3.eth.get_transaction_count(sender, "pending"),  # type: ignore[arg-type]
                "eth_getTransactionCount",
            )
        )

    async def _reserve(self, sender: str, pending: int) -> int:
        if self._nonces is None:
            return pending
        return await asyncio.to_thread(self._nonces.reserve, self.chain.name, sender, pending)

    async def abandon(self, tx: UnsignedTx) -> None:
        """Give the nonce of a built transaction that will never be signed back."""
        if self._nonces is None or not isinstance(tx, EvmUnsignedTx):
            return
        await asyncio.to_thread(self._nonces.release, self.chain.name, tx.sender, tx.nonce)

    async def replacement(self, tx: EvmUnsignedTx) -> EvmUnsignedTx:
        """The same transaction (same nonce) with both fee fields raised by >= 12.5%."""
        max_fee, tip = await self._fees(fresh=True)
        bumped_tip = max(_bump(tx.tx["maxPriorityFeePerGas"]), tip)
        bumped_max = max(_bump(tx.tx["maxFeePerGas"]), max_fee, bumped_tip)
        if bumped_max > int(self.chain.fees.max_fee_gwei * GWEI):
            raise FeeAboveCap(
                f"{self._where}: replacing nonce {tx.nonce} needs max fee "
                f"{Decimal(bumped_max) / GWEI} gwei, above max_fee_gwei "
                f"{self.chain.fees.max_fee_gwei}; raise the cap or wait for the original"
            )
        new = {**tx.tx, "maxFeePerGas": bumped_max, "maxPriorityFeePerGas": bumped_tip}
        return tx.model_copy(update={"tx": new, "digest": self._remember(new, tx.sender)})

    async def simulate(self, tx: EvmUnsignedTx | bytes) -> Simulation:  # type: ignore[override]
        """Run the transaction with eth_call on the block it would land in (:data:`VIEW`)."""
        if isinstance(tx, bytes):
            fields = _decode_signed(tx, self._senders)
        else:
            fields = {**tx.tx, "from": tx.sender}
        call = {
            key: fields[key]
            for key in ("from", "to", "value", "data", "gas")
            if fields.get(key) is not None
        }
        abi = self._abis.get(str(fields.get("to")), ())
        params = [_hex_call(call), self._view]
        try:
            # Straight to the provider: the call is already JSON-RPC shaped, and web3's
            # per-call ABI formatting costs more than the node's answer on a local chain.
            await self._read(
                lambda: self._w3.manager.coro_request(RPCEndpoint("eth_call"), params),
                "eth_call",
                abi,
            )
        except (TransactionReverted, InsufficientFunds) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            return Simulation(ok=False, reason=reason, gas_used=fields.get("gas"))
        return Simulation(ok=True, gas_used=fields.get("gas"))

    # -- send and track ----------------------------------------------------------------

    def tx_id(self, signed: bytes) -> TxId:
        """The transaction hash: keccak of the signed EIP-2718 bytes."""
        return TxId("0x" + keccak(signed).hex())

    async def broadcast(self, signed: bytes) -> TxId:
        """Simulate `signed`, then send it once. "Already known" counts as sent."""
        simulation = await self.simulate(signed)
        if not simulation.ok:
            raise TransactionReverted(
                f"{self._where}: simulation failed, not sent: {simulation.reason}",
                reason=simulation.reason,
            )
        tx_id = self.tx_id(signed)
        try:
            await self._w3.eth.send_raw_transaction(signed)
        except Exception as exc:
            if "already known" in str(exc).lower():
                return tx_id
            error = map_error(exc, f"{self._where} eth_sendRawTransaction {tx_id}")
            raise error from exc
        return tx_id

    async def status(self, tx_id: TxId) -> TxStatus:
        """Pending, included, final, failed (with decoded reason) or dropped."""
        receipt = await self._receipt(tx_id)
        if receipt is None:
            known = await self._known(tx_id)
            return TxStatus(tx_id=tx_id, state="pending" if known else "dropped")
        block = int(receipt["blockNumber"])
        if int(receipt["status"]) == 0:
            reason = await self._revert_reason(tx_id, block)
            return TxStatus(tx_id=tx_id, state="failed", block=block, reason=reason)
        final, finality = await self._finality(block)
        return TxStatus(
            tx_id=tx_id, state="final" if final else "included", block=block, finality=finality
        )

    async def _receipt(self, tx_id: TxId) -> Any:
        async def get() -> Any:
            try:
                return await self._w3.eth.get_transaction_receipt(tx_id)  # type: ignore[arg-type]
            except TransactionNotFound:
                return None

        return await self._read(get, "eth_getTransactionReceipt")

    async def _known(self, tx_id: TxId) -> bool:
        async def get() -> bool:
            try:
                await self._w3.eth.get_transaction(tx_id)  # type: ignore[arg-type]
            except TransactionNotFound:
                return False
            return True

        return bool(await self._read(get, "eth_getTransactionByHash"))

    async def _finality(self, block: int) -> tuple[bool, str]:
        finality = self.chain.finality
        if isinstance(finality, BlockTagFinality):
            tagged = await self._read(lambda: self._w3.eth.get_block(finality.block_tag), "tag")
            final = int(tagged["number"]) >= block
            return final, finality.block_tag if final else f"not yet {finality.block_tag}"
        if finality.confirmations == 0:
            return True, "0/0 confirmations"
        depth = await self.height() - block
        return depth >= finality.confirmations, f"{depth}/{finality.confirmations} confirmations"

    async def _revert_reason(self, tx_id: TxId, block: int) -> str:
        tx = await self._read(lambda: self._w3.eth.get_transaction(tx_id), "eth_getTransaction")  # type: ignore[arg-type]
        call = {
            "from": tx["from"],
            "to": tx["to"],
            "value": tx["value"],
            "data": tx["input"],
            "gas": tx["gas"],
        }
        abi = self._abis.get(str(tx["to"]), ())
        try:
            await self._read(lambda: self._w3.eth.call(call, max(block - 1, 0)), "replay", abi)  # type: ignore[arg-type]
        except TransactionReverted as exc:
            return exc.reason or str(exc)
        return "reverted (the replay on the parent block succeeded, so state changed in-block)"


def _hex_call(call: dict[str, Any]) -> dict[str, str]:
    return {
        key: value
        if isinstance(value, str)
        else ("0x" + bytes(value).hex() if isinstance(value, bytes | bytearray) else hex(value))
        for key, value in call.items()
    }


def _bump(value: int) -> int:
    bumped = (Decimal(value) * REPLACEMENT_BUMP).to_integral_value(rounding="ROUND_CEILING")
    return max(int(bumped), value + 1)


def _encode_intent(intent: Intent) -> tuple[str, int, bytes, tuple[dict[str, Any], ...]]:
    if isinstance(intent, NativeTransfer):
        return to_checksum_address(intent.to), intent.amount, b"", ()
    if isinstance(intent, TokenTransfer):
        data = encode_call(ERC20_ABI, "transfer", (to_checksum_address(intent.to), intent.amount))
        return to_checksum_address(intent.token), 0, data, ERC20_ABI
    if isinstance(intent, ContractCall):
        data = encode_call(intent.abi, intent.function, intent.args)
        return to_checksum_address(intent.to), intent.value, data, intent.abi
    raise ChainError(f"an EVM chain cannot run a {intent.kind!r} intent; use a Solana chain")


def encode_call(abi: tuple[dict[str, Any], ...], name: str, args: tuple[Any, ...]) -> bytes:
    for entry in abi:
        if (
            entry.get("type") == "function"
            and entry.get("name") == name
            and len(entry.get("inputs", [])) == len(args)
        ):
            types = get_abi_input_types(entry)  # type: ignore[arg-type]
            return bytes(function_abi_to_4byte_selector(entry)) + encode(types, list(args))  # type: ignore[arg-type]
    raise ChainError(
        f"function {name!r} with {len(args)} argument(s) is not in the ABI; functions: "
        f"{sorted({str(e.get('name')) for e in abi if e.get('type') == 'function'})}"
    )


def _decode_signed(signed: bytes, senders: dict[bytes, str]) -> dict[str, Any]:
    """from, to, value, data and gas of a signed EIP-1559 transaction.

    The sender comes from `senders` (signing hash -> sender of transactions this adapter
    built) and is recovered from the signature only for transactions built elsewhere.
    """
    try:
        if signed[:1] != b"\x02":
            raise ValueError("not an EIP-1559 (type 2) transaction")
        items = rlp.decode(signed[1:])
        digest = keccak(b"\x02" + rlp.encode(items[:9]))
        sender = senders.get(digest) or Account.recover_transaction(signed)
    except Exception as exc:
        raise ChainError(
            f"not a signed EIP-1559 transaction ({len(signed)} bytes): {exc}; pass the "
            "signer's raw output unchanged"
        ) from exc
    to = to_checksum_address(items[5]) if items[5] else None
    return {
        "from": sender,
        "to": to,
        "value": int.from_bytes(items[6], "big"),
        "data": bytes(items[7]),
        "gas": int.from_bytes(items[4], "big"),
    }
