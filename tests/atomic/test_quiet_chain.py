"""A refund past its deadline lands on a chain that makes no other block.

Chains that produce blocks only for new transactions (a quiet L2 or testnet, any local
chain) keep the lock's block as their latest for as long as nobody sends anything. The
coordinator judges the deadline by the block a transaction would land in; an estimate or
simulation run against the latest block saw the lock's old timestamp and reverted
`DeadlineNotReached` on every sweep, so the refund never landed (found by an outside
audit: 0.1 ETH stayed locked through six recoveries).

anvil's `evm_increaseTime` moves the clock of the next block without making one: exactly
a quiet chain on which time has passed.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from web3.types import RPCEndpoint

from chains.atomic import Coordinator, Payment
from tests.atomic._env import (
    TEST_MARGINS,
    EvmNode,
    close_all,
    evm_htlc,
    make_wallet,
    party,
    start_evm_node,
    unique,
)

pytestmark = pytest.mark.anvil
ETH = 10**18


@pytest.fixture
def idle_nodes(tmp_path: Path) -> Iterator[dict[str, EvmNode]]:
    """Two anvils of this test's own: nothing else sends to them."""
    nodes = {
        "arb": start_evm_node("arb", 42_161, tmp_path / "arb.log"),
        "base": start_evm_node("base", 8_453, tmp_path / "base.log"),
    }
    yield nodes
    for node in nodes.values():
        assert node.process is not None
        os.killpg(node.process.pid, signal.SIGKILL)
        node.process.wait()


async def test_a_refund_after_its_deadline_lands_on_an_idle_chain(engine, idle_nodes, authorizer):
    arb, base = idle_nodes["arb"], idle_nodes["base"]
    wallet = make_wallet("payer")
    arb.fund(wallet.evm_address, 10 * ETH)
    base.fund(wallet.evm_address, ETH // 100)  # cannot pay its leg: the lock fails
    chains = {name: await evm_htlc(node) for name, node in idle_nodes.items()}
    coordinator = Coordinator(
        engine, party(wallet, authorizer), chains, authorizer, margins=TEST_MARGINS, poll=0.05
    )
    plan_id = unique("quiet")
    recipient = Account.create().address
    try:
        await coordinator.create_plan(
            plan_id,
            [
                Payment(chain="arb", recipient=recipient, amount=ETH // 10),
                Payment(chain="base", recipient=Account.create().address, amount=ETH),
            ],
        )
        plan = await coordinator.drive(plan_id)
        assert plan.state == "refunding", plan.reason
        lock_block = arb.w3.eth.get_block("latest")
        deadline = plan.legs[0].deadline
        # Time passes, no block is made: the next block's clock is past the deadline.
        arb.w3.provider.make_request(
            RPCEndpoint("evm_increaseTime"), [deadline - int(lock_block["timestamp"]) + 1]
        )
        assert arb.w3.eth.get_block("latest")["number"] == lock_block["number"]
        plan = await coordinator.run(plan_id, timeout=30)
    finally:
        await close_all(coordinator.chains)
    assert plan.state == "refunded", plan.reason
    assert plan.leg_states[0] == "refunded"
    assert arb.balance(recipient) == 0
    # Exactly one block after the lock's: the refund's own.
    assert arb.w3.eth.get_block("latest")["number"] == lock_block["number"] + 1
    fees = sum(arb.fee(s.tx_id) for s in coordinator.store.steps(plan_id, 0) if s.tx_id)
    assert arb.balance(wallet.evm_address) == 10 * ETH - fees
