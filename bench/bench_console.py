"""The console's cost: per tick (metrics on vs off), and page latency with many agents.

    python bench/bench_console.py [--agents 1000] [--ticks 300] [--requests 30]

1. CPU per tick of one scripted agent on an in-process chain (idle plan, and one payment),
   without the console and with it (its tick hook feeding `/metrics`). Live updates
   cost nothing per tick: the overview polls a fragment, whose cost is in part 2.
2. A daemon of N scripted agents that have ticked, its console served by uvicorn on
   loopback: wall time of GET /, /fragments/overview (what each open page polls every
   2 s), /approvals, /agents/a0 and /metrics, from a client in another thread.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.app.console import console_of
from agents.app.runtime import open_runtime
from agents.console import tokens
from agents.console.app import serving
from bench.bench_runtime import IDLE, MNEMONIC, PASSPHRASE, PAY, _deployment, _percentile
from config.loader import load_deployment
from wallets.operator import create_keystore

PAGES = ("/", "/fragments/overview", "/approvals", "/agents/a0", "/metrics")


def _with_console(file: Path, port: int) -> Any:
    text = file.read_text() + f"console: {{listen: '127.0.0.1:{port}'}}\n"
    file.write_text(text)
    return load_deployment(file)


async def _tick_cpu(
    directory: Path, plan: dict[str, Any], count: int, console: bool
) -> tuple[list[float], float]:
    """CPU per tick, and (with the console) CPU of the metrics hook alone per call."""
    file = _deployment(directory, 1, [plan])
    deployment = _with_console(file, 8787) if console else load_deployment(file)
    create_keystore(deployment, MNEMONIC, PASSPHRASE)
    async with open_runtime(deployment, PASSPHRASE, fund_local_chains=True) as runtime:
        if console:
            assert console_of(runtime) is not None  # adds the metrics tick hook
        agent = runtime.agents["a0"]
        tick = runtime._ticker(agent)
        cpu = []
        for _ in range(count):
            started = time.process_time()
            await tick()
            cpu.append(time.process_time() - started)
        hook = 0.0
        if console:
            calls, report = 10_000, agent.reports[-1]
            started = time.process_time()
            for _ in range(calls):
                runtime.tick_hooks[0]("a0", report, 0.001)
            hook = (time.process_time() - started) / calls
    return cpu[10:], hook


def _get_all(url: str, token: str, requests: int) -> dict[str, list[float]]:
    with httpx.Client(base_url=url, timeout=60) as client:
        csrf = client.get("/login").text.split('name="csrf" value="')[1].split('"')[0]
        client.post("/login", data={"csrf": csrf, "token": token})
        timings: dict[str, list[float]] = {}
        for page in PAGES:
            for _ in range(requests):
                started = time.perf_counter()
                reply = client.get(page)
                timings.setdefault(page, []).append(time.perf_counter() - started)
                assert reply.status_code == 200, (page, reply.status_code)
    return timings


async def _pages(directory: Path, agents: int, requests: int) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    deployment = _with_console(_deployment(directory, agents, [IDLE]), port)
    create_keystore(deployment, MNEMONIC, PASSPHRASE)
    async with open_runtime(deployment, PASSPHRASE) as runtime:
        console = console_of(runtime)
        assert console is not None
        _record, token = tokens.create_token(runtime.store, "bench")
        for agent in runtime.agents.values():  # every row has a tick to show
            await runtime._ticker(agent)()
        async with serving(console) as url:
            timings = await asyncio.to_thread(_get_all, url, token, requests)
    print(f"page latency with {agents} agents ({requests} requests each, loopback, uvicorn):")
    for page, values in timings.items():
        print(
            f"  GET {page}: p50 {statistics.median(values) * 1000:.1f} ms, "
            f"p99 {_percentile(values, 0.99) * 1000:.1f} ms"
        )


def main() -> None:
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=300)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, plan in (("idle tick", IDLE), ("tick with one payment", PAY)):
            medians, hook = [], 0.0
            for console in (False, True):
                directory = Path(tmp) / f"{name.replace(' ', '-')}-{console}"
                directory.mkdir()
                cpu, hook = asyncio.run(_tick_cpu(directory, plan, args.ticks, console))
                medians.append(statistics.median(cpu) * 1000)
            print(
                f"{name}: CPU p50 {medians[0]:.3f} ms without the console, {medians[1]:.3f} ms "
                f"with it (a difference within this shared VM's noise); the metrics hook "
                f"alone: {hook * 1e6:.1f} us per tick"
            )
        directory = Path(tmp) / "pages"
        directory.mkdir()
        asyncio.run(_pages(directory, args.agents, args.requests))


if __name__ == "__main__":
    main()
