"""Contracts built from pinned npm packages' Solidity sources, with the pinned npm solc.

Used by the local devnet contracts that are not ours to write: Chainlink's
MockV3Aggregator (``aggregator/``) and the local USDC built on OpenZeppelin's ERC-20
(``token/``). The settings are the HTLC build's (same compiler, EVM version, optimizer, no
CBOR metadata), so each artifact is a deterministic function of its sources; the
runtime needs neither node nor the packages, only the committed artifact.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Mapping, Sequence
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

_IMPORT = re.compile(r'^\s*import\s+(?:\{[^}]*\}\s+from\s+)?"([^"]+)"\s*;', re.MULTILINE)
NODE_MODULES = REPO / "node_modules"


def package_version(package: str) -> str:
    """The installed version of npm `package` (what `npm ci` put there)."""
    manifest = NODE_MODULES / package / "package.json"
    if not manifest.exists():
        raise BuildError(f"{package} is not installed; run `npm ci` in the repository root")
    return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])


def sources(entries: Mapping[str, str]) -> dict[str, str]:
    """`entries` (source unit name -> text) and everything they import, by unit name.
    An import starting with ``@`` names a file of an npm package; any other is relative
    to the importing unit."""
    found: dict[str, str] = {}
    pending = [(name, text) for name, text in entries.items()]
    while pending:
        name, text = pending.pop()
        if name in found:
            continue
        found[name] = text
        for target in _IMPORT.findall(text):
            unit = (
                target
                if target.startswith("@")
                else posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
            )
            if unit not in found:
                pending.append((unit, (NODE_MODULES / unit).read_text(encoding="utf-8")))
    return dict(sorted(found.items()))


def compile_artifact(
    entries: Mapping[str, str], entry: str, contract: str, packages: Sequence[str]
) -> dict[str, Any]:
    """The artifact of `contract` in source unit `entry`: ABI, creation bytecode, and what
    it was built from (the packages' versions and every source's SHA-256)."""
    version = compiler_version()
    units = sources(entries)
    settings = {
        "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
        "evmVersion": EVM_VERSION,
        "metadata": {"appendCBOR": False, "bytecodeHash": "none"},
        "outputSelection": {entry: {contract: ["abi", "evm.bytecode.object"]}},
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
    compiled = output["contracts"][entry][contract]
    built_from = [f"{package}@{package_version(package)}" for package in packages]
    return {
        "contractName": contract,
        "sourceName": entry,
        "package": built_from[0] if len(built_from) == 1 else built_from,
        "sourcesSha256": {n: hashlib.sha256(t.encode()).hexdigest() for n, t in units.items()},
        "compiler": {"name": "solc (npm solc-js)", "version": version},
        "settings": settings | {"outputSelection": None},
        "abi": compiled["abi"],
        "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
    }


def write_or_check(
    artifact_path: Path, artifact: dict[str, Any], *, check: bool, module: str
) -> int:
    """Write `artifact`, or with `check` only compare it with the committed one; the exit
    code (1: stale, with the command that rebuilds it)."""
    text = render(artifact)
    if check:
        if not artifact_path.exists() or artifact_path.read_text(encoding="utf-8") != text:
            print(f"stale artifact {artifact_path.name}; run python -m {module}")
            return 1
        return 0
    artifact_path.write_text(text, encoding="utf-8")
    return 0
