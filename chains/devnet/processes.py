"""Ports and process start-up shared by every family's local chain node."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from config.errors import ChainError

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout: nodes run from here, and npm installs anvil under its node_modules."""


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Block until something accepts connections on `port`, or fail if `process` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ChainError(
                f"local chain process exited with code {process.returncode} "
                f"before listening on port {port}; is the port taken?"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise ChainError(f"local chain did not listen on port {port} within {timeout:g}s")


def start_node(
    args: list[str], port: int, *, log: Path | None, cwd: Path | None = None, timeout: float = 20
) -> subprocess.Popen[bytes]:
    """Start a local chain node (`args`, our own program) in its own session, its output
    appended to `log`, and return once it listens on `port`."""
    output = log.open("ab") if log is not None else None
    try:
        process = subprocess.Popen(  # noqa: S603 - our own program, argument list, no shell
            args,
            stdout=output or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        if output is not None:
            output.close()  # the child has its own descriptor
    wait_for_port(port, process, timeout=timeout)
    return process
