"""A minimal daemon for the crash tests, run as its own process.

``python tests/atomic/_daemon.py CONFIG.json``: opens the store, derives the agent's
wallet from the test mnemonic, journals the configured plans (idempotently), then lets
a watchtower drive every open plan to the end. Its EVM adapters keep nonces in the store,
as the runtime's do. ``COVENANT_CRASH_AT`` makes it SIGKILL
itself at a journal boundary; ``COVENANT_CRASH_AT_WRITE=before:N`` or ``after:N`` just
before or just after its N-th durable store commit (see :func:`crash_at_write`), and
``COVENANT_WRITES_LOG=PATH`` appends one line per durable commit to PATH.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from chains._store import NonceStore
from chains.atomic import ChainMargin, Coordinator, HtlcChain, Margins, Payment
from chains.atomic.swap import Counterparty, SwapSide, accept_offer, make_offer, on_acceptance
from chains.atomic.watchtower import Watchtower
from chains.families.evm.adapter import EvmAdapter
from chains.families.evm.escrow import EvmHtlc
from config.store import open_store
from tests.atomic._env import (
    Authorizer,
    EvmNode,
    SolanaNode,
    make_wallet,
    party,
    solana_htlc,
)

WRITE_VAR = "COVENANT_CRASH_AT_WRITE"
WRITES_LOG_VAR = "COVENANT_WRITES_LOG"
_DML = re.compile(
    r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b\W*(?:OR \w+ )?(?:INTO |FROM )?\W*(\w+)", re.I
)


class _WriteCounter:
    """Counts durable commits: a DBAPI commit of a transaction that ran an INSERT, UPDATE
    or DELETE (a commit that wrote nothing, such as the PRAGMA round trips of
    ``chains._store.relaxed``, changes nothing a restart can see, so it is no instant)."""

    def __init__(self, when: str, target: int, log_path: str | None) -> None:
        self.when, self.target, self.count = when, target, 0
        self._log = (
            os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600) if log_path else None
        )
        self._pending: dict[int, list[str]] = {}  # raw connection id -> what it wrote
        self._lock = threading.Lock()

    def executed(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        match = _DML.match(statement)
        if match:
            what = f"{match.group(1).upper()} {match.group(2)}"
            self._pending.setdefault(id(conn.connection.dbapi_connection), []).append(what)

    def commit(self, original: Callable[[Any, Any], None], dialect: Any, connection: Any) -> None:
        wrote = self._pending.pop(id(getattr(connection, "dbapi_connection", connection)), None)
        if not wrote:
            original(dialect, connection)
            return
        with self._lock:
            self.count += 1
            index = self.count
        if self._log is not None:
            os.write(self._log, f"{index}\t{','.join(dict.fromkeys(wrote))}\n".encode())
        if index == self.target and self.when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        original(dialect, connection)
        if index == self.target and self.when == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    def rollback(self, original: Callable[[Any, Any], None], dialect: Any, connection: Any) -> None:
        self._pending.pop(id(getattr(connection, "dbapi_connection", connection)), None)
        original(dialect, connection)


def crash_at_write(spec: str | None, log_path: str | None) -> None:
    """Count this process's durable store commits and SIGKILL it just ``before`` (the
    transaction is lost, what was sent since the last commit is not) or just ``after``
    (the commit is on disk, nothing after it happened) the N-th, for `spec`
    ``before:N`` / ``after:N``; with `log_path`, log each commit's index and statements.

    Test-only: it wraps SQLAlchemy's ``DefaultDialect.do_commit`` / ``do_rollback`` in
    this process, so product code carries no hook. Every store write goes through them:
    the store is SQLAlchemy Core on SQLite and nothing opens sqlite3 directly.
    """
    if not spec and not log_path:
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.engine.default import DefaultDialect

    when, _, count = (spec or "never:0").partition(":")
    if when not in ("before", "after", "never") or not count.isdigit():
        raise ValueError(f"{WRITE_VAR}={spec!r}: use before:N or after:N (N counts from 1)")
    counter = _WriteCounter(when, int(count), log_path)
    event.listen(Engine, "before_cursor_execute", counter.executed)
    commit, rollback = DefaultDialect.do_commit, DefaultDialect.do_rollback
    DefaultDialect.do_commit = lambda self, c: counter.commit(commit, self, c)  # type: ignore[method-assign]
    DefaultDialect.do_rollback = lambda self, c: counter.rollback(rollback, self, c)  # type: ignore[method-assign]


async def main(config: dict[str, Any]) -> int:
    crash_at_write(os.environ.get(WRITE_VAR), os.environ.get(WRITES_LOG_VAR))
    engine = open_store(config["store"])
    authorizer = Authorizer()  # stands in for this daemon's policy engine
    wallet = make_wallet(config["agent"], config["mnemonic"])
    quick = ChainMargin(inclusion=1, finality=0)
    margins = Margins(
        watcher_interval=config["watcher"], evm=quick, solana=quick, slack=2, max_lock=3600
    )
    chains: dict[str, HtlcChain] = {}
    for name, node in config["evm"].items():
        evm = EvmNode(name, node["chain_id"], node["url"], node["contract"])
        # Nonces live in the store, as the runtime's adapters keep them (chains.connect).
        adapter = await EvmAdapter.connect(evm.config(), url=evm.url, nonces=NonceStore(engine))
        chains[name] = EvmHtlc(adapter, evm.contract, margin=margins.of(name, "evm"))
    if config.get("solana"):
        chains["sol"] = await solana_htlc(SolanaNode(config["solana"]), margins)
    coordinator = Coordinator(
        engine,
        party(wallet, authorizer),
        chains,
        authorizer,
        margins=margins,
        tx_timeout=20,
        poll=0.05,
    )
    taker = await _swaps(config, engine, coordinator, chains, authorizer, margins)
    for plan in config["plans"]:
        payments = []
        for payment in plan["payments"]:
            offset = payment.pop("deadline_in", None)
            if offset is not None:
                payment["deadline"] = await chains[payment["chain"]].now() + offset
            payments.append(Payment.model_validate(payment))
        await coordinator.create_plan(plan["id"], payments)
    ticker = asyncio.create_task(
        _tick([EvmNode(name, 0, node["url"], "") for name, node in config["evm"].items()])
    )
    still_open = await Watchtower([coordinator, taker], interval=0.1).settle(timeout=60)
    ticker.cancel()
    for chain in chains.values():
        await chain.close()
        await chain.adapter.close()
    return 3 if still_open else 0


async def _swaps(
    config: dict[str, Any],
    engine: Any,
    maker: Coordinator,
    chains: dict[str, HtlcChain],
    authorizer: Authorizer,
    margins: Margins,
) -> Coordinator:
    """A second agent of this daemon, and the swaps it takes from the first one: offer,
    acceptance and its receipt are idempotent, so a restart replays them safely."""
    wallet = make_wallet("taker", config["taker_mnemonic"])

    async def trust(did: str, plan: Any) -> bool:
        return did == maker.party.did

    taker = Coordinator(
        engine,
        party(wallet, authorizer),
        chains,
        authorizer,
        margins=margins,
        verify_authority=trust,
        tx_timeout=20,
        poll=0.05,
    )
    them = Counterparty(
        did=wallet.did, addresses={"evm": wallet.evm_address, "solana": wallet.solana_address}
    )
    for swap in config.get("swaps", []):
        offer = await make_offer(
            maker,
            swap["id"],
            give=SwapSide(**swap["give"]),
            take=SwapSide(**swap["take"]),
            taker=them,
        )
        acceptance = await accept_offer(taker, offer, maker_did=maker.party.did)
        on_acceptance(maker, swap["id"], acceptance)
    return taker


async def _tick(nodes: list[EvmNode]) -> None:
    """Mine an empty block every half second, as a live L2 would: an idle anvil has no
    new blocks, so its clock (the latest block's timestamp) would never pass a deadline."""
    while True:
        for node in nodes:
            await asyncio.to_thread(node.mine)
        await asyncio.sleep(0.5)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(json.loads(Path(sys.argv[1]).read_text()))))
