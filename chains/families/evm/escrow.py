"""HTLC legs on an EVM chain: the Covenant HTLC contract through the EVM adapter.

Transactions are built by :class:`~chains.families.evm.adapter.EvmAdapter` (which never
signs). Reads the adapter has no method for (``swaps(key)`` at the final block,
``Claimed`` logs) go through the adapter's connection and its ``read``, so they are
retried and their errors mapped as every other read of the chain.

A leg's locator is its escrow id; the contract keys the escrow by the id and the leg's
sender (``evm_client.escrow_key``). A claim is built with a fixed gas limit, never
estimated: its calldata holds the preimage, which must reach no node before the policy
engine has authorized the claim and the signer has signed it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from typing import Any, cast

import aiohttp
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from chains.atomic.base import HtlcChain, Leg, LockState, OnChainLock, Party, Purpose
from chains.base import ContractCall, UnsignedTx
from chains.families.evm import htlc_client as evm_client
from chains.families.evm.adapter import ERC20_ABI, EvmAdapter, encode_call
from chains.families.evm.config import BlockTagFinality, ConfirmationsFinality
from config.errors import ChainError, TransactionReverted
from config.margins import ChainMargin

_ID_DOMAIN = b"covenant/htlc-id/v1\x00"
_CLAIMED_TOPIC = keccak(text="Claimed(bytes32,bytes32)")
DEFAULT_LOG_WINDOW = 2_000
"""Blocks per ``eth_getLogs`` request when searching for a claim. Providers cap the range
(Alchemy 500, Tenderly 2,000, Infura and QuickNode 10,000); the window halves
whenever the endpoint refuses one, and stays at the size that worked."""
_RANGE_REFUSALS = (
    "block range",  # Frontier "block range is too wide (maximum 1024)", BSC "exceed
    # maximum block range: 5000", Alchemy "... up to a 500 block range", geth forks
    # "block range is bigger than maxBlockRange", "block range too large"/"too high"
    "range limit",  # Tenderly: "range 9009594 is bigger than range limit 2000" (in data)
    "exceeds limit",  # Infura: "range 1000000 exceeds limit of 10000"
    "limited to a",  # QuickNode: "eth_getLogs is limited to a 10,000 range"
    "returned more than",  # Infura, geth: "query returned more than 10000 results"
    "response size exceeded",  # Alchemy: "Log response size exceeded. ..."
    "query timeout exceeded",  # Infura: a range too costly to scan in 10 s
)


class EvmHtlc(HtlcChain):
    """The HTLC contract at `contract` on the adapter's chain."""

    family = "evm"
    adapter: EvmAdapter

    def __init__(
        self,
        adapter: EvmAdapter,
        contract: str,
        *,
        margin: ChainMargin,
        log_window: int = DEFAULT_LOG_WINDOW,
    ) -> None:
        if log_window < 1:
            raise ChainError(f"log_window must be at least 1 block, got {log_window}")
        self.adapter = adapter
        self.margin = margin
        self.contract = to_checksum_address(contract)
        self._w3 = adapter.w3
        self._abi = tuple(evm_client.abi())
        self._window = log_window

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
        """``swaps(key)`` at the latest block, or at the newest final block."""
        at = await self._final_block() if final else "latest"
        data = evm_client.swaps_calldata(_id(leg), sender=leg.sender)
        call: Any = {"to": self.contract, "data": data}
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
        """A lock (with msg.value for the native coin), claim or refund of `leg`.

        A claim asks the recipient to get the whole amount (a token that started taking a
        fee fails it in simulation, before the preimage is sent) and gets a fixed gas
        limit (:meth:`_claim_gas`), so its calldata goes nowhere before it is signed.
        """
        token = leg.asset or evm_client.NATIVE_COIN
        key = evm_client.escrow_key(leg.sender, _id(leg))
        gas_limit = None
        value = 0
        if purpose in ("approve", "revoke"):
            return await self._approval(leg, leg.amount if purpose == "approve" else 0, payer)
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
        elif purpose == "claim":
            args = (key, preimage, leg.amount)
            gas_limit, _ = await asyncio.gather(
                self._claim_gas(payer, token), self._check_claimable(leg, preimage)
            )
        else:
            args = (key,)
        intent = ContractCall(
            to=self.contract, abi=self._abi, function=purpose, args=args, value=value
        )
        return await self.adapter.build(intent, payer, gas_limit=gas_limit)

    async def why_not_asset(self, asset: str | None) -> str | None:
        """An ERC-20 leg needs a contract at `asset` that answers ``allowance``."""
        if asset is None or int(asset, 16) == 0:
            return None
        token = to_checksum_address(asset)
        code = await self._call(lambda: self._w3.eth.get_code(token))
        if not code:
            return f"there is no contract at {token} on {self.name}; check the asset's erc20"
        answer = await self._allowance(token, token)
        if answer is None:
            return f"the contract at {token} does not answer allowance() as an ERC-20 does"
        return None

    async def allowance(self, leg: Leg) -> int | None:
        """The token's ``allowance(sender, HTLC)``: the contract pulls an ERC-20 leg with
        ``transferFrom``, so its lock needs an approval first; None for the native coin."""
        if leg.asset is None or int(leg.asset, 16) == 0:
            return None
        allowance = await self._allowance(to_checksum_address(leg.asset), leg.sender)
        if allowance is None:
            raise ChainError(f"{self.name}: token {leg.asset} did not answer allowance()")
        return allowance

    async def _allowance(self, token: str, owner: str) -> int | None:
        args = (to_checksum_address(owner), self.contract)
        call: Any = {"to": token, "data": encode_call(ERC20_ABI, "allowance", args)}
        try:
            data = bytes(await self._call(lambda: self._w3.eth.call(call, "latest")))
        except TransactionReverted:
            return None
        return int.from_bytes(data, "big") if len(data) == 32 else None

    async def _approval(self, leg: Leg, amount: int, payer: str) -> UnsignedTx:
        """``approve(HTLC, amount)`` on the leg's token: exactly the leg's amount, which its
        lock then takes whole, or 0 to withdraw an approval no lock used."""
        if leg.asset is None:
            raise ChainError(
                f"{self.name}: leg {leg.index} escrows the native coin; it needs no approval"
            )
        intent = ContractCall(
            to=to_checksum_address(leg.asset),
            abi=ERC20_ABI,
            function="approve",
            args=(self.contract, amount),
        )
        return await self.adapter.build(intent, payer)

    async def _check_claimable(self, leg: Leg, preimage: bytes) -> None:
        """The claim's own checks, made on public state since the claim is not estimated:
        a claim that would revert fails here, before it is authorized, signed and
        journaled (a journaled claim counts as a possible reveal). An ERC-20 payout short
        of the amount shows only in the simulation before the send."""
        lock = await self.read(leg)
        reason = None
        if lock.state == LockState.EMPTY:
            reason = "SwapNotFound"
        elif lock.state != LockState.LOCKED:
            reason = "SwapSettled"
        elif len(preimage) != 32:
            reason = "InvalidPreimageLength"
        elif not _matches(preimage, lock.hashlock):
            reason = "WrongPreimage"
        elif await self.now() >= lock.deadline:
            reason = "DeadlinePassed"
        if reason is not None:
            raise TransactionReverted(
                f"{self.name}: a claim of escrow {leg.locator} would revert with {reason} "
                f"(escrow {lock.state.name.lower()}); it is not built",
                reason=reason,
            )

    async def _claim_gas(self, payer: str, token: str) -> int:
        """The claim's execution budget (``evm_client.claim_gas``) plus what a transaction
        of the claim's size costs before it executes, estimated on random bytes of that
        size sent to the payer itself. On Arbitrum that figure includes the L1 data
        component, priced on compressed size: random bytes do not compress, so they
        bound the real calldata's."""
        size = len(evm_client.raw_claim_calldata(bytes(32), bytes(32)))
        decoy: Any = {"from": payer, "to": payer, "value": 0, "data": os.urandom(size)}
        intrinsic = await self._call(lambda: self._w3.eth.estimate_gas(decoy))
        return int(intrinsic) + evm_client.claim_gas(token)

    def co_signers(self, purpose: Purpose, leg: Leg, party: Party, plan_id: str) -> list[bytes]:
        """None: an EVM transaction has one signer."""
        return []

    async def revealed_preimage(
        self, leg: Leg, hashlock: bytes, *, lock_tx: str | None = None
    ) -> bytes | None:
        """The preimage from the ``Claimed(key, preimage)`` log of this escrow, if any.

        Searched from the latest block back to the block of `lock_tx` (genesis without
        it) in windows of at most ``log_window`` blocks, newest first since a claim is
        looked for once the escrow reads claimed; a window the endpoint refuses as too
        wide is halved and retried.
        """
        first = 0
        if lock_tx is not None:
            receipt = await self._call(
                lambda: self._w3.eth.get_transaction_receipt(cast(Any, lock_tx))
            )
            first = int(receipt["blockNumber"])
        top = int(await self._call(lambda: self._w3.eth.block_number))
        topics = [
            "0x" + _CLAIMED_TOPIC.hex(),
            "0x" + evm_client.escrow_key(leg.sender, _id(leg)).hex(),
        ]
        while top >= first:
            bottom = max(first, top - self._window + 1)
            logs = await self._claimed_logs(bottom, top, topics)
            if logs is None:
                continue  # refused as too wide; the window is smaller now
            for log in logs:
                preimage = _preimage(log, hashlock)
                if preimage is not None:
                    return preimage
            top = bottom - 1
        return None

    async def _claimed_logs(self, bottom: int, top: int, topics: list[str]) -> Any:
        """The logs of blocks `bottom`..`top`, or None (and a halved window) if the
        endpoint refuses the range as too wide."""
        query: Any = {
            "address": self.contract,
            "fromBlock": bottom,
            "toBlock": top,
            "topics": topics,
        }
        try:
            return await self._call(lambda: self._w3.eth.get_logs(query))
        except ChainError as exc:
            cause = exc.__cause__
            if not isinstance(cause, Exception) or not _range_refused(cause):
                raise
            if top == bottom:
                raise ChainError(
                    f"{self.name}: the endpoint refuses eth_getLogs even for the single "
                    f"block {bottom} ({cause}); use an rpc URL that serves logs"
                ) from exc
            self._window = max(1, (top - bottom + 1) // 2)
            return None

    async def close(self) -> None:
        """Nothing to close: the adapter owns the connection."""

    async def _call(self, operation: Any) -> Any:
        # Through the adapter, so this chain's reads are retried and their errors
        # mapped in one place (chains/_retry.py, the adapter's map_error).
        return await self.adapter.read(operation, "HTLC read")


def _id(leg: Leg) -> bytes:
    return bytes.fromhex(leg.locator.removeprefix("0x"))


def _preimage(log: Any, hashlock: bytes) -> bytes | None:
    event = evm_client.decode_event([bytes(t) for t in log["topics"]], bytes(log["data"]))
    if isinstance(event, evm_client.ClaimedEvent) and _matches(event.preimage, hashlock):
        return event.preimage
    return None


def _matches(preimage: bytes, hashlock: bytes) -> bool:
    return len(preimage) == 32 and hashlib.sha256(preimage).digest() == hashlock


def _range_refused(exc: Exception) -> bool:
    """Whether `exc` is an endpoint refusing an eth_getLogs range as too wide: a
    JSON-RPC error whose message or data reads like one of :data:`_RANGE_REFUSALS`, or
    HTTP 413 (QuickNode answers a wide range with that status)."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.status == 413
    text = str(exc)
    response = getattr(exc, "rpc_response", None)
    if isinstance(response, dict):
        text += json.dumps(response.get("error"), default=str)
    lowered = text.lower()
    return any(refusal in lowered for refusal in _RANGE_REFUSALS)
