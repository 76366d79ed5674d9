"""End to end: two agents swap ETH on an anvil L2 for SOL on the LiteSVM RPC server."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chains.atomic import PlanRecord
from chains.atomic.swap import SwapSide
from chains.families.solana.htlc_client import ESCROW_LEN
from config.errors import AtomicityError
from tests.atomic._env import EvmNode, SolanaNode, remaining
from tests.atomic._swap import (
    ETH,
    SOL,
    Operator,
    Side,
    close,
    make_side,
    open_swap,
    run_both,
    run_concurrently,
)

pytestmark = pytest.mark.anvil


async def test_sol_for_eth_swap_between_two_daemons(tmp_path, evm_nodes, solana_node, caplog):
    caplog.set_level(logging.DEBUG)
    arb = evm_nodes["arb"]
    operator = Operator.new()
    maker = await make_side("maker", tmp_path, [arb], solana_node)
    taker = await make_side("taker", tmp_path, [arb], solana_node, verify=operator.verifier())
    for side in (maker, taker):
        arb.fund(side.wallet.evm_address, 10 * ETH)
        solana_node.fund(side.wallet.solana_address, 10 * SOL)
    sol_adapter = maker.coordinator.chain("sol").adapter
    rent = await sol_adapter.minimum_rent(ESCROW_LEN)  # type: ignore[attr-defined]
    plan_id = "swap-sol-eth-1"
    try:
        await open_swap(
            maker,
            taker,
            plan_id,
            give=SwapSide(chain="sol", amount=2 * SOL),
            take=SwapSide(chain="arb", amount=ETH // 2),
            credential=operator.credential(maker, ("sol", "arb")),
        )
        offered = maker.coordinator.store.get(plan_id)
        # The taker's leg reveals first (the maker claims it), so it has less time left.
        taker_left = await remaining(maker.coordinator, offered.leg(1))
        assert taker_left < await remaining(maker.coordinator, offered.leg(0))
        made, taken = await run_both(maker, taker, plan_id)
    finally:
        await close(maker, taker)
    assert (made.state, taken.state) == ("claimed", "claimed"), (made.reason, taken.reason)
    maker_steps = maker.coordinator.store.steps(plan_id)
    taker_steps = taker.coordinator.store.steps(plan_id)
    preimage = maker.wallet.derive_preimage(plan_id)
    # No log line holds the secret, except web3's DEBUG dump of node responses that
    # carry the broadcast claim or its Claimed event: public once the claim is sent.
    public = ("eth_gettransactionbyhash", "eth_gettransactionreceipt", "eth_getlogs")
    for record in caplog.records:
        text = record.getMessage().lower()
        if preimage.hex() in text or repr(preimage).lower() in text:
            assert record.name.startswith("web3.providers"), record.name
            assert text.startswith("getting response http"), text[:200]
            assert any(f"method: {method}," in text for method in public), text[:200]
    assert [(s.purpose, s.status) for s in maker_steps] == [("lock", "final"), ("claim", "final")]
    assert [(s.purpose, s.status) for s in taker_steps] == [("lock", "final"), ("claim", "final")]
    fee = sol_adapter.fee  # type: ignore[attr-defined]
    # SOL: the maker paid the amount, the escrow's rent deposit and a 2-signature lock;
    # the taker received both (a claim empties the escrow) and paid a 1-signature claim.
    assert solana_node.balance(maker.wallet.solana_address) == 10 * SOL - 2 * SOL - rent - fee(2)
    assert solana_node.balance(taker.wallet.solana_address) == 10 * SOL + 2 * SOL + rent - fee(1)
    # ETH: the taker locked half an ether for the maker, who claimed it.
    maker_fee = arb.fee(maker_steps[1].tx_id)
    taker_fee = arb.fee(taker_steps[0].tx_id)
    assert arb.balance(maker.wallet.evm_address) == 10 * ETH + ETH // 2 - maker_fee
    assert arb.balance(taker.wallet.evm_address) == 10 * ETH - ETH // 2 - taker_fee


async def _eth_for_sol(
    tmp_path: Any,
    arb: EvmNode,
    solana_node: SolanaNode,
    plan_id: str,
    *,
    commitment: str = "confirmed",
    drive: Any = run_both,
) -> tuple[Side, Side, PlanRecord, PlanRecord]:
    """The maker gives a quarter ether on arb for the taker's 3 SOL, both sides reading
    Solana at `commitment`, driven by `drive`: the sides and both plans as they ended."""
    operator = Operator.new()
    maker = await make_side("maker", tmp_path, [arb], solana_node, sol_commitment=commitment)
    taker = await make_side(
        "taker",
        tmp_path,
        [arb],
        solana_node,
        verify=operator.verifier(),
        sol_commitment=commitment,
    )
    for side in (maker, taker):
        arb.fund(side.wallet.evm_address, 10 * ETH)
        solana_node.fund(side.wallet.solana_address, 10 * SOL)
    try:
        await open_swap(
            maker,
            taker,
            plan_id,
            give=SwapSide(chain="arb", amount=ETH // 4),
            take=SwapSide(chain="sol", amount=3 * SOL),
            credential=operator.credential(maker, ("arb", "sol")),
        )
        made, taken = await drive(maker, taker, plan_id)
    finally:
        await close(maker, taker)
    assert (made.state, taken.state) == ("claimed", "claimed"), (made.reason, taken.reason)
    return maker, taker, made, taken


async def test_eth_for_sol_swap_reads_the_preimage_from_solana_history(
    tmp_path, evm_nodes, solana_node
):
    """The maker claims on Solana; the taker finds the preimage in that claim's
    transaction (getSignaturesForAddress + getTransaction) and claims the ether."""
    arb = evm_nodes["arb"]
    plan_id = "swap-eth-sol-1"
    _, taker, _, _ = await _eth_for_sol(tmp_path, arb, solana_node, plan_id)
    taker_steps = taker.coordinator.store.steps(plan_id)
    assert [(s.purpose, s.status) for s in taker_steps] == [("lock", "final"), ("claim", "final")]
    claim_fee = arb.fee(taker_steps[1].tx_id)
    assert arb.balance(taker.wallet.evm_address) == 10 * ETH + ETH // 4 - claim_fee


async def test_under_finalized_commitment_the_maker_claims_only_a_rooted_lock(
    tmp_path, evm_nodes, solana_node
):
    """With `commitment: finalized`, the maker reveals the preimage only once the taker's
    SOL lock is rooted (finality_depth, 4 blocks on this server, after its slot): a lock
    that a fork could still drop must not be claimed, or the taker would take the ether
    with the revealed preimage while its SOL vanished. Fails when the server answers
    finalized reads from the newest block (the claim then lands in the lock's block)."""
    plan_id = "swap-eth-sol-finalized"
    maker, taker, _, _ = await _eth_for_sol(
        tmp_path,
        evm_nodes["arb"],
        solana_node,
        plan_id,
        commitment="finalized",
        drive=run_concurrently,
    )
    (lock,) = [s.tx_id for s in taker.coordinator.store.steps(plan_id) if s.purpose == "lock"]
    (claim,) = [s.tx_id for s in maker.coordinator.store.steps(plan_id) if s.purpose == "claim"]
    statuses = solana_node.rpc("getSignatureStatuses", [[lock, claim]])["value"]
    lock_slot, claim_slot = (status["slot"] for status in statuses)
    assert claim_slot >= lock_slot + 4, (lock_slot, claim_slot)


async def test_two_agents_of_one_daemon_swap_through_one_store(tmp_path, evm_nodes):
    """Both sides journal the same plan id in the same store, each its own side."""
    from chains.atomic import PlanStore
    from tests.atomic._swap import trusting

    nodes = [evm_nodes["arb"], evm_nodes["base"]]
    maker = await make_side("maker", tmp_path, nodes, None, store="daemon.db")
    taker = await make_side("taker", tmp_path, nodes, None, verify=trusting, store="daemon.db")
    for side in (maker, taker):
        for node in nodes:
            node.fund(side.wallet.evm_address, ETH)
    try:
        await open_swap(
            maker,
            taker,
            "local-swap",
            give=SwapSide(chain="arb", amount=10),
            take=SwapSide(chain="base", amount=20),
        )
        made, taken = await run_both(maker, taker, "local-swap")
    finally:
        await close(maker, taker)
    assert (made.state, taken.state) == ("claimed", "claimed")
    assert (made.kind, taken.kind) == ("maker", "taker")
    everyone = PlanStore(maker.coordinator.store.scoped("maker")._engine)
    assert sorted(plan.agent for plan in everyone.plans()) == ["maker", "taker"]
    with pytest.raises(AtomicityError, match="agents maker, taker"):
        everyone.get("local-swap")
