"""Structural proof that only the policy engine can mint an authorization."""

from __future__ import annotations

import ast
from pathlib import Path

from policies.testing import make_action

ROOT = Path(__file__).resolve().parents[2]
SKIP = {"tests", "node_modules", ".venv", ".git", ".covenant", "build"}


def _product_sources() -> list[Path]:
    return [
        path for path in ROOT.rglob("*.py") if not SKIP.intersection(path.relative_to(ROOT).parts)
    ]


def test_the_scan_sees_the_engine_and_the_mint_definition() -> None:
    files = {path.relative_to(ROOT).as_posix() for path in _product_sources()}
    assert "policies/engine.py" in files
    assert "wallets/authorization.py" in files


def _references(tree: ast.AST, name: str) -> tuple[int, int]:
    """(calls of `name`, any other mention of it: imports, attributes, names)."""
    calls = mentions = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            calls += called == name
        elif isinstance(node, ast.Name | ast.Attribute):
            mentions += (getattr(node, "id", None) or getattr(node, "attr", None)) == name
        elif isinstance(node, ast.alias):
            mentions += node.name == name or node.asname == name
    return calls, mentions


def _scan(name: str) -> dict[str, tuple[int, int]]:
    found = {}
    for path in _product_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls, mentions = _references(tree, name)
        if calls or mentions:
            found[path.relative_to(ROOT).as_posix()] = (calls, mentions)
    return found


def test_only_the_engine_constructs_or_imports_an_authorization_mint() -> None:
    found = _scan("AuthorizationMint")
    calls = {path for path, (count, _) in found.items() if count}
    assert calls == {"policies/engine.py"}
    assert found["policies/engine.py"][0] == 1
    # Outside the wallets package that defines (and re-exports) it, only the engine
    # may even name the class.
    outside = {path for path in found if not path.startswith("wallets/")}
    assert outside == {"policies/engine.py"}


def test_the_scan_detects_an_aliased_import_and_call() -> None:
    tree = ast.parse("from wallets.authorization import AuthorizationMint as M\nM()\n")
    assert _references(tree, "AuthorizationMint") == (0, 1)
    tree = ast.parse("import wallets.authorization as w\nw.AuthorizationMint()\n")
    assert _references(tree, "AuthorizationMint") == (1, 1)


def test_only_wallets_builds_authorization_values() -> None:
    # An Authorization built elsewhere could not carry a valid signature, but nothing
    # outside the mint has any business building one.
    building = [path for path, (calls, _) in _scan("Authorization").items() if calls]
    assert building == ["wallets/authorization.py"]


def test_kit_actions_that_differ_have_different_digests() -> None:
    assert make_action().digest != make_action(amount="0.06").digest
