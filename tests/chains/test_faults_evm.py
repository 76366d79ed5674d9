"""Faults on a real anvil: the RPC process killed mid-send, dropped and replaced txs."""

from __future__ import annotations

import asyncio

import pytest
from eth_account import Account
from hexbytes import HexBytes

from chains._store import NonceStore
from chains.base import NativeTransfer, TxId
from chains.families.evm.adapter import EvmAdapter
from chains.journal import TxJournal
from chains.sender import reconcile, send
from config.errors import ChainError, RpcUnreachable
from tests.chains.conftest import ANVIL_KEY, evm_chain, evm_signer, needs_anvil, new_evm_address

pytestmark = [needs_anvil, pytest.mark.anvil, pytest.mark.slow]

SENDER = Account.from_key(ANVIL_KEY).address
AMOUNT = 10**15


async def _rpc(adapter: EvmAdapter, method: str, *params: object) -> object:
    return await adapter._w3.provider.make_request(method, list(params))


@pytest.mark.parametrize("kill_at", ["after_journal", "after_broadcast"])
async def test_rpc_killed_during_send_never_sends_twice(
    anvil_factory, engine, kill_at, monkeypatch
):
    node = anvil_factory()
    journal = TxJournal(engine)
    to = new_evm_address()
    adapter = await EvmAdapter.connect(evm_chain(), url=node.url, nonces=NonceStore(engine))
    tx = await adapter.build(NativeTransfer(to=to, amount=AMOUNT), SENDER)
    signed = await evm_signer(ANVIL_KEY)(tx)
    if kill_at == "after_journal":
        record = journal.record

        def record_then_kill(*args, **kwargs):
            record(*args, **kwargs)
            node.kill()

        monkeypatch.setattr(journal, "record", record_then_kill)
    else:
        broadcast = adapter.broadcast

        async def broadcast_then_kill(raw: bytes) -> TxId:
            tx_id = await broadcast(raw)
            node.kill()
            return tx_id

        monkeypatch.setattr(adapter, "broadcast", broadcast_then_kill)
    with pytest.raises(RpcUnreachable, match=r"will not be sent twice|unreachable"):
        await send(adapter, journal, tx, signed, timeout=5, poll=0.05)
    await adapter.close()
    [entry] = journal.entries("evm-test")
    assert entry.status in ("unknown", "broadcast")

    node.start()  # the node comes back (its in-memory chain was lost with SIGKILL)
    async with await EvmAdapter.connect(
        evm_chain(), url=node.url, nonces=NonceStore(engine)
    ) as restarted:
        outcomes = await reconcile(restarted, TxJournal(engine), timeout=10, poll=0.05)
        assert [o.state for o in outcomes if not isinstance(o, ChainError)] == ["final"]
        assert await reconcile(restarted, TxJournal(engine), timeout=10) == []
        assert await restarted.balance(to) == AMOUNT
        assert await restarted._w3.eth.get_transaction_count(SENDER) == 1


async def test_dropped_transaction_is_rebroadcast_with_the_same_bytes(
    anvil_factory, engine, monkeypatch
):
    node = anvil_factory(no_mining=True)
    journal, to = TxJournal(engine), new_evm_address()
    async with await EvmAdapter.connect(
        evm_chain(), url=node.url, nonces=NonceStore(engine)
    ) as adapter:
        tx = await adapter.build(NativeTransfer(to=to, amount=AMOUNT), SENDER)
        signed = await evm_signer(ANVIL_KEY)(tx)
        tx_id = adapter.tx_id(signed)
        sent: list[bytes] = []
        broadcast = adapter.broadcast

        async def counting(raw: bytes) -> TxId:
            sent.append(raw)
            return await broadcast(raw)

        monkeypatch.setattr(adapter, "broadcast", counting)
        sending = asyncio.create_task(send(adapter, journal, tx, signed, timeout=30, poll=0.05))
        await _until(lambda: adapter.status(tx_id), "pending")
        await _rpc(adapter, "anvil_dropTransaction", tx_id)
        await _until(lambda: adapter.status(tx_id), "pending")  # same bytes are back
        await _rpc(adapter, "evm_mine")
        status = await asyncio.wait_for(sending, 30)
        assert status.state == "final"
        assert len(sent) >= 2
        assert set(sent) == {signed}
        block = await adapter._w3.eth.get_block(status.block or 0)
        assert [HexBytes(h).to_0x_hex() for h in block["transactions"]] == [tx_id]  # type: ignore[arg-type]
        assert await adapter.balance(to) == AMOUNT
        assert await adapter._w3.eth.get_transaction_count(SENDER) == 1


async def test_replacement_means_one_mined_transaction_for_the_nonce(anvil_factory, engine):
    node = anvil_factory(no_mining=True)
    journal, to = TxJournal(engine), new_evm_address()
    sign = evm_signer(ANVIL_KEY)
    async with await EvmAdapter.connect(
        evm_chain(), url=node.url, nonces=NonceStore(engine)
    ) as adapter:
        stuck = await adapter.build(NativeTransfer(to=to, amount=AMOUNT), SENDER)
        stuck_raw = await sign(stuck)
        with pytest.raises(ChainError):  # nothing mines, so tracking times out
            await send(adapter, journal, stuck, stuck_raw, timeout=0.3, poll=0.05)
        bumped = await adapter.replacement(stuck)
        bumped_raw = await sign(bumped)
        sending = asyncio.create_task(
            send(
                adapter,
                journal,
                bumped,
                bumped_raw,
                timeout=30,
                poll=0.05,
                replaces=adapter.tx_id(stuck_raw),
            )
        )
        await _until(lambda: adapter.status(adapter.tx_id(bumped_raw)), "pending")
        await _rpc(adapter, "evm_mine")
        assert (await asyncio.wait_for(sending, 30)).state == "final"
        outcomes = await reconcile(adapter, journal, timeout=5, poll=0.05)
        assert len(outcomes) == 1
        assert isinstance(outcomes[0], ChainError)
        statuses = {e.tx_id: e.status for e in journal.entries("evm-test")}
        assert statuses == {
            adapter.tx_id(stuck_raw): "replaced",
            adapter.tx_id(bumped_raw): "final",
        }
        assert await adapter.balance(to) == AMOUNT
        assert await adapter._w3.eth.get_transaction_count(SENDER) == 1


async def _until(probe, state: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    for _ in range(100_000):
        if (await probe()).state == state:
            return
        assert asyncio.get_running_loop().time() < deadline, f"never reached {state}"
        await asyncio.sleep(0.02)
