"""Counterparty misbehaviour: the honest side never reveals the preimage when it should
not, and gets its funds back after its deadline (time moved on with evm_increaseTime).

Swaps here run between two anvil chains: the maker gives ETH on `arb`, the taker gives
ETH on `base`; the cheating side signs its bad lock with its own keys.
"""

from __future__ import annotations

import os

import pytest

from chains.atomic import ChainMargin, Margins, PlanRefused
from chains.atomic.swap import SwapSide, accept_offer, make_offer
from tests.atomic._env import TEST_MARGINS, unique
from tests.atomic._swap import (
    ETH,
    Operator,
    cheat_lock,
    close,
    make_side,
    open_swap,
    run_both,
    trusting,
)

pytestmark = pytest.mark.anvil
GIVE = SwapSide(chain="arb", amount=ETH // 10)
TAKE = SwapSide(chain="base", amount=ETH // 5)


@pytest.fixture
async def sides(tmp_path, evm_nodes):
    nodes = [evm_nodes["arb"], evm_nodes["base"]]
    maker = await make_side("maker", tmp_path, nodes, None)
    taker = await make_side("taker", tmp_path, nodes, None, verify=trusting)
    for side in (maker, taker):
        for node in nodes:
            node.fund(side.wallet.evm_address, 10 * ETH)
    yield maker, taker
    await close(maker, taker)


def _pass(evm_nodes, deadline: int) -> None:
    """Move both chains' clocks past `deadline`."""
    for node in evm_nodes.values():
        now = int(node.w3.eth.get_block("latest")["timestamp"])
        node.advance(max(deadline - now, 0) + 1)


def _spent(node, side, plan_id: str) -> int:
    steps = side.coordinator.store.steps(plan_id)
    fees = 0
    for step in steps:
        leg = side.coordinator.store.get(plan_id).leg(step.idx)
        if step.tx_id and leg.chain == node.name:
            fees += node.fee(step.tx_id)
    return fees


@pytest.mark.parametrize("cheat", ["amount", "hashlock"])
async def test_maker_lock_with_wrong_terms_is_never_matched(sides, evm_nodes, cheat):
    maker, taker = sides
    plan_id = unique("bad-maker")
    await open_swap(maker, taker, plan_id, give=GIVE, take=TAKE)
    change = {"amount": GIVE.amount - 1} if cheat == "amount" else {"hashlock": os.urandom(32)}
    await cheat_lock(maker, plan_id, 0, **change)
    taken = await taker.coordinator.drive(plan_id)
    assert taken.state == "cancelled"
    assert cheat in (taken.reason or "")
    assert taker.purposes == []  # the taker locked nothing
    assert evm_nodes["base"].balance(taker.wallet.evm_address) == 10 * ETH


async def test_taker_lock_with_wrong_amount_is_not_claimed_and_maker_refunds(sides, evm_nodes):
    maker, taker = sides
    plan_id = unique("bad-taker")
    await open_swap(maker, taker, plan_id, give=GIVE, take=TAKE)
    made = await maker.coordinator.drive(plan_id)
    assert made.state == "waiting"
    await cheat_lock(taker, plan_id, 1, amount=TAKE.amount // 2)
    made = await maker.coordinator.drive(plan_id)
    assert made.state == "refunding"
    assert "amount" in (made.reason or "")
    assert "claim" not in maker.purposes  # the preimage was never revealed
    made = await maker.coordinator.drive(plan_id)
    assert made.state == "refunding"  # waits for its deadline
    _pass(evm_nodes, made.leg(0).deadline)
    made = await maker.coordinator.run(plan_id, timeout=20)
    assert made.state == "refunded"
    assert maker.purposes == ["lock", "refund"]
    arb = evm_nodes["arb"]
    assert arb.balance(maker.wallet.evm_address) == 10 * ETH - _spent(arb, maker, plan_id)


async def test_offer_with_too_short_a_margin_is_refused(tmp_path, evm_nodes):
    nodes = [evm_nodes["arb"], evm_nodes["base"]]
    hasty = Margins(
        watcher_interval=1, evm=ChainMargin(inclusion=1, finality=0), slack=0, max_lock=3600
    )
    maker = await make_side("maker", tmp_path, nodes, None, margins=hasty)
    careful = TEST_MARGINS.model_copy(update={"watcher_interval": 30})
    taker = await make_side("taker", tmp_path, nodes, None, margins=careful)
    try:
        offer = await make_offer(
            maker.coordinator, unique("hasty"), give=GIVE, take=TAKE, taker=taker.counterparty()
        )
        with pytest.raises(PlanRefused, match=r"the margins need|needs"):
            await accept_offer(taker.coordinator, offer, maker_did=maker.wallet.did)
    finally:
        await close(maker, taker)
    assert taker.coordinator.store.plans() == []


async def test_taker_that_never_locks_gets_nothing_and_maker_refunds(sides, evm_nodes):
    maker, taker = sides
    plan_id = unique("no-taker")
    await open_swap(maker, taker, plan_id, give=GIVE, take=TAKE)
    made = await maker.coordinator.drive(plan_id)
    assert made.state == "waiting"
    _pass(evm_nodes, made.leg(1).deadline)
    made = await maker.coordinator.drive(plan_id)
    assert made.state == "refunding"
    assert made.reason == "the taker did not lock in time"
    _pass(evm_nodes, made.leg(0).deadline)
    made = await maker.coordinator.run(plan_id, timeout=20)
    assert made.state == "refunded"
    assert maker.purposes == ["lock", "refund"]
    arb = evm_nodes["arb"]
    assert arb.balance(maker.wallet.evm_address) == 10 * ETH - _spent(arb, maker, plan_id)
    assert arb.balance(taker.wallet.evm_address) == 10 * ETH


async def test_maker_that_never_claims_lets_the_taker_refund(sides, evm_nodes):
    maker, taker = sides
    plan_id = unique("no-claim")
    await open_swap(maker, taker, plan_id, give=GIVE, take=TAKE)
    assert (await maker.coordinator.drive(plan_id)).state == "waiting"
    taken = await taker.coordinator.drive(plan_id)
    assert taken.state == "waiting"  # locked; the maker now goes silent
    _pass(evm_nodes, taken.leg(1).deadline)
    taken = await taker.coordinator.run(plan_id, timeout=20)
    assert taken.state == "refunded"
    assert taker.purposes == ["lock", "refund"]
    base = evm_nodes["base"]
    assert base.balance(taker.wallet.evm_address) == 10 * ETH - _spent(base, taker, plan_id)
    _pass(evm_nodes, taken.leg(0).deadline)  # the maker comes back after both deadlines
    made = await maker.coordinator.run(plan_id, timeout=20)
    assert made.state == "refunded"
    assert "claim" not in maker.purposes


async def test_evm_only_swap_completes(sides, evm_nodes):
    maker, taker = sides
    plan_id = unique("fair")
    await open_swap(maker, taker, plan_id, give=GIVE, take=TAKE)
    made, taken = await run_both(maker, taker, plan_id)
    assert (made.state, taken.state) == ("claimed", "claimed")
    arb, base = evm_nodes["arb"], evm_nodes["base"]
    assert arb.balance(taker.wallet.evm_address) == 10 * ETH + GIVE.amount - _spent(
        arb, taker, plan_id
    )
    assert base.balance(maker.wallet.evm_address) == 10 * ETH + TAKE.amount - _spent(
        base, maker, plan_id
    )


@pytest.mark.parametrize("credential", ["missing", "other-issuer", "other-chain"])
async def test_maker_without_authority_is_never_matched(tmp_path, evm_nodes, credential):
    nodes = [evm_nodes["arb"], evm_nodes["base"]]
    operator = Operator.new()
    maker = await make_side("maker", tmp_path, nodes, None)
    taker = await make_side("taker", tmp_path, nodes, None, verify=operator.verifier())
    for side in (maker, taker):
        for node in nodes:
            node.fund(side.wallet.evm_address, 10 * ETH)
    token = {
        "missing": None,
        "other-issuer": Operator.new().credential(maker, ("arb", "base")),
        "other-chain": operator.credential(maker, ("base",)),
    }[credential]
    plan_id = unique("no-authority")
    try:
        await open_swap(maker, taker, plan_id, give=GIVE, take=TAKE, credential=token)
        assert (await maker.coordinator.drive(plan_id)).state == "waiting"
        taken = await taker.coordinator.drive(plan_id)
    finally:
        await close(maker, taker)
    assert taken.state == "cancelled"
    assert taken.reason == "the maker's authority credential did not verify"
    assert taker.purposes == []
