"""Start the LiteSVM-backed Solana JSON-RPC server as its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chains.devnet.processes import REPO_ROOT, wait_for_port


def start_solana_rpc(
    port: int,
    *,
    block_time: float = 0.4,
    finality_depth: int = 32,
    log: Path | None = None,
    extra_args: list[str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start the LiteSVM server (``solana_rpc``) on 127.0.0.1:`port`; wait until it listens."""
    args = [
        sys.executable,
        "-m",
        "chains.families.solana.solana_rpc",
        "--port",
        str(port),
        "--block-time",
        str(block_time),
        "--finality-depth",
        str(finality_depth),
        *(extra_args or []),
    ]
    output = log.open("ab") if log is not None else None
    try:
        process = subprocess.Popen(  # noqa: S603 - our own module, argument list, no shell
            args,
            stdout=output or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
    finally:
        if output is not None:
            output.close()  # the child has its own descriptor
    wait_for_port(port, process, timeout=60)
    return process
