"""Cluster mode: ticks per second of 1, 2 and 3 daemons sharing scripted agents on a
local PostgreSQL, CPU per daemon, and the lease overhead per tick.

    COVENANT_TEST_POSTGRES_URL=postgresql+psycopg://... \\
        python bench/bench_cluster.py [--agents 3000] [--seconds 20] [--daemons 1,2,3]

Each run starts from an empty database and real `main.py run` processes (anvil for the
chain), every agent scheduled every second with an empty scripted plan (a tick still
observes its balance over RPC, shows the plan to the policies, commits its signed audit
entry and a heartbeat, every write fenced by its lease). Ticks are counted from the
audit log over the window, CPU from /proc. The lease overhead is measured on the same
database: one lease cycle (renewing every agent a daemon holds) and one fence check, per
tick given the cycles per second (three per TTL per daemon) and the transactions per
tick that PostgreSQL counted (pg_stat_database) during the window.

The database is wiped: point it at a scratch database only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from agents.cluster.fence import LeaseFence
from agents.cluster.lease import LeaseStore, LeaseTable, cluster_engine, local_deadline
from chains.devnet import manager as devnet
from config.store import open_store
from tests.agents import _cluster_harness as harness
from tests.conftest import _empty_postgres

TTL = 5.0
WARM_UP = 5.0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sample(engine: sa.Engine, pids: list[int]) -> tuple[float, int, int, list[float]]:
    with engine.connect() as connection:
        ticks = connection.execute(sa.text("SELECT count(*) FROM audit_entries")).scalar_one()
        commits = connection.execute(
            sa.text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        ).scalar_one()
    return time.monotonic(), int(ticks), int(commits), [_cpu_seconds(pid) for pid in pids]


def run(url: str, agents: int, daemons: int, seconds: float) -> dict[str, Any]:
    """One measurement: `daemons` daemons sharing `agents` agents for `seconds`."""
    _empty_postgres(url)
    work = Path(tempfile.mkdtemp(prefix=f"bench-cluster-{daemons}-"))
    file = harness.deployment_file(work, url, agents=agents, ttl=f"{TTL:g}s", pay=False)
    deployment = harness.prepare(file, fund=False)
    engine = open_store(url)
    names = [f"d{index + 1}" for index in range(daemons)]
    processes = {
        name: harness.start_daemon(file, name, work / f"{name}.log", record=False) for name in names
    }
    try:
        started = time.monotonic()

        def shared() -> bool:
            owners = harness.owners(engine)
            held = [owner for owner, _ in owners.values() if owner]
            return len(held) == agents and set(held) == set(names)

        harness.wait_until(shared, 600, "every agent held by the daemons", poll=0.5)

        def ticked() -> bool:
            with engine.connect() as connection:
                found = connection.execute(
                    sa.text("SELECT count(DISTINCT agent) FROM audit_entries")
                ).scalar_one()
            return int(found) == agents

        harness.wait_until(ticked, 600, "every agent to tick once", poll=1.0)
        ready = time.monotonic() - started
        time.sleep(WARM_UP)
        pids = [processes[name].pid for name in names]
        t0, ticks0, commits0, cpu0 = _sample(engine, pids)
        time.sleep(seconds)
        t1, ticks1, commits1, cpu1 = _sample(engine, pids)
    finally:
        harness.stop_all(processes)
        devnet.down(deployment)
    elapsed = t1 - t0
    ticks = ticks1 - ticks0
    cycle, fence = _lease_costs(url, engine, agents, daemons)
    engine.dispose()
    rate = ticks / elapsed
    per_tick_tx = (commits1 - commits0) / max(ticks, 1)
    cycles_per_second = daemons * 3 / TTL
    return {
        "daemons": daemons,
        "ready_s": ready,
        "ticks_per_s": rate,
        "cpu": [(b - a) / elapsed for a, b in zip(cpu0, cpu1, strict=True)],
        "tx_per_tick": per_tick_tx,
        "cycle_ms": cycle * 1000,
        "fence_ms": fence * 1000,
        "lease_ms_per_tick": (cycle * cycles_per_second / max(rate, 1e-9) + fence * per_tick_tx)
        * 1000,
    }


def _lease_costs(url: str, store: sa.Engine, agents: int, daemons: int) -> tuple[float, float]:
    """Seconds of one lease cycle of a daemon holding agents/daemons agents, and of one
    fence check, on the benchmark's database (the daemons have stopped)."""
    held = [f"a{index:04d}" for index in range(-(-agents // daemons))]
    engine = cluster_engine(url, TTL)
    leases = LeaseStore(engine, "bench", held, TTL)
    table = LeaseTable()
    fence = LeaseFence("bench", table)
    try:
        leases.register()
        leases.cycle(lambda _agent: True, [])
        timings = []
        for _ in range(10):
            begun = time.monotonic()
            result = leases.cycle(lambda _agent: True, held)
            timings.append(time.monotonic() - begun)
            table.set(result.held, local_deadline(begun, TTL))
        checks = []
        for agent in held[:200]:
            with store.begin() as connection:
                begun = time.monotonic()
                fence.held(connection, [agent])
                checks.append(time.monotonic() - begun)
    finally:
        leases.leave(held)
        engine.dispose()
    return sorted(timings)[len(timings) // 2], sorted(checks)[len(checks) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--daemons", default="1,2,3")
    args = parser.parse_args()
    url = os.environ.get("COVENANT_TEST_POSTGRES_URL")
    if not url:
        raise SystemExit("set COVENANT_TEST_POSTGRES_URL to a scratch PostgreSQL database")
    print(
        f"{args.agents} scripted agents every 1s (demand {args.agents} ticks/s), TTL {TTL:g}s, "
        f"{os.cpu_count()} CPUs shared by the daemons, anvil and PostgreSQL; "
        f"window {args.seconds:g}s"
    )
    for daemons in (int(part) for part in args.daemons.split(",")):
        figures = run(url, args.agents, daemons, args.seconds)
        cpu = ", ".join(f"{value:.2f}" for value in figures["cpu"])
        print(
            f"{daemons} daemon(s): {figures['ticks_per_s']:.0f} ticks/s; CPU per daemon "
            f"[{cpu}] cores; every agent ticking after {figures['ready_s']:.1f}s; "
            f"{figures['tx_per_tick']:.2f} transactions per tick; lease cycle "
            f"{figures['cycle_ms']:.1f} ms, fence check {figures['fence_ms']:.2f} ms; lease "
            f"overhead {figures['lease_ms_per_tick']:.3f} ms per tick",
            flush=True,
        )


if __name__ == "__main__":
    main()
