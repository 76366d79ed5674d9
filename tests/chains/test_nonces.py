"""The nonce manager: no nonce to two builds, no gap after a crash at any instant.

Found by an outside audit: a daemon SIGKILLed after its nonce reservation was written but
before the signed transaction reached the journal came back and skipped the nonce (the
crashed reservation was younger than its expiry), so every later transaction of the
account sat in anvil's queue behind the gap; and concurrent builds from one account got
the same nonce. Real anvil, real store (SQLite, and PostgreSQL when
COVENANT_TEST_POSTGRES_URL points at one), real processes killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chains._store import NonceStore
from chains.base import NativeTransfer
from chains.families.evm.adapter import EvmAdapter
from chains.journal import TxJournal, store_entry
from chains.sender import resend_unsent, send_intent, track
from config.store import open_store
from tests.chains.conftest import ANVIL_KEY, evm_chain, evm_signer, needs_anvil, new_evm_address

pytestmark = [pytest.mark.anvil, needs_anvil]
SENDER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ROOT = Path(__file__).resolve().parents[2]

# A build in its own process: reserve a nonce through the adapter, then either die by
# SIGKILL before anything reaches the journal (the audit's 13 ms window) or stay alive.
_BUILDER = textwrap.dedent(
    """
    import asyncio, os, signal, sys, time
    from chains._store import NonceStore
    from chains.base import NativeTransfer
    from chains.families.evm.adapter import EvmAdapter
    from config.store import open_store
    from tests.chains.conftest import evm_chain

    async def main(url, store, mode):
        nonces = NonceStore(open_store(store))
        adapter = await EvmAdapter.connect(evm_chain(), url=url, nonces=nonces)
        tx = await adapter.build(NativeTransfer(to="0x" + "22" * 20, amount=1), sys.argv[4])
        print(tx.nonce, flush=True)
        if mode == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)

    asyncio.run(main(*sys.argv[1:4]))
    """
)


def _builder(node_url: str, store_url: str, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _BUILDER, node_url, store_url, mode, SENDER],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


async def test_a_build_killed_before_its_journal_write_leaves_no_gap(anvil_factory, store_url):
    node = anvil_factory()
    crashed = _builder(node.url, store_url, "crash")
    assert crashed.stdout is not None
    assert crashed.stdout.readline().strip() == "0"  # it reserved nonce 0 ...
    assert crashed.wait(30) == -9  # ... and died by SIGKILL before journaling it
    engine = open_store(store_url)
    journal_ = TxJournal(engine)
    async with await EvmAdapter.connect(
        evm_chain(), url=node.url, nonces=NonceStore(engine)
    ) as adapter:
        to = new_evm_address()
        status = await send_intent(
            adapter, journal_, NativeTransfer(to=to, amount=1), SENDER, evm_signer(ANVIL_KEY)
        )
        assert status.state == "final"  # nonce 0 was reused; a gap would never mine
        [entry] = journal_.entries("evm-test")
        assert entry.nonce == 0
        assert await adapter.balance(to) == 1
    engine.dispose()


async def test_a_live_builders_reservation_is_honoured(anvil_factory, store_url):
    """Negative control: the same reservation, held by a process still alive, is kept."""
    node = anvil_factory()
    alive = _builder(node.url, store_url, "live")
    try:
        assert alive.stdout is not None
        assert alive.stdout.readline().strip() == "0"
        engine = open_store(store_url)
        async with await EvmAdapter.connect(
            evm_chain(), url=node.url, nonces=NonceStore(engine)
        ) as adapter:
            tx = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
        assert tx.nonce == 1
        engine.dispose()
    finally:
        alive.kill()
        alive.wait()


async def test_ten_concurrent_transfers_from_one_account_all_land_once(anvil_factory, store_url):
    node = anvil_factory()
    engine = open_store(store_url)
    journal_ = TxJournal(engine)
    sign = evm_signer(ANVIL_KEY)
    recipients = [new_evm_address() for _ in range(10)]
    async with await EvmAdapter.connect(
        evm_chain(), url=node.url, nonces=NonceStore(engine)
    ) as adapter:
        statuses = await asyncio.gather(
            *(
                send_intent(adapter, journal_, NativeTransfer(to=to, amount=7), SENDER, sign)
                for to in recipients
            )
        )
        assert [status.state for status in statuses] == ["final"] * 10
        entries = journal_.entries("evm-test")
        assert sorted(entry.nonce or 0 for entry in entries) == list(range(10))  # no duplicates
        assert journal_.open_entries("evm-test") == []
        assert [await adapter.balance(to) for to in recipients] == [7] * 10
        assert await adapter._w3.eth.get_transaction_count(SENDER) == 10  # type: ignore[arg-type]
    engine.dispose()


def test_threads_reserving_at_once_never_share_a_nonce(store_url):
    """The audit's diagnostic: many threads reserve while others release."""
    engine = open_store(store_url)
    nonces = NonceStore(engine)

    def reserve(_: int) -> int:
        return nonces.reserve("evm-test", SENDER, 0)

    with ThreadPoolExecutor(10) as pool:
        got = list(pool.map(reserve, range(100)))
    assert sorted(got) == list(range(100))
    nonces.release("evm-test", SENDER, 41)
    assert nonces.reserve("evm-test", SENDER, 0) == 41  # a released nonce is reused
    assert nonces.reserve("evm-test", SENDER, 0) == 100
    engine.dispose()


async def test_what_a_crash_left_journaled_but_unsent_goes_out_before_anything_new(
    anvil_factory, store_url
):
    """A crash between journal and broadcast leaves nonce 0 journaled; the next build takes
    nonce 1, which the node queues until nonce 0 arrives. `resend_unsent` (the watchtower's
    first sweep after a start) sends it, so nothing waits behind it."""
    node = anvil_factory()
    engine = open_store(store_url)
    journal_ = TxJournal(engine)
    sign = evm_signer(ANVIL_KEY)
    async with await EvmAdapter.connect(
        evm_chain(), url=node.url, nonces=NonceStore(engine)
    ) as adapter:
        crashed = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
        raw = await sign(crashed)
        journal_.record("evm-test", crashed, adapter.tx_id(raw), raw)  # ... then SIGKILL
        later = await adapter.build(NativeTransfer(to=new_evm_address(), amount=1), SENDER)
        later_raw = await sign(later)
        journal_.record("evm-test", later, adapter.tx_id(later_raw), later_raw)
        await adapter.broadcast(later_raw)
        journal_.mark(adapter.tx_id(later_raw), "broadcast")
        assert (crashed.nonce, later.nonce) == (0, 1)
        # Negative control: nonce 1 is stuck behind the unsent nonce 0.
        assert (await adapter.status(adapter.tx_id(later_raw))).state == "pending"
        assert await resend_unsent(adapter, journal_) == 1
        for raw_tx in (raw, later_raw):
            status = await track(
                adapter, journal_, store_entry(journal_, adapter.tx_id(raw_tx)), timeout=10
            )
            assert status.state == "final"
        assert await resend_unsent(adapter, journal_) == 0  # nothing is sent twice
    engine.dispose()
