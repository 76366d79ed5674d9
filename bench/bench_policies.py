"""Throughput and latency of a realistic policy stack.

Stack per agent: ConfidenceBreaker, SpendLimit (per transaction, per day, USD per day),
Allowlist, RateLimit, Authority; every action passes, so each evaluation does the full
work: ledger reservation, five policies, a write-through commit of the reservation and
rate event (SQLite WAL, synchronous=FULL) and an Ed25519-signed authorization.

    python bench/bench_policies.py [--actions 20000] [--concurrency 256]

Prints evaluations per second and p50/p99 latency for: concurrent evaluations sharing
group commits (how a daemon with many agents loads the engine), one at a time (each pays
its own commit), and without a store. Pinned to one CPU where the OS allows it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.store import open_store
from policies import Engine, PolicyContext, ProposedAction
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


def _actions(count: int) -> list[ProposedAction]:
    template = [make_action(agent=agent, amount="0.001") for agent in AGENTS]
    return [
        template[i % len(AGENTS)].model_copy(
            update={"digest": i.to_bytes(32, "big"), "plan_id": "bench"}
        )
        for i in range(count)
    ]


def _engine(store_url: str | None) -> Engine:
    deployment = make_deployment(STACK, agents=AGENTS)
    store = open_store(store_url) if store_url else None
    return Engine(deployment, store, clock=FakeClock())


async def _timed(
    engine: Engine, action: ProposedAction, ctx: PolicyContext, out: list[float]
) -> None:
    start = time.perf_counter()
    outcome = await engine.evaluate(action, ctx)
    out.append(time.perf_counter() - start)
    if outcome.verdict != "authorized":
        raise SystemExit(f"benchmark action was not authorized: {outcome}")


async def _run(
    engine: Engine, actions: list[ProposedAction], concurrency: int
) -> tuple[float, list[float]]:
    contexts = {
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
            await _timed(engine, action, contexts[action.agent], latencies)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies


def _report(name: str, elapsed: float, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{name:<44} {len(latencies) / elapsed:>10,.0f} evaluations/s   "
        f"p50 {statistics.median(ordered) * 1e6:>8,.0f} µs   p99 {p99 * 1e6:>8,.0f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=256)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    names = ", ".join(name for policy in STACK for name in policy)
    print(
        f"policy stack: {names}; {len(AGENTS)} agents; "
        f"CPUs usable: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}"
    )
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        runs = [
            (f"SQLite store, {args.concurrency} concurrent", url, args.concurrency, args.actions),
            ("SQLite store, 16 concurrent", url, 16, args.actions // 2),
            ("SQLite store, one at a time", url, 1, min(args.actions, 2_000)),
            (
                f"no store (memory only), {args.concurrency} concurrent",
                None,
                args.concurrency,
                args.actions,
            ),
        ]
        for name, store_url, concurrency, count in runs:
            engine = _engine(store_url)
            actions = _actions(count)
            asyncio.run(_run(engine, actions[:200], concurrency))  # warm up
            elapsed, latencies = asyncio.run(_run(engine, actions[200:], concurrency))
            _report(name, elapsed, latencies)


if __name__ == "__main__":
    main()
