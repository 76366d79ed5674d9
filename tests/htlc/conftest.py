"""Fixtures for the HTLC tests: a LiteSVM with the program, and a real anvil node."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chains.htlc.solana.litesvm_harness import HtlcSvm

REPO = Path(__file__).resolve().parents[2]
ANVIL = REPO / "node_modules" / ".bin" / "anvil"
ANVIL_CHAIN_ID = 42_161


@pytest.fixture(params=["mainnet", "all-features"])
def svm_env(request: pytest.FixtureRequest) -> HtlcSvm:
    """A fresh LiteSVM with the committed HTLC ELF deployed and the clock set, under
    mainnet-beta's feature set and under LiteSVM's default (every feature, as the
    devnet server runs)."""
    return HtlcSvm(mainnet=request.param == "mainnet")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"anvil exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"anvil did not listen on port {port} within {timeout}s")


@pytest.fixture(scope="module")
def anvil_url() -> Iterator[str]:
    """Start anvil (from npm) on a free loopback port for this module; stop it after."""
    if not ANVIL.exists() and shutil.which("node") is None:
        pytest.skip("anvil is not installed: run `npm ci` in the repository root")
    if not ANVIL.exists():
        pytest.skip(f"{ANVIL} is missing: run `npm ci` in the repository root")
    port = _free_port()
    command = [str(ANVIL), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--chain-id", str(ANVIL_CHAIN_ID), "--silent"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
