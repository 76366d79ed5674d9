"""Throughput and latency of a realistic policy stack, in memory and durable.

Stack per agent: ConfidenceBreaker, SpendLimit (per transaction, per day, USD per day),
Allowlist, RateLimit, Authority; every action passes, so each evaluation does the full
work: ledger reservation, five policies, a group commit of the reservation (SQLite WAL,
synchronous=FULL) and an authorization minted after that commit. Authorizations minted
together share one Ed25519 signature over a Merkle root (wallets.authorization).

    python bench/bench_policies.py [--actions 20000] [--repeat 3] [--concurrency 256]
                                   [--dir DIR]

For each configuration it runs `--repeat` times on a fresh store and prints the median
evaluations/s with the range, the median p50/p99 latency, CPU time per evaluation (the
SQLite writer thread included), the mean rows per group commit and authorizations per
signature. Like the daemon, it freezes the start-up heap out of the garbage collector's
view before measuring (agents.app.runtime.freeze_startup_heap). Pinned to one CPU
where the OS allows it; the machine may be shared, so look at the range.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.app.runtime import freeze_startup_heap
from config.store import open_store
from policies import PolicyContext, PolicyEngine, ProposedAction
from policies._tables import spend_ledger
from policies.testing import (
    FakeClock,
    make_action,
    make_claims,
    make_deployment,
    make_evidence,
)

STACK: list[dict[str, Any]] = [
    {"ConfidenceBreaker": {"min_confidence": "0.6", "cooldown": "5m", "probes": 1}},
    {
        "SpendLimit": {
            "per_transaction": {"ETH": "0.1"},
            "per_day": {"ETH": "1000000"},
            "per_day_usd": "10000000000",
        }
    },
    {"Allowlist": {"recipients": ["acme-supplier"]}},
    {"RateLimit": {"max_actions": 1_000_000, "per": "1h"}},
    {"Authority": {}},
]
AGENTS = ("alpha", "bravo", "charlie", "delta")
WARM_UP = 2_000
TARGET = 20_000

DURABILITY = """\
Durability (SQLite rows): an evaluation returns Authorized only after the transaction
holding its spend reservation (and any breaker, approval or plan-grant row it changed)
has committed in WAL mode with synchronous=FULL, i.e. after fsync of the WAL; only then
is the authorization minted and returned. Evaluations that arrive while one commit is on
disk share the next transaction (group commit), and that commit's authorizations share
one Ed25519 signature over their Merkle root. Rolling-window sums and rate-limit slots
are kept in memory and rebuilt from the store on start; one engine per store (a newer
engine fences older ones, checked inside every commit)."""


@dataclass
class _Run:
    rate: float
    p50_us: float
    p99_us: float
    cpu_us: float
    rows_per_commit: float | None
    per_signature: float


def _actions(count: int, offset: int = 0) -> list[ProposedAction]:
    template = [make_action(agent=agent, amount="0.001") for agent in AGENTS]
    return [
        template[i % len(AGENTS)].model_copy(
            update={"digest": (offset + i).to_bytes(32, "big"), "plan_id": "bench"}
        )
        for i in range(count)
    ]


async def _drive(
    engine: PolicyEngine, actions: list[ProposedAction], concurrency: int
) -> tuple[float, list[float]]:
    contexts: dict[str, PolicyContext] = {
        agent: engine.context(
            agent,
            plan_id="bench",
            evidence=make_evidence("0.9"),
            claims=make_claims(agent, per_day={"ETH": "1000000"}),
        )
        for agent in AGENTS
    }
    latencies: list[float] = []
    queue = iter(actions)

    async def worker() -> None:
        # Each worker keeps one evaluation in flight, so `concurrency` are always
        # running: while one group commit syncs to disk the others keep evaluating.
        for action in queue:
            start = time.perf_counter()
            outcome = await engine.evaluate(action, contexts[action.agent])
            latencies.append(time.perf_counter() - start)
            if outcome.verdict != "authorized":
                raise SystemExit(f"benchmark action was not authorized: {outcome}")

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies


def _once(folder: str | None, durable: bool, concurrency: int, count: int) -> _Run:
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        store = open_store(f"sqlite:///{scratch}/bench.db") if durable else None
        try:
            engine = PolicyEngine(make_deployment(STACK, agents=AGENTS), store, clock=FakeClock())
            asyncio.run(_drive(engine, _actions(WARM_UP), concurrency))
            actions = _actions(count, WARM_UP)
            freeze_startup_heap()  # as the daemon does once it has started
            commits_before = engine.group_commits
            signatures_before = engine.signatures
            cpu = time.process_time()
            elapsed, latencies = asyncio.run(_drive(engine, actions, concurrency))
            cpu = time.process_time() - cpu
            gc.unfreeze()
            commits = [a - b for a, b in zip(engine.group_commits, commits_before, strict=True)]
            if store is not None:
                _check_on_disk(store, WARM_UP + count)
        finally:
            if store is not None:
                store.dispose()
    ordered = sorted(latencies)
    return _Run(
        rate=len(ordered) / elapsed,
        p50_us=statistics.median(ordered) * 1e6,
        p99_us=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6,
        cpu_us=cpu / len(ordered) * 1e6,
        rows_per_commit=commits[1] / commits[0] if commits[0] else None,
        per_signature=len(ordered) / max(1, engine.signatures - signatures_before),
    )


def _check_on_disk(store: sa.Engine, expected: int) -> None:
    """Every authorization handed out has its reservation row in the store."""
    with store.connect() as connection:
        found = connection.execute(sa.select(sa.func.count()).select_from(spend_ledger)).scalar()
    if found != expected:
        raise SystemExit(f"{expected} authorizations but {found} reservations on disk")


def _report(name: str, runs: list[_Run]) -> float:
    rates = sorted(run.rate for run in runs)
    median = statistics.median(rates)
    rows = [run.rows_per_commit for run in runs if run.rows_per_commit is not None]
    batch = f"{statistics.mean(rows):5.0f} rows/commit" if rows else " " * 16
    signed = statistics.mean(run.per_signature for run in runs)
    print(
        f"{name:<31} {median:>7,.0f}/s  (range {rates[0]:>6,.0f} to {rates[-1]:>6,.0f})  "
        f"p50 {statistics.median(r.p50_us for r in runs):>6,.0f} µs  "
        f"p99 {statistics.median(r.p99_us for r in runs):>6,.0f} µs  "
        f"CPU {statistics.median(r.cpu_us for r in runs):5.1f} µs/eval  {batch}  "
        f"{signed:4.0f} auths/signature"
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--actions", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--dir", default=None, help="Where the SQLite file goes (a disk).")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    names = ", ".join(name for policy in STACK for name in policy)
    print(f"policy stack: {names}; {len(AGENTS)} agents; CPUs usable: {cpus}")
    print(f"SQLite file in {args.dir or tempfile.gettempdir()}; {args.repeat} runs each\n")
    print(DURABILITY + "\n")
    runs = [
        (f"SQLite, {args.concurrency} concurrent", True, args.concurrency, args.actions),
        ("SQLite, 16 concurrent", True, 16, args.actions // 2),
        ("SQLite, one at a time", True, 1, min(args.actions, 2_000)),
        (f"memory only, {args.concurrency} concurrent", False, args.concurrency, args.actions),
    ]
    medians = {}
    for name, durable, concurrency, count in runs:
        results = [_once(args.dir, durable, concurrency, count) for _ in range(args.repeat)]
        medians[name] = _report(name, results)
    headline = medians[runs[0][0]]
    verdict = "met" if headline >= TARGET else "NOT met"
    print(
        f"\ntarget >= {TARGET:,}/s durable on one core: {verdict} "
        f"(median {headline:,.0f}/s with {args.concurrency} evaluations in flight; one at a "
        "time each evaluation waits for its own fsync)"
    )


if __name__ == "__main__":
    main()
