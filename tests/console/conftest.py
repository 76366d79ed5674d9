"""One demo daemon for the console's end-to-end tests: `main.py run` on a copy of
config/demo.yaml (its own data dir and port), with anvil and the LiteSVM server the
daemon starts itself, and a console token made by the CLI.

The copy differs from the demo in three ways, each for the test's sake: the maker and
the taker tick every 3s instead of 30s, the maker has one more scripted transfer (0.3
ETH, above the approval threshold too) so that there is a second request to reject,
and the console listens on a free port.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from chains.families.evm._anvil import anvil_path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "demo.yaml"
START_TIMEOUT = 180.0


@dataclass(frozen=True)
class DemoDaemon:
    """A running demo daemon: its deployment file, console URL and a login token."""

    file: Path
    url: str
    token: str
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_copy(directory: Path, port: int) -> Path:
    """config/demo.yaml with its data in `directory`, the console on `port`, quicker
    maker and taker, and a second transfer for the maker to wait approval with."""
    data = yaml.safe_load(DEMO.read_text())
    data["data_dir"] = str(directory / "data")
    data["console"] = {"listen": f"127.0.0.1:{port}"}
    for agent in data["agents"]:
        if agent["name"] in ("maker", "taker"):
            agent["schedule"] = {"every": "3s"}
    script = next(p for p in data["planners"] if p["name"] == "swap-script")
    script["plans"].append(
        {
            "confidence": "0.9",
            "rationale": "Another top-up, 0.3 ETH (for the test to reject).",
            "actions": [
                {
                    "kind": "transfer",
                    "chain": "arbitrum-local",
                    "asset": "ETH",
                    "amount": "0.3",
                    "counterparty": "taker",
                }
            ],
        }
    )
    shutil.copy(ROOT / "config" / "demo-invoices.yaml", directory / "demo-invoices.yaml")
    file = directory / "demo.yaml"
    file.write_text(yaml.safe_dump(data, sort_keys=False))
    return file


def cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _wait_healthy(url: str, daemon: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert daemon.poll() is None, f"the daemon exited: {log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the console never answered: {log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def demo_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoDaemon]:
    """The demo daemon, started once for every console test that needs it."""
    if anvil_path() is None:
        pytest.skip("anvil not installed: run `npm ci` (scripts/setup.sh does)")
    directory = tmp_path_factory.mktemp("console-demo")
    port = _free_port()
    file = demo_copy(directory, port)
    token = cli("console", "token", "create", str(file)).strip().splitlines()[-1]
    log = directory / "daemon.log"
    url = f"http://127.0.0.1:{port}"
    with running_daemon(file, url, log):
        yield DemoDaemon(file, url, token, log)


@contextmanager
def running_daemon(file: Path, url: str, log: Path, **env: str) -> Iterator[None]:
    """`main.py run FILE` until the block ends (then SIGTERM, as an operator stops it)."""
    with log.open("ab") as out:
        daemon = subprocess.Popen(
            [sys.executable, "main.py", "run", str(file)],
            cwd=ROOT,
            env={**os.environ, "COLUMNS": "200", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(url, daemon, log)
        yield
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=120)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
