"""Compile Chainlink's MockV3Aggregator with the pinned npm ``solc`` and write its artifact.

``python -m chains.families.evm.aggregator.build`` writes ``MockV3Aggregator.json`` from
``node_modules/@chainlink/contracts`` (pinned in ``package.json``); ``--check`` only
verifies the committed artifact. The runtime needs neither node nor the package: it
installs the committed bytecode. Settings are the HTLC build's (same compiler, EVM
version, optimizer, no CBOR metadata), so the build is deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import posixpath
import re
import sys
from pathlib import Path
from typing import Any

from chains.htlc.evm.build import (
    EVM_VERSION,
    OPTIMIZER_RUNS,
    REPO,
    BuildError,
    _run_node,
    compiler_version,
    render,
)

HERE = Path(__file__).resolve().parent
ARTIFACT = HERE / "MockV3Aggregator.json"
PACKAGE = "@chainlink/contracts"
ENTRY = f"{PACKAGE}/src/v0.8/tests/MockV3Aggregator.sol"
CONTRACT = "MockV3Aggregator"
_IMPORT = re.compile(r'^\s*import\s+(?:\{[^}]*\}\s+from\s+)?"([^"]+)"\s*;', re.MULTILINE)


def package_version() -> str:
    """The installed `@chainlink/contracts` version (what `npm ci` put there)."""
    manifest = REPO / "node_modules" / PACKAGE / "package.json"
    if not manifest.exists():
        raise BuildError(f"{PACKAGE} is not installed; run `npm ci` in the repository root")
    return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])


def sources() -> dict[str, str]:
    """The entry source and everything it imports, by source unit name."""
    found: dict[str, str] = {}
    pending = [ENTRY]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        text = (REPO / "node_modules" / name).read_text(encoding="utf-8")
        found[name] = text
        for target in _IMPORT.findall(text):
            pending.append(posixpath.normpath(posixpath.join(posixpath.dirname(name), target)))
    return dict(sorted(found.items()))


def compile_aggregator() -> dict[str, Any]:
    """The artifact: ABI, creation bytecode, and what it was built from."""
    version, package = compiler_version(), package_version()
    units = sources()
    settings = {
        "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
        "evmVersion": EVM_VERSION,
        "metadata": {"appendCBOR": False, "bytecodeHash": "none"},
        "outputSelection": {ENTRY: {CONTRACT: ["abi", "evm.bytecode.object"]}},
    }
    request = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in units.items()},
        "settings": settings,
    }
    output = json.loads(_run_node([], json.dumps(request)))
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise BuildError("; ".join(e.get("formattedMessage", e["message"]) for e in errors))
    compiled = output["contracts"][ENTRY][CONTRACT]
    return {
        "contractName": CONTRACT,
        "sourceName": ENTRY,
        "package": f"{PACKAGE}@{package}",
        "sourcesSha256": {n: hashlib.sha256(t.encode()).hexdigest() for n, t in units.items()},
        "compiler": {"name": "solc (npm solc-js)", "version": version},
        "settings": settings | {"outputSelection": None},
        "abi": compiled["abi"],
        "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
    }


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    cli = argparse.ArgumentParser(description="Compile Chainlink's MockV3Aggregator.")
    cli.add_argument("--check", action="store_true", help="verify the committed artifact only")
    args = cli.parse_args(argv)
    text = render(compile_aggregator())
    if args.check:
        if not ARTIFACT.exists() or ARTIFACT.read_text(encoding="utf-8") != text:
            print("stale artifact; run python -m chains.families.evm.aggregator.build")
            return 1
        return 0
    ARTIFACT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
