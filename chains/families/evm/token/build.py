"""Compile the local USDC (``LocalUSDC.sol`` on OpenZeppelin's ERC20 and ERC20Permit)
with the pinned npm ``solc`` and write its artifact.

``python -m chains.families.evm.token.build`` writes ``LocalUSDC.json``; ``--check`` only
verifies the committed artifact (see :mod:`chains.families.evm.npm_contracts`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chains.families.evm.npm_contracts import compile_artifact, write_or_check

HERE = Path(__file__).resolve().parent
ARTIFACT = HERE / "LocalUSDC.json"
ENTRY = "chains/families/evm/token/LocalUSDC.sol"
CONTRACT = "LocalUSDC"
PACKAGE = "@openzeppelin/contracts"
MODULE = "chains.families.evm.token.build"


def compile_token() -> dict[str, Any]:
    """The artifact: ABI, creation bytecode, and what it was built from."""
    entry = {ENTRY: (HERE / "LocalUSDC.sol").read_text(encoding="utf-8")}
    return compile_artifact(entry, ENTRY, CONTRACT, [PACKAGE])


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    cli = argparse.ArgumentParser(description="Compile the local USDC token.")
    cli.add_argument("--check", action="store_true", help="verify the committed artifact only")
    args = cli.parse_args(argv)
    return write_or_check(ARTIFACT, compile_token(), check=args.check, module=MODULE)


if __name__ == "__main__":
    sys.exit(main())
