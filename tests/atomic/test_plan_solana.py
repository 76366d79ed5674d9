"""A single agent's plan with a Solana leg (LiteSVM JSON-RPC server) and an EVM leg."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from eth_account import Account
from solders.keypair import Keypair

from chains.atomic import ChainMargin, Coordinator, HtlcChain, Margins, Payment
from chains.families.solana.htlc_client import ESCROW_LEN
from tests.atomic._env import (
    TEST_MARGINS,
    close_all,
    evm_htlc,
    make_wallet,
    party,
    solana_htlc,
    unique,
)
from tests.atomic._swap import ETH, SOL

pytestmark = pytest.mark.anvil
QUICK = Margins(
    watcher_interval=1,
    evm=ChainMargin(inclusion=1, finality=0),
    solana=ChainMargin(inclusion=1, finality=0),
    slack=1,
    max_lock=3600,
)


async def _coordinator(
    engine: Any, evm: Any, sol: Any, authorizer: Any, wallet: Any, margins: Margins = TEST_MARGINS
) -> Coordinator:
    chains: dict[str, HtlcChain] = {
        "arb": await evm_htlc(evm, margins),
        "sol": await solana_htlc(sol, margins),
    }
    return Coordinator(
        engine,
        party(wallet, authorizer),
        chains,
        authorizer,
        margins=margins,
        tx_timeout=20,
        poll=0.05,
    )


async def test_plan_pays_on_solana_and_evm(engine, evm_nodes, solana_node, authorizer):
    arb = evm_nodes["arb"]
    wallet = make_wallet("payer")
    arb.fund(wallet.evm_address, 10 * ETH)
    solana_node.fund(wallet.solana_address, 10 * SOL)
    alice, bob = str(Keypair().pubkey()), Account.create().address
    coordinator = await _coordinator(engine, arb, solana_node, authorizer, wallet)
    plan_id = unique("mixed")
    try:
        rent = await coordinator.chain("sol").adapter.minimum_rent(ESCROW_LEN)  # type: ignore[attr-defined]
        fee = coordinator.chain("sol").adapter.fee  # type: ignore[attr-defined]
        await coordinator.create_plan(
            plan_id,
            [
                Payment(chain="sol", recipient=alice, amount=SOL),
                Payment(chain="arb", recipient=bob, amount=ETH // 4),
            ],
        )
        plan = await coordinator.run(plan_id, timeout=60)
    finally:
        await close_all(coordinator.chains)
    assert plan.state == "claimed", plan.reason
    # The claim empties the escrow, rent deposit included, into the recipient's account.
    assert solana_node.balance(alice) == SOL + rent
    assert solana_node.balance(wallet.solana_address) == 10 * SOL - SOL - rent - fee(2) - fee(1)
    steps = coordinator.store.steps(plan_id)
    evm_fees = sum(arb.fee(s.tx_id) for s in steps if s.idx == 1 and s.tx_id)
    assert arb.balance(bob) == ETH // 4
    assert arb.balance(wallet.evm_address) == 10 * ETH - ETH // 4 - evm_fees
    _preimage_only_in_claims(engine, wallet.derive_preimage(plan_id), steps)


def _preimage_only_in_claims(engine: Any, preimage: bytes, steps: Any) -> None:
    """The store never holds the preimage, except inside the signed claim transactions
    (journaled just before they make it public on chain)."""
    claims = {step.tx_id for step in steps if step.purpose == "claim"}
    with engine.connect() as connection:
        for table in sa.inspect(engine).get_table_names():
            for row in connection.execute(sa.text(f'SELECT * FROM "{table}"')):
                blob = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row)
                if preimage in blob or preimage.hex().encode() in blob:
                    assert table == "chain_tx_journal", table
                    assert row[0] in claims


async def test_solana_leg_refunds_after_its_deadline(engine, evm_nodes, solana_node, authorizer):
    arb = evm_nodes["arb"]
    wallet = make_wallet("payer")
    arb.fund(wallet.evm_address, ETH // 1000)  # the EVM lock cannot be paid
    solana_node.fund(wallet.solana_address, 10 * SOL)
    coordinator = await _coordinator(engine, arb, solana_node, authorizer, wallet, QUICK)
    plan_id = unique("sol-refund")
    try:
        rent = await coordinator.chain("sol").adapter.minimum_rent(ESCROW_LEN)  # type: ignore[attr-defined]
        fee = coordinator.chain("sol").adapter.fee  # type: ignore[attr-defined]
        await coordinator.create_plan(
            plan_id,
            [
                Payment(chain="sol", recipient=str(Keypair().pubkey()), amount=SOL),
                Payment(chain="arb", recipient=Account.create().address, amount=ETH),
            ],
        )
        plan = await coordinator.drive(plan_id)
        assert plan.state == "refunding"
        assert solana_node.balance(wallet.solana_address) == 9 * SOL - rent - fee(2)
        await asyncio.sleep(max(plan.legs[0].deadline - await coordinator.chain("sol").now(), 0))
        plan = await coordinator.run(plan_id, timeout=30)
    finally:
        await close_all(coordinator.chains)
    assert plan.state == "refunded", plan.reason
    assert plan.leg_states == ("refunded", "never")
    assert "claim" not in [purpose for _, purpose, _ in authorizer.seen]
    # The refund returns the amount and the rent deposit; only the two fees are gone.
    assert solana_node.balance(wallet.solana_address) == 10 * SOL - fee(2) - fee(1)
