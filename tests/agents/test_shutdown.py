"""Shutdown owns the background writers: nothing handed to the audit log is left to a
task nobody awaits."""

from __future__ import annotations

import asyncio

from agents.audit import AuditLog, entries
from config.store import open_store
from tests.agents.conftest import make_signer


async def test_drain_waits_for_every_entry_in_flight(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    log = AuditLog(engine, {"alice": make_signer(), "bob": make_signer(b"\x02" * 32)})
    pending = [
        asyncio.ensure_future(log.record(agent, {"note": f"{agent} {n}"}))
        for n in range(20)
        for agent in ("alice", "bob")
    ]
    await asyncio.sleep(0)  # the writer has started; most entries are still queued
    await log.drain()
    assert log._committer.writer is not None
    assert log._committer.writer.done()
    assert len(entries(engine, "alice")) == 20
    assert len(entries(engine, "bob")) == 20
    assert all(task.done() for task in pending)
    await asyncio.gather(*pending)
    engine.dispose()


async def test_drain_without_writes_returns_at_once(tmp_path):
    """Negative control: nothing was recorded, there is no writer to wait for."""
    engine = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    log = AuditLog(engine, {"alice": make_signer()})
    await asyncio.wait_for(log.drain(), 1)
    assert log._committer.writer is None
    engine.dispose()
