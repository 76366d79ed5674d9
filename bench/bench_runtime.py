"""Runtime overhead per tick, and a daemon with many agents.

    python bench/bench_runtime.py [--agents 1000] [--seconds 30]

1. Overhead of one tick without model inference or confirmation waits: a scripted
   planner (no model) with an empty plan, on an in-process chain. A tick still observes
   the balance over the adapter, asks the planner, shows the plan to the policies,
   waits for its signed audit entry's commit (fsync) and writes a heartbeat. Printed as
   wall time (fsync included) and CPU time (the overhead itself). Target: p50 <= 5 ms.
2. The same plus one payment (build, policies, authorization, signature, journal,
   broadcast); confirmation is instant on py-evm, so this bounds the rest of the path.
3. N scripted agents on one daemon scheduled every second: ticks/s and CPU use.

Model calls and prompt tokens per decision with the embedded model: bench_planner.py.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from agents.app.runtime import open_runtime
from chains.devnet import manager as devnet
from chains.families.evm._anvil import anvil_path
from config.loader import load_deployment
from wallets.operator import create_keystore

MNEMONIC = "test test test test test test test test test test test junk"
PASSPHRASE = "bench passphrase"
ACME = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
WARM_UP = 3.0


def _deployment(directory: Path, agents: int, plans: list[dict[str, Any]]) -> Path:
    data = {
        "name": "bench",
        "operator": {"name": "op"},
        "chains": [
            {
                "name": "arb",
                "family": "evm",
                "chain_id": 31337,
                "rpc": "local",
                "finality": {"confirmations": 0},
                "local": {"fund_agents": "10"},
            }
        ],
        "assets": [
            {"symbol": "ETH", "chain": "arb", "native": True, "decimals": 18, "usd_price": "3000"}
        ],
        "address_book": [{"name": "acme", "addresses": {"arb": ACME}}],
        "planners": [{"name": "script", "kind": "scripted", "plans": plans, "repeat": True}],
        "agents": [
            {
                "name": f"a{index}",
                "schedule": {"every": "1s"},
                "mandate": "Pay acme.",
                "planner": "script",
                "chains": ["arb"],
                "policies": [
                    {"ConfidenceBreaker": {"min_confidence": "0.6", "cooldown": "5m"}},
                    {"Allowlist": {"recipients": ["acme"]}},
                    {"SpendLimit": {"per_transaction": {"ETH": "0.001"}}},
                    {"RateLimit": {"max_actions": 100000, "per": "1h"}},
                ],
            }
            for index in range(agents)
        ],
    }
    file = directory / "bench.yaml"
    file.write_text(yaml.safe_dump(data))
    return file


PAY = {
    "confidence": "0.9",
    "actions": [
        {
            "kind": "transfer",
            "chain": "arb",
            "asset": "ETH",
            "amount": "0.000001",
            "counterparty": "acme",
        }
    ],
}
IDLE = {"confidence": "0.9", "actions": []}


async def _tick_latency(
    directory: Path, plan: dict[str, Any], count: int
) -> tuple[list[float], list[float]]:
    """Wall time and CPU time of `count` ticks (the CPU part excludes waits for the
    store's fsync and the chain)."""
    deployment = load_deployment(_deployment(directory, 1, [plan]))
    create_keystore(deployment, MNEMONIC, PASSPHRASE)
    async with open_runtime(deployment, PASSPHRASE, fund_local_chains=True) as runtime:
        agent = runtime.agents["a0"]
        beat = runtime._ticker(agent)  # what the scheduler calls, heartbeat included
        samples, cpu = [], []
        for _ in range(count):
            started, cpu_started = time.perf_counter(), time.process_time()
            await beat()
            samples.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
    return samples, cpu


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ticks(runtime: Any) -> int:
    return sum(len(agent.reports) for agent in runtime.agents.values())


async def _many_agents(directory: Path, agents: int, seconds: float, node_pid: int | None) -> None:
    deployment = load_deployment(_deployment(directory, agents, [IDLE]))
    create_keystore(deployment, MNEMONIC, PASSPHRASE)
    started = time.perf_counter()
    async with open_runtime(deployment, PASSPHRASE) as runtime:
        startup = time.perf_counter() - started
        runner = asyncio.create_task(runtime.run())
        await asyncio.sleep(WARM_UP)  # every agent has ticked; measure the steady state
        ticks0, cpu0, wall0 = _ticks(runtime), time.process_time(), time.perf_counter()
        node0 = _cpu_seconds(node_pid) if node_pid else 0.0
        await asyncio.sleep(seconds)
        ticks, cpu = _ticks(runtime) - ticks0, time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        node = (_cpu_seconds(node_pid) - node0) / wall * 100 if node_pid else None
        assert runtime.scheduler is not None
        runtime.scheduler.stop()
        await runner
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"  {ticks / wall:.0f} ticks/s (scheduled: {agents}/s); daemon CPU {cpu / wall * 100:.0f}%"
        f" of one core"
        + (f", anvil {node:.0f}%" if node is not None else "")
        + f"; start-up {startup:.1f} s; peak RSS {rss:.0f} MiB"
    )


async def _start_anvil(directory: Path) -> tuple[Any, int] | None:
    """anvil for the deployment in `directory` (as `devnet up` starts it), or None."""
    if anvil_path() is None:
        return None
    deployment = load_deployment(_deployment(directory, 1, [IDLE]))
    state = await devnet.up(deployment)
    return deployment, state.nodes["arb"].pid


def _many(directory: Path, agents: int, seconds: float) -> None:
    directory.mkdir()
    anvil = asyncio.run(_start_anvil(directory))
    chain = "anvil over HTTP JSON-RPC" if anvil else "in-process py-evm (anvil not installed)"
    print(
        f"{agents} scripted agents on one daemon, each every 1 s, measured for {seconds:.0f} s "
        f"after {WARM_UP:.0f} s:\n  chain: {chain}; store: SQLite WAL, synchronous=FULL, "
        "in the data dir; planner: scripted, empty plans; 4 policies per agent"
    )
    try:
        asyncio.run(_many_agents(directory, agents, seconds, anvil and anvil[1]))
    finally:
        if anvil:
            devnet.down(anvil[0])


def main() -> None:
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--ticks", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, plan in (("idle tick", IDLE), ("tick with one payment", PAY)):
            directory = Path(tmp) / name.replace(" ", "-")
            directory.mkdir()
            wall, cpu = asyncio.run(_tick_latency(directory, plan, args.ticks))
            wall, cpu = wall[10:], cpu[10:]  # warmed up
            print(
                f"{name}: wall p50 {statistics.median(wall) * 1000:.2f} ms, "
                f"p99 {_percentile(wall, 0.99) * 1000:.2f} ms; CPU p50 "
                f"{statistics.median(cpu) * 1000:.2f} ms, p99 {_percentile(cpu, 0.99) * 1000:.2f}"
                f" ms over {len(wall)} ticks" + (" (target: p50 <= 5 ms)" if plan is IDLE else "")
            )
        _many(Path(tmp) / "many", args.agents, args.seconds)


if __name__ == "__main__":
    main()
