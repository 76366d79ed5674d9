"""HTLC legs on an EVM chain: the Covenant HTLC contract through the EVM adapter.

Transactions are built by :class:`~chains.evm.EvmAdapter` (which never signs). Reads the
adapter does not offer (``swaps(id)`` at the final block, ``Claimed`` logs) go through a
read-only web3 connection to the same RPC endpoint.
"""

from __future__ import annotations

import hashlib
from typing import Any, cast

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import AsyncHTTPProvider, AsyncWeb3

from chains.atomic.base import HtlcChain, Leg, LockState, OnChainLock, Party, Purpose
from chains.base import ContractCall, UnsignedTx
from chains.evm import EvmAdapter
from chains.htlc import evm_client
from config.errors import ChainError, RpcUnreachable
from config.margins import ChainMargin
from config.models import BlockTagFinality, ConfirmationsFinality

_ID_DOMAIN = b"covenant/htlc-id/v1\x00"
_CLAIMED_TOPIC = keccak(text="Claimed(bytes32,bytes32)")


class EvmHtlc(HtlcChain):
    """The HTLC contract at `contract` on the adapter's chain."""

    family = "evm"
    adapter: EvmAdapter

    def __init__(
        self, adapter: EvmAdapter, contract: str, *, rpc_url: str, margin: ChainMargin
    ) -> None:
        self.adapter = adapter
        self.margin = margin
        self.contract = to_checksum_address(contract)
        self._w3 = AsyncWeb3(AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
        self._abi = tuple(evm_client.abi())

    def locator(self, plan_id: str, index: int, party: Party) -> str:
        """sha256(domain | plan id | leg index | sender): stable across restarts, and
        distinct for two agents that happen to pick the same plan id."""
        sender = party.address("evm").lower().encode()
        material = _ID_DOMAIN + plan_id.encode() + bytes([index]) + sender
        return "0x" + hashlib.sha256(material).hexdigest()

    async def now(self) -> int:
        """The timestamp our next transaction will see (the contract compares deadlines
        with it): the pending block's where the node builds one, else the latest's. On an
        idle chain the latest block can be minutes old; the pending one is not."""
        latest = await self._call(lambda: self._w3.eth.get_block("latest"))
        try:
            pending = await self._call(lambda: self._w3.eth.get_block("pending"))
        except ChainError:
            return int(latest["timestamp"])
        return max(int(latest["timestamp"]), int(pending["timestamp"]))

    async def read(self, leg: Leg, *, final: bool = False) -> OnChainLock:
        """``swaps(id)`` at the latest block, or at the newest final block."""
        at = await self._final_block() if final else "latest"
        call: Any = {"to": self.contract, "data": evm_client.swaps_calldata(_id(leg))}
        data = await self._call(lambda: self._w3.eth.call(call, cast(Any, at)))
        swap = evm_client.decode_swap(bytes(data))
        if swap.state == evm_client.SwapState.EMPTY:
            return OnChainLock(state=LockState.EMPTY)
        return OnChainLock(
            state=LockState(int(swap.state)),
            sender=swap.sender,
            recipient=swap.recipient,
            amount=swap.amount,
            asset=None if int(swap.token, 16) == 0 else swap.token,
            hashlock=swap.hashlock,
            deadline=swap.deadline,
        )

    async def _final_block(self) -> int | str:
        finality = self.adapter.chain.finality
        if isinstance(finality, BlockTagFinality):
            return str(finality.block_tag)
        if not isinstance(finality, ConfirmationsFinality):
            return "latest"
        latest = int(await self._call(lambda: self._w3.eth.block_number))
        return max(latest - finality.confirmations, 0)

    async def build(
        self,
        purpose: Purpose,
        leg: Leg,
        *,
        hashlock: bytes = b"",
        preimage: bytes = b"",
        payer: str,
    ) -> UnsignedTx:
        """A lock (with msg.value for the native coin), claim or refund of `leg`."""
        token = leg.asset or evm_client.NATIVE_COIN
        if purpose == "lock":
            args: tuple[Any, ...] = (
                _id(leg),
                to_checksum_address(leg.recipient),
                hashlock,
                leg.deadline,
                to_checksum_address(token),
                leg.amount,
            )
            value = evm_client.lock_value(token, leg.amount)
        else:
            args = (_id(leg), preimage) if purpose == "claim" else (_id(leg),)
            value = 0
        intent = ContractCall(
            to=self.contract, abi=self._abi, function=purpose, args=args, value=value
        )
        return await self.adapter.build(intent, payer)

    def co_signers(self, purpose: Purpose, leg: Leg, party: Party, plan_id: str) -> list[bytes]:
        """None: an EVM transaction has one signer."""
        return []

    async def revealed_preimage(
        self, leg: Leg, hashlock: bytes, *, lock_tx: str | None = None
    ) -> bytes | None:
        """The preimage from the ``Claimed(id, preimage)`` log of this escrow, if any,
        searched from the block of `lock_tx` (public RPCs limit log ranges)."""
        start = 0
        if lock_tx is not None:
            receipt = await self._call(
                lambda: self._w3.eth.get_transaction_receipt(cast(Any, lock_tx))
            )
            start = int(receipt["blockNumber"])
        query: Any = {
            "address": self.contract,
            "fromBlock": start,
            "toBlock": "latest",
            "topics": ["0x" + _CLAIMED_TOPIC.hex(), leg.locator],
        }
        logs = await self._call(lambda: self._w3.eth.get_logs(query))
        for log in logs:
            event = evm_client.decode_event([bytes(t) for t in log["topics"]], bytes(log["data"]))
            if isinstance(event, evm_client.ClaimedEvent) and _matches(event.preimage, hashlock):
                return event.preimage
        return None

    async def close(self) -> None:
        """Close the read connection."""
        await self._w3.provider.disconnect()

    async def _call(self, operation: Any) -> Any:
        try:
            return await operation()
        except (OSError, TimeoutError) as exc:
            raise RpcUnreachable(f"{self.name}: RPC read failed: {exc}") from exc
        except Exception as exc:
            raise ChainError(f"{self.name}: RPC read failed: {exc}") from exc


def _id(leg: Leg) -> bytes:
    return bytes.fromhex(leg.locator.removeprefix("0x"))


def _matches(preimage: bytes, hashlock: bytes) -> bool:
    return len(preimage) == 32 and hashlib.sha256(preimage).digest() == hashlock
