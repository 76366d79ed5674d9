"""The ChainAdapter contract: every backend must pass every test here."""

from __future__ import annotations

import pytest

from chains.base import NativeTransfer, TxId
from chains.sender import reconcile, send, send_intent
from config.errors import ChainError, InsufficientFunds, TransactionReverted


async def test_height_is_monotonic_and_covers_landed_transactions(backend):
    before = await backend.adapter.height()
    status = await send_intent(
        backend.adapter,
        backend.journal,
        NativeTransfer(to=backend.new_address(), amount=backend.amount),
        backend.sender,
        backend.sign,
    )
    after = await backend.adapter.height()
    assert status.block is not None
    assert 0 <= before <= after
    assert before <= status.block <= after


async def test_native_transfer_lands_once_and_is_final(backend):
    to = backend.new_address()
    status = await send_intent(
        backend.adapter,
        backend.journal,
        NativeTransfer(to=to, amount=backend.amount),
        backend.sender,
        backend.sign,
    )
    assert status.state == "final"
    assert await backend.adapter.balance(to) == backend.amount
    [entry] = backend.journal.entries(backend.adapter.chain.name)
    assert (entry.tx_id, entry.status) == (status.tx_id, "final")


async def test_digest_binds_the_transaction(backend):
    to = backend.new_address()
    one = await backend.adapter.build(NativeTransfer(to=to, amount=backend.amount), backend.sender)
    two = await backend.adapter.build(
        NativeTransfer(to=to, amount=backend.amount + 1), backend.sender
    )
    assert len(one.digest) == 32
    assert one.digest != two.digest


async def test_tx_id_is_known_before_broadcast(backend):
    unsigned = await backend.adapter.build(
        NativeTransfer(to=backend.new_address(), amount=backend.amount), backend.sender
    )
    signed = await backend.sign(unsigned)
    expected = backend.adapter.tx_id(signed)
    assert await backend.adapter.broadcast(signed) == expected


async def test_simulation_passes_for_an_affordable_transfer(backend):
    unsigned = await backend.adapter.build(
        NativeTransfer(to=backend.new_address(), amount=backend.amount), backend.sender
    )
    assert (await backend.adapter.simulate(unsigned)).ok
    assert (await backend.adapter.simulate(await backend.sign(unsigned))).ok


async def test_unaffordable_transfer_is_refused_before_sending(backend):
    to = backend.new_address()
    huge = await backend.adapter.balance(backend.sender) * 2
    with pytest.raises((InsufficientFunds, TransactionReverted)):
        await send_intent(
            backend.adapter,
            backend.journal,
            NativeTransfer(to=to, amount=huge),
            backend.sender,
            backend.sign,
        )
    assert await backend.adapter.balance(to) == 0


async def test_garbage_bytes_are_a_chain_error_not_a_crash(backend):
    with pytest.raises(ChainError):
        await backend.adapter.broadcast(b"\x02not a transaction")


async def test_unknown_transaction_is_not_final(backend):
    unsigned = await backend.adapter.build(
        NativeTransfer(to=backend.new_address(), amount=backend.amount), backend.sender
    )
    never_sent = backend.adapter.tx_id(await backend.sign(unsigned))
    status = await backend.adapter.status(never_sent)
    assert status.state in ("pending", "dropped")


async def test_journal_holds_the_bytes_before_broadcast(backend, monkeypatch):
    adapter, journal = backend.adapter, backend.journal
    unsigned = await adapter.build(
        NativeTransfer(to=backend.new_address(), amount=backend.amount), backend.sender
    )
    signed = await backend.sign(unsigned)
    seen: list[str | None] = []
    original = adapter.broadcast

    async def spy(raw: bytes) -> TxId:
        entry = journal.get(adapter.tx_id(raw))
        seen.append(None if entry is None else entry.status)
        assert entry is not None
        assert entry.raw == raw
        return TxId(await original(raw))

    monkeypatch.setattr(adapter, "broadcast", spy)
    await send(adapter, journal, unsigned, signed, timeout=30)
    assert seen[0] == "signed"


async def test_reconcile_after_crash_before_broadcast_sends_exactly_once(backend):
    adapter, journal = backend.adapter, backend.journal
    to = backend.new_address()
    unsigned = await adapter.build(NativeTransfer(to=to, amount=backend.amount), backend.sender)
    signed = await backend.sign(unsigned)
    journal.record(adapter.chain.name, unsigned, adapter.tx_id(signed), signed)  # then "crash"
    [outcome] = await reconcile(adapter, journal, timeout=30)
    assert not isinstance(outcome, ChainError)
    assert outcome.state == "final"
    assert await reconcile(adapter, journal, timeout=30) == []
    assert await adapter.balance(to) == backend.amount


async def test_the_same_signed_transaction_is_journaled_once(backend):
    adapter, journal = backend.adapter, backend.journal
    to = backend.new_address()
    unsigned = await adapter.build(NativeTransfer(to=to, amount=backend.amount), backend.sender)
    signed = await backend.sign(unsigned)
    await send(adapter, journal, unsigned, signed, timeout=30)
    with pytest.raises(ChainError, match=r"already journaled"):
        await send(adapter, journal, unsigned, signed, timeout=30)
    assert await adapter.balance(to) == backend.amount
