"""How long plain transfers take on each local chain, from send to seen and to final,
polled every 20 ms by a bare client (no Covenant code): the chains' own inclusion and
finality times, apart from any daemon's polling.

Each figure is the mean of several transfers sent at random moments within a block. One
transfer sent right after a block would wait a whole block to be included, one sent
just before it hardly any; a daemon's transactions are sent at moments set by the other
chain or by a message, so only the mean over a block's phases is theirs too.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import TransactionNotFound

ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
"""anvil's first well-known development account (public), funded on every anvil."""
POLL = 0.02
SAMPLES = 5


@dataclass(frozen=True)
class Wait:
    """One chain's mean seconds from send to seen (included) and to final."""

    seen: float
    final: float


async def evm_pace(url: str, confirmations: int, block_time: float) -> Wait:
    """Transfers one after another, each at a random moment within a block."""
    w3: AsyncWeb3[Any] = AsyncWeb3(AsyncHTTPProvider(url))
    try:
        waits = []
        for _ in range(SAMPLES):
            await asyncio.sleep(random.uniform(0, block_time))
            waits.append(await _evm_transfer(w3, confirmations))
    finally:
        await w3.provider.disconnect()
    return _mean(waits)


async def _evm_transfer(w3: AsyncWeb3[Any], confirmations: int) -> tuple[float, float]:
    account = Account.from_key(ANVIL_KEY)
    block = await w3.eth.get_block("latest")
    tx = {
        "type": 2,
        "chainId": await w3.eth.chain_id,
        "nonce": await w3.eth.get_transaction_count(account.address, "pending"),
        "gas": 21_000,
        "to": "0x000000000000000000000000000000000000dEaD",
        "value": 1,
        "maxFeePerGas": 2 * block["baseFeePerGas"] + 10**9,
        "maxPriorityFeePerGas": 10**9,
    }
    raw = account.sign_transaction(tx).raw_transaction
    started = time.monotonic()
    tx_hash = await w3.eth.send_raw_transaction(raw)
    while True:
        try:
            receipt = await w3.eth.get_transaction_receipt(tx_hash)
            break
        except TransactionNotFound:
            await asyncio.sleep(POLL)
    seen = time.monotonic() - started
    while await w3.eth.block_number - receipt["blockNumber"] < confirmations:  # noqa: ASYNC110 - a remote node: polling is the only way to see its blocks
        await asyncio.sleep(POLL)
    return seen, time.monotonic() - started


async def solana_pace(url: str, commitment: str, block_time: float) -> Wait:
    """Transfers from payers of their own, all at once, each sent at a random moment
    within a block (they do not wait for each other: a finalized wait is 32 blocks)."""
    client = AsyncClient(url)
    try:
        waits = await asyncio.gather(
            *(_solana_transfer(client, commitment, block_time) for _ in range(SAMPLES))
        )
    finally:
        await client.close()
    return _mean(list(waits))


async def _solana_transfer(
    client: AsyncClient, commitment: str, block_time: float
) -> tuple[float, float]:
    payer = Keypair()
    await client.request_airdrop(payer.pubkey(), 10**10)
    await asyncio.sleep(random.uniform(0, block_time))
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    ix = transfer(
        TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=10**6)
    )
    tx = VersionedTransaction(MessageV0.try_compile(payer.pubkey(), [ix], [], blockhash), [payer])
    done = ("confirmed", "finalized") if commitment == "confirmed" else ("finalized",)
    started = time.monotonic()
    signature = (await client.send_raw_transaction(bytes(tx))).value
    seen = None
    while True:
        status = (await client.get_signature_statuses([signature])).value[0]
        state = None if status is None else str(status.confirmation_status).lower()
        if state is not None and seen is None:
            seen = time.monotonic() - started
        if state is not None and state.endswith(done):
            return seen or 0.0, time.monotonic() - started
        await asyncio.sleep(POLL)


def _mean(waits: list[tuple[float, float]]) -> Wait:
    return Wait(statistics.fmean(w[0] for w in waits), statistics.fmean(w[1] for w in waits))
