"""Compile the EVM HTLC contract with the pinned npm ``solc`` and write its artifact.

``python -m chains.htlc.evm.build`` writes ``HTLC.json`` (and ``TestToken.json`` for the
tests); ``--check`` only verifies the committed artifacts. Needs ``npm ci`` in the
repository root (``solc`` is pinned in ``package.json``).

Determinism: fixed optimizer settings and EVM version, no CBOR metadata in the bytecode
(so paths and comments cannot change it), sources keyed by repository-relative names,
and JSON written with sorted keys.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
COMPILE_SCRIPT = HERE / "solc_compile.cjs"
SOLC_VERSION = "0.8.37"
EVM_VERSION = "cancun"  # supported by Arbitrum, Optimism, Base and anvil
OPTIMIZER_RUNS = 200
CONTRACTS = {"HTLC": "HTLC.sol", "TestToken": "TestToken.sol"}


class BuildError(RuntimeError):
    """The compiler is missing, the wrong version, or reported errors."""


def solc_available() -> bool:
    """True if node and the pinned npm solc are installed."""
    return shutil.which("node") is not None and (REPO / "node_modules" / "solc").is_dir()


def _run_node(args: list[str], stdin: str = "") -> str:
    node = shutil.which("node")
    if node is None:
        raise BuildError("node is not installed")
    result = subprocess.run(  # noqa: S603 - fixed script path, no shell
        [node, str(COMPILE_SCRIPT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if result.returncode != 0:
        raise BuildError(f"solc failed: {result.stderr.strip()}; run `npm ci` first")
    return result.stdout


def compiler_version() -> str:
    """Full version string of the npm solc (e.g. ``0.8.37+commit.<hash>.Emscripten.clang``)."""
    version = _run_node(["--version"]).strip()
    if not version.startswith(SOLC_VERSION + "+"):
        raise BuildError(f"solc {version} installed, {SOLC_VERSION} pinned; run `npm ci`")
    return version


def standard_input() -> dict[str, Any]:
    """The solc standard-JSON input; every setting that affects bytecode is fixed here."""
    sources = {
        f"chains/htlc/evm/{name}": {"content": (HERE / name).read_text(encoding="utf-8")}
        for name in sorted(CONTRACTS.values())
    }
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "evmVersion": EVM_VERSION,
            "metadata": {"appendCBOR": False, "bytecodeHash": "none"},
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }


def compile_contracts() -> dict[str, dict[str, Any]]:
    """Compile and return one artifact per contract name."""
    version = compiler_version()
    input_json = standard_input()
    output = json.loads(_run_node([], json.dumps(input_json)))
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise BuildError("; ".join(e.get("formattedMessage", e["message"]) for e in errors))
    artifacts = {}
    for name, filename in CONTRACTS.items():
        source_key = f"chains/htlc/evm/{filename}"
        compiled = output["contracts"][source_key][name]
        source = input_json["sources"][source_key]["content"]
        artifacts[name] = {
            "contractName": name,
            "sourceName": source_key,
            "sourceSha256": hashlib.sha256(source.encode()).hexdigest(),
            "compiler": {"name": "solc (npm solc-js)", "version": version},
            "settings": input_json["settings"] | {"outputSelection": None},
            "abi": compiled["abi"],
            "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
        }
    return artifacts


def render(artifact: dict[str, Any]) -> str:
    """Deterministic JSON text of an artifact."""
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    cli = argparse.ArgumentParser(description="Compile the Covenant EVM HTLC contract.")
    cli.add_argument("--check", action="store_true", help="verify committed artifacts only")
    args = cli.parse_args(argv)
    outputs = {HERE / f"{name}.json": render(a) for name, a in compile_contracts().items()}
    if args.check:
        stale = [p.name for p, text in outputs.items() if not p.exists() or p.read_text() != text]
        if stale:
            print(f"stale artifacts: {stale}; run python -m chains.htlc.evm.build")
            return 1
        return 0
    for path, text in outputs.items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
