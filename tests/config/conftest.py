"""The production example reads its endpoints from the environment."""

import pytest


@pytest.fixture(autouse=True)
def _example_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ARBITRUM_RPC_URL", "OPTIMISM_RPC_URL", "BASE_RPC_URL", "SOLANA_RPC_URL"):
        monkeypatch.setenv(name, f"https://{name.lower()}.example.org")
    monkeypatch.setenv("PGPASSWORD", "not-a-real-password")
