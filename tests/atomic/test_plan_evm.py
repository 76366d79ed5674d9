"""A single agent's plan paying two recipients on two anvil chains, all or nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_account import Account

from chains.atomic import Coordinator, Payment
from chains.atomic.base import PlanRefused
from config.errors import AtomicityError
from tests.atomic._env import (
    TEST_MARGINS,
    close_all,
    evm_htlc,
    make_wallet,
    party,
    remaining,
    unique,
)

pytestmark = pytest.mark.anvil
ETH = 10**18


async def _coordinator(engine: Any, evm_nodes: Any, authorizer: Any, wallet: Any) -> Coordinator:
    chains = {name: await evm_htlc(node) for name, node in evm_nodes.items()}
    return Coordinator(
        engine,
        party(wallet, authorizer),
        chains,
        authorizer,
        margins=TEST_MARGINS,
        tx_timeout=20,
        poll=0.05,
    )


async def test_plan_pays_both_recipients_and_balances_reconcile(engine, evm_nodes, authorizer):
    wallet = make_wallet("payer")
    arb, base = evm_nodes["arb"], evm_nodes["base"]
    for node in (arb, base):
        node.fund(wallet.evm_address, 10 * ETH)
    alice, bob = Account.create().address, Account.create().address
    coordinator = await _coordinator(engine, evm_nodes, authorizer, wallet)
    plan_id = unique("pay")
    try:
        plan = await coordinator.create_plan(
            plan_id,
            [
                Payment(chain="arb", recipient=alice, amount=ETH // 4),
                Payment(chain="base", recipient=bob, amount=ETH // 2),
            ],
        )
        assert plan.state == "locking"
        assert plan.preimage_journaled
        # The first leg to reveal has the shortest time left, on its own chain's clock.
        first = await remaining(coordinator, plan.legs[0])
        assert first < await remaining(coordinator, plan.legs[1])
        plan = await coordinator.run(plan_id, timeout=60)
    finally:
        await close_all(coordinator.chains)
    assert plan.state == "claimed", plan.reason
    assert arb.balance(alice) == ETH // 4
    assert base.balance(bob) == ETH // 2
    steps = coordinator.store.steps(plan_id)
    assert [(s.idx, s.purpose, s.status) for s in steps] == [
        (0, "lock", "final"),
        (1, "lock", "final"),
        (0, "claim", "final"),
        (1, "claim", "final"),
    ]
    for name, node, amount in (("arb", arb, ETH // 4), ("base", base, ETH // 2)):
        fees = sum(
            node.fee(s.tx_id)
            for s in steps
            if s.tx_id and coordinator.store.get(plan_id).leg(s.idx).chain == name
        )
        assert node.balance(wallet.evm_address) == 10 * ETH - amount - fees
    assert [purpose for _, purpose, _ in authorizer.seen] == ["lock", "lock", "claim", "claim"]


async def test_failed_lock_refunds_every_leg_after_its_deadline(engine, evm_nodes, authorizer):
    wallet = make_wallet("payer")
    arb, base = evm_nodes["arb"], evm_nodes["base"]
    arb.fund(wallet.evm_address, 10 * ETH)
    base.fund(wallet.evm_address, ETH // 100)  # cannot pay its leg: the lock fails
    coordinator = await _coordinator(engine, evm_nodes, authorizer, wallet)
    plan_id = unique("pay")
    carol, dave = Account.create().address, Account.create().address
    try:
        await coordinator.create_plan(
            plan_id,
            [
                Payment(chain="arb", recipient=carol, amount=ETH),
                Payment(chain="base", recipient=dave, amount=ETH),
            ],
        )
        plan = await coordinator.drive(plan_id)
        assert plan.state == "refunding"
        assert "lock of leg 1 failed" in (plan.reason or "")
        plan = await coordinator.drive(plan_id)
        assert plan.state == "refunding"  # the arb lock waits for its deadline
        for node in (arb, base):
            node.advance(plan.legs[1].deadline - arb.w3.eth.get_block("latest")["timestamp"])
        plan = await coordinator.run(plan_id, timeout=30)
    finally:
        await close_all(coordinator.chains)
    assert plan.state == "refunded", plan.reason
    assert plan.leg_states == ("refunded", "never")
    assert arb.balance(carol) == 0
    assert base.balance(dave) == 0
    purposes = [purpose for _, purpose, _ in authorizer.seen]
    assert "claim" not in purposes  # the preimage was never revealed
    fees = sum(arb.fee(s.tx_id) for s in coordinator.store.steps(plan_id, 0) if s.tx_id)
    assert arb.balance(wallet.evm_address) == 10 * ETH - fees


async def test_deadline_below_the_margins_is_refused(engine, evm_nodes, authorizer):
    wallet = make_wallet("payer")
    coordinator = await _coordinator(engine, evm_nodes, authorizer, wallet)
    now = await coordinator.chain("arb").now()
    try:
        with pytest.raises(PlanRefused, match="must be between"):
            await coordinator.create_plan(
                unique("pay"),
                [
                    Payment(
                        chain="arb", recipient=Account.create().address, amount=1, deadline=now + 3
                    )
                ],
            )
    finally:
        await close_all(coordinator.chains)


async def test_watchtower_finishes_open_plans_from_start(engine, evm_nodes, authorizer):
    """A plan journaled by a daemon that then stopped is finished by the next daemon's
    watchtower, on its first sweep, without being asked to."""
    from chains.atomic.watchtower import Watchtower

    wallet = make_wallet("payer")
    for node in evm_nodes.values():
        node.fund(wallet.evm_address, 10 * ETH)
    first = await _coordinator(engine, evm_nodes, authorizer, wallet)
    plan_id = unique("tower")
    recipient = Account.create().address
    await first.create_plan(plan_id, [Payment(chain="base", recipient=recipient, amount=7)])
    await close_all(first.chains)
    second = await _coordinator(engine, evm_nodes, authorizer, wallet)
    stop = asyncio.Event()
    tower = asyncio.create_task(Watchtower([second], interval=0.05).run(stop))
    try:
        for _ in range(200):
            if second.store.get(plan_id).terminal:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await tower
        await close_all(second.chains)
    assert second.store.get(plan_id).state == "claimed"
    assert evm_nodes["base"].balance(recipient) == 7


async def test_lock_denied_by_policy_locks_nothing(engine, evm_nodes, authorizer):
    wallet = make_wallet("payer")
    for node in evm_nodes.values():
        node.fund(wallet.evm_address, 10 * ETH)
    authorizer.refuse.add("lock")
    coordinator = await _coordinator(engine, evm_nodes, authorizer, wallet)
    plan_id = unique("denied")
    try:
        await coordinator.create_plan(
            plan_id, [Payment(chain="arb", recipient=Account.create().address, amount=1)]
        )
        plan = await coordinator.run(plan_id, timeout=10)
    finally:
        await close_all(coordinator.chains)
    assert plan.state == "cancelled"
    assert "denied by policy" in (plan.reason or "")
    assert evm_nodes["arb"].balance(wallet.evm_address) == 10 * ETH


async def test_a_token_that_is_no_contract_is_refused_up_front(engine, evm_nodes, authorizer):
    coordinator = await _coordinator(engine, evm_nodes, authorizer, make_wallet("payer"))
    try:
        with pytest.raises(PlanRefused, match="there is no contract at"):
            await coordinator.create_plan(
                unique("token"),
                [
                    Payment(
                        chain="arb",
                        recipient=Account.create().address,
                        amount=1,
                        asset=Account.create().address,
                    )
                ],
            )
    finally:
        await close_all(coordinator.chains)
    assert coordinator.store.plans() == []


async def test_one_broken_plan_does_not_stall_the_others(engine, evm_nodes, authorizer):
    """A plan journaled under this agent's name by other keys is never driven (nothing
    is locked for it), and the watchtower still finishes the healthy plan."""
    from chains.atomic.watchtower import Watchtower

    wallet = make_wallet("payer")
    for node in evm_nodes.values():
        node.fund(wallet.evm_address, ETH)
    impostor = await _coordinator(engine, evm_nodes, authorizer, make_wallet("payer"))
    broken = unique("broken")
    evm_nodes["arb"].fund(impostor.party.address("evm"), ETH)
    await impostor.create_plan(
        broken, [Payment(chain="arb", recipient=Account.create().address, amount=1)]
    )
    await close_all(impostor.chains)
    coordinator = await _coordinator(engine, evm_nodes, authorizer, wallet)
    healthy = unique("healthy")
    await coordinator.create_plan(
        healthy, [Payment(chain="arb", recipient=Account.create().address, amount=1)]
    )
    try:
        still_open = await Watchtower([coordinator], interval=0.05).settle(timeout=5)
    finally:
        await close_all(coordinator.chains)
    assert coordinator.store.get(healthy).state == "claimed"
    assert [plan.plan_id for plan in still_open] == [broken]
    assert coordinator.store.steps(broken) == []
    with pytest.raises(AtomicityError, match="not by agent payer"):
        await coordinator.drive(broken)
