"""Observations on a real in-process chain (py-evm): balances are reused for a short
TTL, and any recorded outcome of the agent's own actions makes the next read fresh."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.observe import Observer
from chains.connect import connect, fund_local
from config.loader import load_deployment
from config.models import Deployment
from config.store import open_store
from tests.agents.conftest import in_process_evm_chain
from wallets.operator import create_keystore, open_wallets

PASSPHRASE = "observe tests passphrase"
MNEMONIC = "test test test test test test test test test test test junk"
SCRYPT_N = 2**10


def _deployment(tmp_path: Path) -> Deployment:
    evm = in_process_evm_chain(tmp_path, "obs", fund="2")
    chain = evm["name"]
    data = {
        "name": "obs",
        "operator": {"name": "op"},
        "chains": [evm],
        "assets": [{"symbol": "ETH", "chain": chain, "native": True, "decimals": 18}],
        "planners": [{"name": "script", "kind": "scripted", "plans": []}],
        "agents": [
            {
                "name": "alice",
                "schedule": {"every": "1s"},
                "mandate": "Hold.",
                "planner": "script",
                "chains": [chain],
            }
        ],
    }
    path = tmp_path / "obs.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_deployment(path)


class World:
    def __init__(self, deployment: Deployment, wallets: Any, adapters: dict[str, Any]) -> None:
        self.deployment = deployment
        self.wallet = wallets.agent("alice")
        self.adapters = adapters
        self.chain = deployment.chains[0]

    def observer(self, ttl: float) -> Observer:
        return Observer(
            self.deployment,
            self.deployment.agents[0],
            self.wallet,
            self.adapters,
            balance_ttl=ttl,
        )

    async def fund(self) -> None:
        """The faucet sends `fund_agents` more: the chain's balance moves."""
        address = self.wallet.address(self.deployment, self.chain.name)
        await fund_local(self.chain, [address], data_dir=None)


@pytest.fixture
async def world(tmp_path) -> AsyncIterator[World]:
    deployment = _deployment(tmp_path)
    create_keystore(deployment, MNEMONIC, PASSPHRASE, scrypt_n=SCRYPT_N)
    store = open_store(deployment.store.url or "")
    wallets = open_wallets(deployment, store, PASSPHRASE, scrypt_n=SCRYPT_N)
    chain = deployment.chains[0]
    adapter = await connect(chain, engine=store)
    try:
        world = World(deployment, wallets, {chain.name: adapter})
        await world.fund()
        yield world
    finally:
        await adapter.close()
        store.dispose()


async def eth(observer: Observer) -> Decimal:
    observation = await observer.observe([])
    [balance] = observation.balances
    return balance.amount


async def test_a_balance_is_reused_within_its_ttl_and_read_again_after(world):
    observer = world.observer(ttl=0.3)
    assert await eth(observer) == Decimal(2)
    await world.fund()
    assert await eth(observer) == Decimal(2)  # cached: the planner may see 0.3 s old data
    await asyncio.sleep(0.35)
    assert await eth(observer) == Decimal(4)


async def test_an_outcome_of_the_agents_own_action_makes_the_next_read_fresh(world):
    observer = world.observer(ttl=60)
    assert await eth(observer) == Decimal(2)
    await world.fund()
    observer.remember("executed: pay 1 ETH to acme", ok=True)
    assert await eth(observer) == Decimal(4)
    await world.fund()
    observer.forget_balances()
    assert await eth(observer) == Decimal(6)


async def test_a_ttl_of_zero_reads_the_chain_every_time(world):
    observer = world.observer(ttl=0)
    assert await eth(observer) == Decimal(2)
    await world.fund()
    assert await eth(observer) == Decimal(4)
