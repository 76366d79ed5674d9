"""Wiring a daemon's agents to the coordinator from its adapters."""

from __future__ import annotations

import pytest
from eth_account import Account

from chains.atomic import Payment
from chains.atomic.coordinator import Coordinator
from chains.atomic.runtime import htlc_chains
from chains.atomic.watchtower import Watchtower
from chains.families.evm.adapter import EvmAdapter
from config.errors import AtomicityError
from tests.atomic._env import TEST_MARGINS, close_all, make_wallet, party, unique

pytestmark = pytest.mark.anvil
ETH = 10**18


async def test_every_agent_gets_a_coordinator_over_shared_chains(engine, evm_nodes, authorizer):
    adapters = {
        name: await EvmAdapter.connect(node.config(), url=node.url)
        for name, node in evm_nodes.items()
    }
    chains = htlc_chains(
        adapters, {name: node.contract for name, node in evm_nodes.items()}, margins=TEST_MARGINS
    )
    wallets = {name: make_wallet(name) for name in ("alpha", "beta")}
    for wallet in wallets.values():
        for node in evm_nodes.values():
            node.fund(wallet.evm_address, ETH)
    made = {
        name: Coordinator(
            engine, party(wallet, authorizer), chains, authorizer, margins=TEST_MARGINS
        )
        for name, wallet in wallets.items()
    }
    recipient = Account.create().address
    try:
        for name, coordinator in made.items():
            await coordinator.create_plan(
                unique(name),
                [
                    Payment(chain="arb", recipient=recipient, amount=5),
                    Payment(chain="base", recipient=recipient, amount=6),
                ],
            )
        assert await Watchtower(list(made.values()), interval=0.05).settle(timeout=30) == []
        outcomes = [(plan.state, plan.reason) for c in made.values() for plan in c.store.plans()]
        assert outcomes == [("claimed", None), ("claimed", None)]
    finally:
        await close_all(chains)
    assert evm_nodes["arb"].balance(recipient) == 10
    assert evm_nodes["base"].balance(recipient) == 12
    assert {agent for agent, _, _ in authorizer.seen} == {"alpha", "beta"}


async def test_a_chain_without_an_adapter_is_named(evm_nodes):
    with pytest.raises(AtomicityError, match="no adapter for chain 'sol'"):
        htlc_chains({}, {"sol": "11111111111111111111111111111111"}, margins=TEST_MARGINS)
