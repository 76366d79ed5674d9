"""A single agent's plan with SPL-token legs on Solana (the LiteSVM JSON-RPC server and
its real SPL Token program): claimed, or refunded, with exact token and SOL balances."""

from __future__ import annotations

import asyncio
from typing import Any

from solders.keypair import Keypair
from spl.token.constants import ACCOUNT_LEN

from chains.atomic import ChainMargin, Coordinator, HtlcChain, LockState, Margins, Payment
from chains.families.solana.htlc_token import TOKEN_ESCROW_LEN
from chains.families.solana.local_token import local_mint
from tests.atomic._env import (
    TEST_MARGINS,
    close_all,
    local_usdc,
    make_wallet,
    party,
    solana_htlc,
    unique,
)
from tests.atomic._swap import SOL

USDC = 10**6  # base units of one 6-decimal token
QUICK = Margins(
    watcher_interval=1,
    evm=ChainMargin(inclusion=1, finality=0),
    solana=ChainMargin(inclusion=1, finality=0),
    slack=1,
    max_lock=3600,
)


async def _coordinator(
    engine: Any, node: Any, authorizer: Any, wallet: Any, margins: Margins = TEST_MARGINS
) -> Coordinator:
    chains: dict[str, HtlcChain] = {"sol": await solana_htlc(node, margins)}
    return Coordinator(
        engine, party(wallet, authorizer), chains, authorizer, margins=margins,
        tx_timeout=20, poll=0.05,
    )  # fmt: skip


async def test_a_token_leg_on_solana_ends_claimed(engine, solana_node, authorizer):
    wallet = make_wallet("payer")
    solana_node.fund(wallet.solana_address, 10 * SOL)
    label = unique("usdc")
    mint = await local_usdc(solana_node.url, [wallet.solana_address], 1_000 * USDC, label=label)
    assert mint == local_mint(label)
    alice = str(Keypair().pubkey())
    coordinator = await _coordinator(engine, solana_node, authorizer, wallet)
    adapter: Any = coordinator.chain("sol").adapter
    plan_id = unique("usdc-plan")
    try:
        ata_rent = await adapter.minimum_rent(ACCOUNT_LEN)
        await coordinator.create_plan(
            plan_id, [Payment(chain="sol", recipient=alice, amount=250 * USDC, asset=mint)]
        )
        plan = await coordinator.run(plan_id, timeout=60)
        assert plan.state == "claimed", plan.reason
        assert await adapter.balance(alice, mint) == 250 * USDC
        assert await adapter.balance(wallet.solana_address, mint) == 750 * USDC
        # The escrow's and the vault's rent came back with the claim; what the payer spent
        # is the lock's two signatures, the claim's one and alice's new token account,
        # which the claim created. Alice's wallet holds no SOL at all.
        spent = adapter.fee(2) + adapter.fee(1) + ata_rent
        assert await adapter.balance(wallet.solana_address) == 10 * SOL - spent
        assert await adapter.balance(alice) == 0
    finally:
        await close_all(coordinator.chains)
    assert [purpose for _, purpose, _ in authorizer.seen] == ["lock", "claim"]


async def test_a_token_leg_refunds_after_its_deadline(engine, solana_node, authorizer):
    """Leg 1 (SOL) cannot be paid, so the token lock of leg 0 is refunded: every token
    and both rent deposits come back; only the fees are gone."""
    wallet = make_wallet("payer")
    solana_node.fund(wallet.solana_address, SOL)
    label = unique("usdc")
    mint = await local_usdc(solana_node.url, [wallet.solana_address], 100 * USDC, label=label)
    coordinator = await _coordinator(engine, solana_node, authorizer, wallet, QUICK)
    chain = coordinator.chain("sol")
    adapter: Any = chain.adapter
    plan_id = unique("usdc-refund")
    try:
        await coordinator.create_plan(
            plan_id,
            [
                Payment(
                    chain="sol", recipient=str(Keypair().pubkey()), amount=40 * USDC, asset=mint
                ),
                Payment(chain="sol", recipient=str(Keypair().pubkey()), amount=5 * SOL),
            ],
        )
        plan = await coordinator.drive(plan_id)
        assert plan.state == "refunding", plan.reason
        locked = await chain.read(plan.legs[0])
        assert (locked.state, locked.asset, locked.amount) == (LockState.LOCKED, mint, 40 * USDC)
        assert locked.mismatch(plan.legs[0], plan.hashlock) is None
        assert await adapter.balance(wallet.solana_address, mint) == 60 * USDC
        rents = await adapter.minimum_rent(TOKEN_ESCROW_LEN) + await adapter.minimum_rent(
            ACCOUNT_LEN
        )
        assert await adapter.balance(wallet.solana_address) == SOL - adapter.fee(2) - rents
        await asyncio.sleep(max(plan.legs[0].deadline - await chain.now(), 0))
        plan = await coordinator.run(plan_id, timeout=30)
        assert plan.state == "refunded", plan.reason
        assert plan.leg_states == ("refunded", "never")
        assert await adapter.balance(wallet.solana_address, mint) == 100 * USDC
        assert await adapter.balance(wallet.solana_address) == SOL - adapter.fee(2) - adapter.fee(1)
    finally:
        await close_all(coordinator.chains)
    assert "claim" not in [purpose for _, purpose, _ in authorizer.seen]


async def test_local_usdc_is_repeatable_and_tops_every_owner_up(solana_node):
    """A second call finds the mint and tops up (never takes away); the SPL Token
    program reads the balances written."""
    owners = [str(Keypair().pubkey()) for _ in range(6)]
    label = unique("usdc")
    first = await local_usdc(solana_node.url, owners, 5 * USDC, label=label)
    again = await local_usdc(solana_node.url, owners[:1], 7 * USDC, label=label)
    await local_usdc(solana_node.url, owners[1:2], 2 * USDC, label=label)  # has more already
    assert first == again == local_mint(label)
    chain = await solana_htlc(solana_node)
    try:
        adapter: Any = chain.adapter
        balances = [await adapter.balance(owner, first) for owner in owners]
    finally:
        await close_all({"sol": chain})
    assert balances == [7 * USDC] + [5 * USDC] * 5
