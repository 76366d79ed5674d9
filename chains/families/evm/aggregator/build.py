"""Compile Chainlink's MockV3Aggregator with the pinned npm ``solc`` and write its artifact.

``python -m chains.families.evm.aggregator.build`` writes ``MockV3Aggregator.json`` from
``node_modules/@chainlink/contracts`` (pinned in ``package.json``); ``--check`` only
verifies the committed artifact (see :mod:`chains.families.evm.npm_contracts`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chains.families.evm.npm_contracts import NODE_MODULES, compile_artifact, write_or_check

HERE = Path(__file__).resolve().parent
ARTIFACT = HERE / "MockV3Aggregator.json"
PACKAGE = "@chainlink/contracts"
ENTRY = f"{PACKAGE}/src/v0.8/tests/MockV3Aggregator.sol"
CONTRACT = "MockV3Aggregator"
MODULE = "chains.families.evm.aggregator.build"


def compile_aggregator() -> dict[str, Any]:
    """The artifact: ABI, creation bytecode, and what it was built from."""
    entry = {ENTRY: (NODE_MODULES / ENTRY).read_text(encoding="utf-8")}
    return compile_artifact(entry, ENTRY, CONTRACT, [PACKAGE])


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    cli = argparse.ArgumentParser(description="Compile Chainlink's MockV3Aggregator.")
    cli.add_argument("--check", action="store_true", help="verify the committed artifact only")
    args = cli.parse_args(argv)
    return write_or_check(ARTIFACT, compile_aggregator(), check=args.check, module=MODULE)


if __name__ == "__main__":
    sys.exit(main())
