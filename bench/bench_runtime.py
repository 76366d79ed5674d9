"""Runtime overhead per tick, and a daemon with many agents.

    python bench/bench_runtime.py [--agents 1000] [--seconds 30]

1. Overhead of one tick without model inference or confirmation waits: a scripted
   planner (no model) with an empty plan, on an in-process chain. A tick still observes
   the balance over the adapter, asks the planner, shows the plan to the policies,
   appends a signed audit entry and writes a heartbeat. Target: p50 <= 5 ms.
2. The same plus one payment (build, policies, authorization, signature, journal,
   broadcast); confirmation is instant on py-evm, so this bounds the rest of the path.
3. N scripted agents on one daemon scheduled every second: ticks/s and CPU use.

Model calls and prompt tokens per decision with the embedded model: bench_planner.py.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from agents.runtime import open_runtime
from config.loader import load_deployment
from wallets.operator import create_keystore

MNEMONIC = "test test test test test test test test test test test junk"
PASSPHRASE = "bench passphrase"
ACME = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


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


async def _tick_latency(directory: Path, plan: dict[str, Any], count: int) -> list[float]:
    deployment = load_deployment(_deployment(directory, 1, [plan]))
    create_keystore(deployment, MNEMONIC, PASSPHRASE)
    async with open_runtime(deployment, PASSPHRASE, fund_local_chains=True) as runtime:
        agent = runtime.agents["a0"]
        beat = runtime._ticker(agent)  # what the scheduler calls, heartbeat included
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            await beat()
            samples.append(time.perf_counter() - started)
    return samples


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _many_agents(directory: Path, agents: int, seconds: float) -> None:
    deployment = load_deployment(_deployment(directory, agents, [IDLE]))
    create_keystore(deployment, MNEMONIC, PASSPHRASE)
    started = time.perf_counter()
    async with open_runtime(deployment, PASSPHRASE) as runtime:
        print(f"  start-up with {agents} agents: {time.perf_counter() - started:.1f} s")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        runner = asyncio.create_task(runtime.run())
        await asyncio.sleep(seconds)
        assert runtime.scheduler is not None
        runtime.scheduler.stop()
        await runner
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        ticks = sum(len(agent.reports) for agent in runtime.agents.values())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"  {ticks} ticks in {wall:.1f} s: {ticks / wall:.0f} ticks/s "
        f"(scheduled: {agents} ticks/s); CPU {cpu / wall * 100:.0f}% of one core; "
        f"peak RSS {rss:.0f} MiB"
    )


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
            samples = asyncio.run(_tick_latency(directory, plan, args.ticks))[10:]
            print(
                f"{name}: p50 {statistics.median(samples) * 1000:.2f} ms, "
                f"p99 {_percentile(samples, 0.99) * 1000:.2f} ms over {len(samples)} ticks"
            )
        print(f"{args.agents} scripted agents, every 1 s, for {args.seconds:.0f} s:")
        directory = Path(tmp) / "many"
        directory.mkdir()
        asyncio.run(_many_agents(directory, args.agents, args.seconds))


if __name__ == "__main__":
    main()
