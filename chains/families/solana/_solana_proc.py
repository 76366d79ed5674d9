"""Start the LiteSVM-backed Solana JSON-RPC server as its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chains.devnet.processes import REPO_ROOT, start_node


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
    return start_node(args, port, log=log, cwd=REPO_ROOT, timeout=60)
