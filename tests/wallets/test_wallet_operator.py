"""open_wallets, stable indices, preimages, the demo keystore and passphrase sources."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from config.errors import KeystoreError, WalletError
from config.loader import load_deployment
from config.models import Deployment
from config.store import open_store
from wallets.operator import (
    OperatorWallets,
    create_keystore,
    ensure_demo_keystore,
    keystore_for,
    open_wallets,
)
from wallets.passphrase import ENV_VAR, resolve_passphrase

from .conftest import FAST_N, PASSPHRASE, TEST_MNEMONIC, write_deployment


def test_agents_get_their_store_index(wallets: OperatorWallets) -> None:
    assert [wallets.agent(name).index for name in ("payer", "maker", "taker")] == [0, 1, 2]
    assert wallets.agent("payer").evm_address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_reordering_agents_in_yaml_keeps_their_keys(
    tmp_path: Path, wallets: OperatorWallets
) -> None:
    deployment = load_deployment(tmp_path / "deployment.yaml")
    reordered = deployment.model_copy(update={"agents": list(reversed(deployment.agents))})
    engine = open_store(deployment.store.url or "")
    try:
        again = open_wallets(reordered, engine, PASSPHRASE, scrypt_n=FAST_N)
    finally:
        engine.dispose()
    for name in ("payer", "maker", "taker"):
        assert again.agent(name).evm_address == wallets.agent(name).evm_address
        assert again.agent(name).did == wallets.agent(name).did


def test_unknown_agent_lists_the_known_ones(wallets: OperatorWallets) -> None:
    with pytest.raises(WalletError, match="maker, payer, taker"):
        wallets.agent("nobody")


def test_preimages_are_deterministic_and_separate(wallets: OperatorWallets) -> None:
    first = wallets.derive_preimage("maker", "plan-1")
    assert first == wallets.agent("maker").derive_preimage("plan-1")
    assert len(first) == 32
    assert first != wallets.derive_preimage("maker", "plan-2")
    assert first != wallets.derive_preimage("taker", "plan-1")
    assert first.hex() not in repr(wallets) + repr(wallets.agent("maker"))


def test_operator_did_must_match_the_deployment(tmp_path: Path, engine) -> None:
    path = write_deployment(
        tmp_path,
        operator={"name": "op", "did": "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"},
    )
    deployment = load_deployment(path)
    create_keystore(deployment, TEST_MNEMONIC, PASSPHRASE, scrypt_n=FAST_N)
    with pytest.raises(KeystoreError, match=r"deployment names operator\.did"):
        open_wallets(deployment, engine, PASSPHRASE, scrypt_n=FAST_N)


def test_demo_keystore_is_created_once_with_a_private_passphrase_file(
    deployment: Deployment, engine, caplog: pytest.LogCaptureFixture
) -> None:
    passphrase = ensure_demo_keystore(deployment, scrypt_n=FAST_N)
    passphrase_file = Path(deployment.data_dir or "") / "demo-passphrase"
    assert stat.S_IMODE(passphrase_file.stat().st_mode) == 0o600
    assert "demo-passphrase" in caplog.text
    assert passphrase not in caplog.text
    assert ensure_demo_keystore(deployment, scrypt_n=FAST_N) == passphrase
    wallets = open_wallets(deployment, engine, passphrase, scrypt_n=FAST_N)
    assert wallets.agent("payer").evm_address != "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_demo_keystore_is_refused_for_real_chains(tmp_path: Path) -> None:
    path = write_deployment(tmp_path)
    deployment = load_deployment(path)
    chains = [
        chain.model_copy(update={"rpc": "https://arb1.example.org"})
        if chain.name == "arbitrum-local"
        else chain
        for chain in deployment.chains
    ]
    real = deployment.model_copy(update={"chains": chains})
    with pytest.raises(KeystoreError, match="arbitrum-local are not local"):
        ensure_demo_keystore(real, scrypt_n=FAST_N)
    assert not keystore_for(real).exists()


def test_passphrase_sources_in_order(deployment: Deployment, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(KeystoreError, match=ENV_VAR):
        resolve_passphrase(deployment)
    ensure_demo_keystore(deployment, scrypt_n=FAST_N)
    demo = resolve_passphrase(deployment)
    monkeypatch.setenv(ENV_VAR, "from-the-environment")
    assert resolve_passphrase(deployment) == "from-the-environment"
    explicit = tmp_path / "passphrase"
    explicit.write_text("from-a-file\n")
    explicit.chmod(0o600)
    assert resolve_passphrase(deployment, explicit) == "from-a-file"
    assert demo not in {"from-the-environment", "from-a-file"}
    explicit.chmod(0o644)
    with pytest.raises(KeystoreError, match="chmod 600"):
        resolve_passphrase(deployment, explicit)
