"""Chain families are plug-ins: no product module outside a family's folder and the
registry names a family or imports a family's modules, and every registered family
implements the whole :class:`~chains.families.base.ChainFamily` interface."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from chains import families
from chains.families import FAMILIES, family, family_of_namespace
from chains.families.base import ChainFamily

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = [*(ROOT / package for package in ("agents", "chains", "policies", "wallets", "config"))]
FAMILY_DIR = ROOT / "chains" / "families"
REGISTRY = FAMILY_DIR / "__init__.py"
NAMES = {f.name for f in FAMILIES}
WORDS = NAMES | {f.did_namespace for f in FAMILIES}
"""Family names and their did:pkh namespaces: the literals a switch on family uses."""

ONCHAIN_BUILDS = {ROOT / "chains" / "htlc" / f.name for f in FAMILIES}
"""The on-chain escrow sources and their builds (Solidity, sBPF assembly), kept where
their committed artifacts record them. They are build tools, not a switch on family:
solc's output has a section called 'evm', the program build uses its client's layout."""


def product_files() -> list[Path]:
    files = [ROOT / "main.py"]
    for package in PRODUCT:
        files.extend(sorted(package.rglob("*.py")))
    return [f for f in files if not any(build in f.parents for build in ONCHAIN_BUILDS)]


def owner_of(path: Path) -> str | None:
    """The family whose folder holds `path`, or None."""
    try:
        relative = path.relative_to(FAMILY_DIR)
    except ValueError:
        return None
    return relative.parts[0] if len(relative.parts) > 1 else None


def family_references(source: str, path: Path) -> list[str]:
    """Family literals and family-module imports in `source` (the file at `path`) that
    are not allowed there: only a family's own folder may name it, only the registry
    may import every family. One finding per offending node, in line order."""
    if path == REGISTRY:
        return []
    owner = owner_of(path)
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and node.value in WORDS and owner is None:
            found.append((node.lineno, f"literal {node.value!r}"))
        foreign = [module for module in _imported(node) if _family_of(module) not in (None, owner)]
        if foreign and isinstance(node, ast.Import | ast.ImportFrom):
            found.append((node.lineno, f"imports {foreign[0]}"))
    return [f"{path.name}:{line}: {what}" for line, what in sorted(found)]


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module is not None:
        # `from chains.families import evm` imports the family package too.
        return [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return []


def _family_of(module: str) -> str | None:
    """The registered family whose folder holds `module`, or None."""
    parts = module.split(".")
    if parts[:2] == ["chains", "families"] and len(parts) > 2 and parts[2] in NAMES:
        return parts[2]
    return None


def test_no_family_literal_or_import_outside_the_family_folders() -> None:
    found = [
        problem
        for path in product_files()
        for problem in family_references(path.read_text(encoding="utf-8"), path)
    ]
    assert found == []


def test_the_checker_reports_a_switch_on_family() -> None:
    source = (
        "from chains.families.evm.adapter import EvmAdapter\n"
        "from chains.families import solana\n"
        "def address(wallet, family):\n"
        '    return wallet.a if family == "evm" else wallet.b\n'
        'NAMESPACE = "eip155"\n'
    )
    found = family_references(source, ROOT / "agents" / "synthetic.py")
    assert found == [
        "synthetic.py:1: imports chains.families.evm.adapter",
        "synthetic.py:2: imports chains.families.solana",
        "synthetic.py:4: literal 'evm'",
        "synthetic.py:5: literal 'eip155'",
    ]


def test_a_family_may_name_itself_but_not_import_another() -> None:
    name = FAMILIES[0].name
    other = FAMILIES[1].name
    source = f'NAME = "{name}"\nfrom chains.families.{other}.config import X\n'
    found = family_references(source, FAMILY_DIR / name / "synthetic.py")
    assert found == [f"synthetic.py:2: imports chains.families.{other}.config"]


def test_the_registry_lists_each_family_once() -> None:
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names)) >= 2
    assert len({f.did_namespace for f in FAMILIES}) == len(FAMILIES)
    assert len({f.devnet_kind for f in FAMILIES}) == len(FAMILIES)
    registry = ast.parse(REGISTRY.read_text(encoding="utf-8"))
    listed = [
        str(node.value)
        for node in ast.walk(registry)
        if isinstance(node, ast.Constant) and str(node.value).startswith("chains.families.")
    ]
    assert sorted(listed) == sorted(f"chains.families.{name}" for name in names)
    for registered in FAMILIES:
        assert family(registered.name) is registered
        assert family_of_namespace(registered.did_namespace) is registered


INTERFACE = [
    name
    for name, member in vars(ChainFamily).items()
    if not name.startswith("_") and inspect.isfunction(member)
]
ATTRIBUTES = [name for name in ChainFamily.__annotations__ if not name.startswith("_")]


@pytest.mark.parametrize("registered", FAMILIES, ids=lambda f: f.name)
def test_each_family_implements_the_whole_interface(registered: ChainFamily) -> None:
    assert isinstance(registered, ChainFamily)
    assert len(INTERFACE) >= 20
    for name in INTERFACE:
        implementation = getattr(type(registered), name)
        declared = inspect.signature(getattr(ChainFamily, name))
        assert list(inspect.signature(implementation).parameters) == list(declared.parameters)
        assert inspect.iscoroutinefunction(implementation) == inspect.iscoroutinefunction(
            getattr(ChainFamily, name)
        ), name
    for name in ATTRIBUTES:
        assert getattr(registered, name) is not None, name
    annotation = registered.config_model.model_fields["family"].annotation
    assert getattr(annotation, "__args__", None) == (registered.name,)


def test_registry_import_is_light() -> None:
    # config.models imports the registry while it is being built; the families'
    # adapters (web3, solana-py) must load only when a family is used.
    assert "FAMILY" not in vars(families)
    for registered in FAMILIES:
        module = inspect.getmodule(type(registered))
        assert module is not None
        source = inspect.getsource(module)
        top_level = [
            node for node in ast.parse(source).body if isinstance(node, ast.Import | ast.ImportFrom)
        ]
        heavy = ("web3", "solana", "solders", "chains.base", "wallets")
        for node in top_level:
            modules = _imported(node)
            assert not any(m.startswith(heavy) for m in modules[:1]), modules
