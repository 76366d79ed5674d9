"""Fixtures for the wallets tests: a demo-shaped deployment in tmp_path, its store, and
a keystore made from the well-known Hardhat/Anvil test mnemonic at a test-only scrypt cost.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config.loader import load_deployment
from config.models import Deployment
from config.store import open_store
from wallets.operator import OperatorWallets, create_keystore, open_wallets

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"
TEST_MNEMONIC = "test test test test test test test test test test test junk"
PASSPHRASE = "correct horse battery staple"
FAST_N = 2**10
"""Test-only scrypt cost; production code uses DEFAULT_SCRYPT_N (2^18)."""


def write_deployment(directory: Path, **changes: object) -> Path:
    """The demo deployment with its data dir inside `directory`, plus `changes`."""
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["data_dir"] = "data"
    data.update(changes)
    path = directory / "deployment.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    return load_deployment(write_deployment(tmp_path))


@pytest.fixture
def engine(deployment: Deployment):
    engine = open_store(deployment.store.url or "")
    yield engine
    engine.dispose()


@pytest.fixture
def wallets(deployment: Deployment, engine) -> OperatorWallets:
    create_keystore(deployment, TEST_MNEMONIC, PASSPHRASE, scrypt_n=FAST_N)
    return open_wallets(deployment, engine, PASSPHRASE, scrypt_n=FAST_N)
