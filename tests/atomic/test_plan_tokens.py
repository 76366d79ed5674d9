"""ERC-20 legs on anvil: the approval of exactly a leg's amount is a journaled step before
its lock, the lock takes it whole, and a plan that ends without using it revokes it, so
no allowance outlives a plan. The token is the local USDC (OpenZeppelin's ERC20)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from chains.atomic import Coordinator, Payment
from chains.atomic.watchtower import Watchtower
from chains.families.evm.devnet import install_local_token, top_up_local_token
from tests.atomic._env import TEST_MARGINS, close_all, evm_htlc, make_wallet, party, unique
from tests.atomic.test_plan_evm import _coordinator

pytestmark = pytest.mark.anvil
ETH, USDC = 10**18, 10**6
TOKEN = Web3.to_checksum_address("0x" + "c0" * 20)


async def _token(node: Any, holder: str, amount: int) -> str:
    await install_local_token(node.url, TOKEN)
    await top_up_local_token(node.url, TOKEN, holder, amount)
    return TOKEN


def _read(node: Any, signature: str, *args: str) -> int:
    selector = Web3.keccak(text=signature)[:4]
    data = selector + b"".join(bytes(12) + bytes.fromhex(a[2:]) for a in args)
    return int.from_bytes(node.w3.eth.call({"to": TOKEN, "data": data}), "big")


def balance(node: Any, owner: str) -> int:
    return _read(node, "balanceOf(address)", owner)


def allowance(node: Any, owner: str) -> int:
    return _read(node, "allowance(address,address)", owner, node.contract)


async def test_token_and_native_legs_claim_with_exact_balances(engine, evm_nodes, authorizer):
    wallet = make_wallet("payer")
    arb, base = evm_nodes["arb"], evm_nodes["base"]
    for node in (arb, base):
        node.fund(wallet.evm_address, 10 * ETH)
    token = await _token(arb, wallet.evm_address, 500 * USDC)
    alice, bob = Account.create().address, Account.create().address
    coordinator = await _coordinator(engine, evm_nodes, authorizer, wallet)
    plan_id = unique("usdc")
    try:
        await coordinator.create_plan(
            plan_id,
            [
                Payment(chain="arb", recipient=alice, amount=120 * USDC, asset=token),
                Payment(chain="base", recipient=bob, amount=ETH // 2),
            ],
        )
        plan = await coordinator.run(plan_id, timeout=60)
    finally:
        await close_all(coordinator.chains)
    assert plan.state == "claimed", plan.reason
    steps = coordinator.store.steps(plan_id)
    assert [(s.idx, s.purpose, s.status) for s in steps] == [
        (0, "approve", "final"),
        (0, "lock", "final"),
        (1, "lock", "final"),
        (0, "claim", "final"),
        (1, "claim", "final"),
    ]
    assert balance(arb, alice) == 120 * USDC
    assert balance(arb, wallet.evm_address) == 380 * USDC
    assert balance(arb, arb.contract) == 0
    assert allowance(arb, wallet.evm_address) == 0  # the lock took the approval whole
    # Native: the payer paid only gas on arb (approve, lock, claim), gas and bob on base.
    for name, node, paid in (("arb", arb, 0), ("base", base, ETH // 2)):
        fees = sum(node.fee(s.tx_id) for s in steps if s.tx_id and plan.leg(s.idx).chain == name)
        assert node.balance(wallet.evm_address) == 10 * ETH - paid - fees


async def test_plan_winding_down_after_its_approval_revokes_it(engine, evm_nodes, authorizer):
    """The approval lands, the lock is denied: the plan ends cancelled with the
    allowance withdrawn. The authorizer reads the allowance when the revoke is asked
    for: the negative control that there was one to withdraw."""
    wallet = make_wallet("payer")
    arb = evm_nodes["arb"]
    arb.fund(wallet.evm_address, 10 * ETH)
    token = await _token(arb, wallet.evm_address, 50 * USDC)
    seen_before_revoke: list[int] = []
    inner = authorizer.__call__

    async def authorize(agent: str, unsigned: Any, purpose: str, plan_id: str, leg: Any = None):
        if purpose == "lock":
            from config.errors import PolicyViolation

            raise PolicyViolation("test policy refuses the lock")
        if purpose == "revoke":
            seen_before_revoke.append(allowance(arb, wallet.evm_address))
        return await inner(agent, unsigned, purpose, plan_id, leg)

    chains = {"arb": await evm_htlc(arb)}
    coordinator = Coordinator(
        engine, party(wallet, authorizer), chains, authorize, margins=TEST_MARGINS, poll=0.05
    )
    plan_id = unique("revoke")
    try:
        payment = Payment(chain="arb", recipient=Account.create().address, amount=7 * USDC)
        await coordinator.create_plan(plan_id, [payment.model_copy(update={"asset": token})])
        plan = await coordinator.run(plan_id, timeout=60)
    finally:
        await close_all(coordinator.chains)
    assert plan.state == "cancelled", plan.reason
    assert [(s.purpose, s.status) for s in coordinator.store.steps(plan_id)] == [
        ("approve", "final"),
        ("lock", "failed"),
        ("revoke", "final"),
    ]
    assert seen_before_revoke == [7 * USDC]
    assert allowance(arb, wallet.evm_address) == 0
    assert balance(arb, wallet.evm_address) == 50 * USDC


async def test_two_plans_of_one_token_approve_one_at_a_time(engine, evm_nodes, authorizer):
    """`approve` sets an allowance: two plans approving side by side would overwrite each
    other's. The second waits for the first's lock, and both end claimed."""
    wallet = make_wallet("payer")
    arb = evm_nodes["arb"]
    arb.fund(wallet.evm_address, 10 * ETH)
    token = await _token(arb, wallet.evm_address, 100 * USDC)
    coordinator = await _coordinator(engine, {"arb": arb}, authorizer, wallet)
    recipients = [Account.create().address for _ in range(2)]
    plan_ids = [unique("twin"), unique("twin")]
    try:
        plans = []
        for plan_id, recipient, amount in zip(plan_ids, recipients, (30, 45), strict=True):
            payment = Payment(chain="arb", recipient=recipient, amount=amount * USDC, asset=token)
            plans.append(await coordinator.create_plan(plan_id, [payment]))
        # The first plan's approval lands and its lock has not been sent yet (as after a
        # crash between the two): the second plan must not approve over it.
        assert await coordinator.ensure_approved(plans[0], plans[0].legs[0]) == ("done", None)
        await coordinator.drive(plan_ids[1])
        assert coordinator.store.steps(plan_ids[1]) == []
        assert allowance(arb, wallet.evm_address) == 30 * USDC
        still_open = await Watchtower([coordinator]).settle(timeout=90)
    finally:
        await close_all(coordinator.chains)
    assert still_open == []
    for plan_id in plan_ids:
        assert coordinator.store.get(plan_id).state == "claimed"
    assert [balance(arb, r) for r in recipients] == [30 * USDC, 45 * USDC]
    assert allowance(arb, wallet.evm_address) == 0
