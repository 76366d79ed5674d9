"""Fixtures: chains shared by the whole session (each test uses fresh agents and plan
ids, so tests cannot see each other's escrows), a fresh store per test."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from chains.families.evm._anvil import anvil_path
from config.store import open_store
from tests.atomic._env import (
    EVM_CHAINS,
    Authorizer,
    EvmNode,
    SolanaNode,
    start_evm_node,
    start_solana_node,
)

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="session")
def evm_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, EvmNode]]:
    if anvil_path() is None:
        pytest.skip("anvil is not installed: run `npm ci` in the repository root")
    logs = tmp_path_factory.mktemp("anvil")
    nodes = {
        name: start_evm_node(name, chain_id, logs / f"{name}.log")
        for name, chain_id in EVM_CHAINS.items()
    }
    yield nodes
    for node in nodes.values():
        if node.process is not None:
            os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait()


@pytest.fixture
def engine(tmp_path: Path):
    engine = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def authorizer() -> Authorizer:
    return Authorizer()


@pytest.fixture(scope="session")
def solana_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SolanaNode]:
    node = start_solana_node(tmp_path_factory.mktemp("svm") / "solana-rpc.log")
    yield node
    if node.process is not None:
        os.killpg(node.process.pid, signal.SIGKILL)
        node.process.wait()
