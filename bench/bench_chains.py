"""Native transfers per second: our adapters vs the raw libraries, on the same local chains.

    .venv/bin/python bench/bench_chains.py [--count 200] [--rounds 3] [--only evm|solana]

EVM: one anvil. "raw web3" does what a careful web3.py client does per transfer: estimate
gas, read the base fee and tip, read the pending nonce, sign, send, poll the receipt.
"adapter" is EvmAdapter.build (the same reads, fee caps, store-backed nonce) + simulate
(eth_call) + broadcast + status; base fee and tip readings are reused for 1 s
("adapter fee_ttl=0" reads them for every transfer, as raw does). "adapter+journal"
adds the durable journal (SQLite, FULL sync) through chains.sender.send.

Solana: one LiteSVM JSON-RPC server process. "raw solders" does what a careful client
does with solana-py's AsyncClient (the standard Python client over solders): fetch a
blockhash, compile and sign a v0 message, send it with preflight (the node simulates
it), poll the signature status. "raw over aiohttp" is the same client logic over the
HTTP transport our adapter uses (aiohttp, one keep-alive session), so the second ratio
column is the cost of the adapter's protocol alone. "adapter" is SolanaAdapter.build
(payer and recipient read for the rent and balance checks, compute budget) + simulate
(simulateTransaction, signatures verified) + send (preflight off) + status; the
blockhash is reused for 1 s ("adapter ttl=0" fetches one per transfer, as raw does).
"adapter+journal" adds the durable journal through chains.sender.send.

Transfers run one after another (each waits for its confirmation); each figure is the
best of `rounds` rounds, rounds alternate between the sides.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from eth_account import Account
from solana.rpc.async_api import AsyncClient
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import TransactionNotFound

from chains._store import NonceStore
from chains.base import NativeTransfer, TxId
from chains.devnet.processes import free_port
from chains.families.evm._anvil import start_anvil
from chains.families.evm.adapter import EvmAdapter
from chains.families.evm.config import EvmChain
from chains.families.evm.tx import EvmUnsignedTx
from chains.families.solana._solana_proc import start_solana_rpc
from chains.families.solana.adapter import SolanaAdapter
from chains.families.solana.config import SolanaChain
from chains.families.solana.tx import SolanaUnsignedTx
from chains.journal import TxJournal
from chains.sender import send
from config.store import open_store

ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


async def rate(count: int, one: Callable[[int], Awaitable[None]]) -> float:
    start = time.perf_counter()
    for i in range(count):
        await one(i)
    return count / (time.perf_counter() - start)


async def poll(done: Callable[[], Awaitable[bool]]) -> None:
    """Wait for `done`, checking every millisecond."""
    for _ in range(100_000):
        if await done():
            return
        await asyncio.sleep(0.001)
    raise TimeoutError("never confirmed")


async def _final(adapter: EvmAdapter | SolanaAdapter, tx_id: TxId) -> bool:
    return (await adapter.status(tx_id)).state == "final"


async def _seen(client: AsyncClient, signature: Signature) -> bool:
    return (await client.get_signature_statuses([signature])).value[0] is not None


# -- EVM -------------------------------------------------------------------------------


async def evm_raw(w3: AsyncWeb3[Any], account: Any) -> Callable[[int], Awaitable[None]]:
    async def one(_: int) -> None:
        call = {"from": account.address, "to": RECIPIENT, "value": 1}
        gas = await w3.eth.estimate_gas(call)  # type: ignore[arg-type]
        block = await w3.eth.get_block("latest")
        tip = await w3.eth.max_priority_fee
        nonce = await w3.eth.get_transaction_count(account.address, "pending")
        tx = {
            "type": 2,
            "chainId": 31337,
            "nonce": nonce,
            "gas": gas,
            "to": RECIPIENT,
            "value": 1,
            "maxFeePerGas": 2 * block["baseFeePerGas"] + tip,
            "maxPriorityFeePerGas": tip,
        }
        tx_hash = await w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        while True:
            try:
                await w3.eth.get_transaction_receipt(tx_hash)
                return
            except TransactionNotFound:
                await asyncio.sleep(0.001)

    return one


def evm_ours(adapter: EvmAdapter, account, journal: TxJournal | None):
    async def one(_: int) -> None:
        tx = await adapter.build(NativeTransfer(to=RECIPIENT, amount=1), account.address)
        assert isinstance(tx, EvmUnsignedTx)
        signed = bytes(account.sign_transaction(tx.tx).raw_transaction)
        if journal is not None:
            await send(adapter, journal, tx, signed, poll=0.001)
            return
        tx_id = await adapter.broadcast(signed)
        await poll(lambda: _final(adapter, tx_id))

    return one


async def bench_evm(count: int, rounds: int, tmp: Path) -> dict[str, float]:
    port = free_port()
    node = start_anvil(31337, port)
    url = f"http://127.0.0.1:{port}"
    account = Account.from_key(ANVIL_KEY)
    chain = EvmChain(
        name="bench", family="evm", chain_id=31337, rpc="local", finality={"confirmations": 0}
    )
    engine = open_store(f"sqlite:///{tmp / 'bench.db'}")
    w3 = AsyncWeb3(AsyncHTTPProvider(url))
    adapter = await EvmAdapter.connect(chain, url=url, nonces=NonceStore(engine))
    uncached = await EvmAdapter.connect(chain, url=url, nonces=NonceStore(engine), fee_ttl=0)
    best: dict[str, float] = {
        "raw web3": 0.0,
        "adapter": 0.0,
        "adapter fee_ttl=0": 0.0,
        "adapter+journal": 0.0,
    }
    try:
        for _ in range(rounds):
            best["raw web3"] = max(best["raw web3"], await rate(count, await evm_raw(w3, account)))
            ours = evm_ours(adapter, account, None)
            best["adapter"] = max(best["adapter"], await rate(count, ours))
            fresh = evm_ours(uncached, account, None)
            best["adapter fee_ttl=0"] = max(best["adapter fee_ttl=0"], await rate(count, fresh))
            journaled = evm_ours(adapter, account, TxJournal(engine))
            best["adapter+journal"] = max(best["adapter+journal"], await rate(count, journaled))
    finally:
        await adapter.close()
        await uncached.close()
        await w3.provider.disconnect()
        node.kill()
        engine.dispose()
    return best


# -- Solana ----------------------------------------------------------------------------


Transfer = Callable[[int], Awaitable[None]]


def solana_raw(client: AsyncClient, payer: Keypair, to: Keypair, offset: int) -> Transfer:
    async def one(i: int) -> None:
        blockhash = (await client.get_latest_blockhash()).value.blockhash
        ix = transfer(
            TransferParams(
                from_pubkey=payer.pubkey(), to_pubkey=to.pubkey(), lamports=1_000_000 + offset + i
            )
        )
        tx = VersionedTransaction(
            MessageV0.try_compile(payer.pubkey(), [ix], [], blockhash), [payer]
        )
        signature = (await client.send_raw_transaction(bytes(tx))).value
        await poll(lambda: _seen(client, signature))

    return one


async def _json_rpc(
    session: aiohttp.ClientSession, url: str, method: str, params: list[Any]
) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    async with session.post(url, json=body) as response:
        answer = await response.json()
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def solana_raw_aiohttp(
    session: aiohttp.ClientSession, url: str, payer: Keypair, to: Keypair, offset: int
) -> Transfer:
    """The same careful client over the HTTP transport our adapter uses (aiohttp)."""

    async def one(i: int) -> None:
        latest = await _json_rpc(session, url, "getLatestBlockhash", [{"commitment": "confirmed"}])
        ix = transfer(
            TransferParams(
                from_pubkey=payer.pubkey(), to_pubkey=to.pubkey(), lamports=1_000_000 + offset + i
            )
        )
        message = MessageV0.try_compile(
            payer.pubkey(), [ix], [], Hash.from_string(latest["value"]["blockhash"])
        )
        raw = base64.b64encode(bytes(VersionedTransaction(message, [payer]))).decode()
        options = {"encoding": "base64", "preflightCommitment": "confirmed"}
        signature = await _json_rpc(session, url, "sendTransaction", [raw, options])

        async def seen() -> bool:
            found = await _json_rpc(session, url, "getSignatureStatuses", [[signature]])
            return found["value"][0] is not None

        await poll(seen)

    return one


def solana_ours(
    adapter: SolanaAdapter, payer: Keypair, to: Keypair, offset: int, journal: TxJournal | None
) -> Transfer:
    async def one(i: int) -> None:
        # Distinct amounts: two identical transfers within one blockhash are one transaction.
        intent = NativeTransfer(to=str(to.pubkey()), amount=1_000_000 + offset + i)
        tx = await adapter.build(intent, str(payer.pubkey()))
        assert isinstance(tx, SolanaUnsignedTx)
        signed = bytes(VersionedTransaction(tx.message, [payer]))
        if journal is not None:
            await send(adapter, journal, tx, signed, poll=0.001)
            return
        tx_id = await adapter.broadcast(signed)
        await poll(lambda: _final(adapter, tx_id))

    return one


async def bench_solana(count: int, rounds: int, tmp: Path) -> dict[str, float]:
    port = free_port()
    server = start_solana_rpc(port)
    url = f"http://127.0.0.1:{port}"
    client = AsyncClient(url)
    session = aiohttp.ClientSession()
    payer, to = Keypair(), Keypair()
    await client.request_airdrop(payer.pubkey(), 10**13)
    chain = SolanaChain(name="bench", family="solana", cluster="localnet", rpc="local")
    adapter = await SolanaAdapter.connect(chain, url=url)
    uncached = await SolanaAdapter.connect(chain, url=url, blockhash_ttl=0)
    engine = open_store(f"sqlite:///{tmp / 'bench-solana.db'}")
    journal = TxJournal(engine)
    sides: dict[str, Callable[[int], Transfer]] = {
        "raw solders": lambda o: solana_raw(client, payer, to, o),
        "raw over aiohttp": lambda o: solana_raw_aiohttp(session, url, payer, to, o),
        "adapter": lambda o: solana_ours(adapter, payer, to, o, None),
        "adapter ttl=0": lambda o: solana_ours(uncached, payer, to, o, None),
        "adapter+journal": lambda o: solana_ours(adapter, payer, to, o, journal),
    }
    best = dict.fromkeys(sides, 0.0)
    try:
        for r in range(rounds):
            for k, (name, make) in enumerate(sides.items()):
                # Distinct amounts per round and side: no transfer repeats another.
                one = make((r * len(sides) + k + 1) * 10 * count)
                best[name] = max(best[name], await rate(count, one))
    finally:
        await adapter.close()
        await uncached.close()
        await client.close()
        await session.close()
        server.kill()
        engine.dispose()
    return best


def report(title: str, figures: dict[str, float], *baselines: str) -> None:
    print(f"\n{title}")
    for name, value in figures.items():
        ratios = "   ".join(f"/ {b}: {value / figures[b]:.2f}" for b in baselines)
        print(f"  {name:<18} {value:8.1f} transfers/s   {ratios}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["evm", "solana"], help="bench one family only")
    args = parser.parse_args()
    if args.only != "solana":
        with tempfile.TemporaryDirectory() as tmp:
            evm = await bench_evm(args.count, args.rounds, Path(tmp))
        report("EVM native transfers on one anvil (sequential, each confirmed)", evm, "raw web3")
    if args.only != "evm":
        with tempfile.TemporaryDirectory() as tmp:
            solana = await bench_solana(args.count, args.rounds, Path(tmp))
        report(
            "Solana native transfers on one LiteSVM RPC server (sequential, each confirmed)",
            solana,
            "raw solders",
            "raw over aiohttp",
        )
    print("\ntarget: adapter / raw >= 0.90 on both")


if __name__ == "__main__":
    asyncio.run(main())
