"""Start and stop anvil (Foundry's EVM node, from the pinned npm package)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from chains.devnet.processes import REPO_ROOT, start_node
from config.errors import ChainError


def anvil_path() -> Path | None:
    """The anvil binary: npm's platform package first (so signals reach the node itself,
    not a Node.js wrapper), then node_modules/.bin, then PATH."""
    native = sorted((REPO_ROOT / "node_modules" / "@foundry-rs").glob("anvil-*/bin/anvil"))
    if native:
        return native[0]
    wrapper = REPO_ROOT / "node_modules" / ".bin" / "anvil"
    if wrapper.exists():
        return wrapper
    found = shutil.which("anvil")
    return Path(found) if found else None


def start_anvil(
    chain_id: int,
    port: int,
    *,
    state: Path | None = None,
    no_mining: bool = False,
    block_time: float | None = None,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start anvil on 127.0.0.1:`port` and wait until it answers."""
    binary = anvil_path()
    if binary is None:
        raise ChainError(
            "anvil is not installed; run `npm ci` in the repository root "
            "(package.json pins @foundry-rs/anvil)"
        )
    args = [
        str(binary),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chain-id",
        str(chain_id),
        "--silent",
    ]
    if state is not None:
        args += ["--state", str(state), "--state-interval", "1"]
    if no_mining:
        args.append("--no-mining")
    if block_time is not None:
        args += ["--block-time", f"{block_time:g}"]
    return start_node(args, port, log=log)
