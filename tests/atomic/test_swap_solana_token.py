"""Two agents swap ETH on an anvil L2 for USDC-like SPL tokens on the LiteSVM server: the
maker reveals the preimage in a claim_token, and the taker reads it from there."""

from __future__ import annotations

from typing import Any

import pytest
from spl.token.constants import ACCOUNT_LEN

from chains.atomic.swap import SwapSide
from tests.atomic._env import local_usdc, unique
from tests.atomic._swap import ETH, SOL, Operator, close, make_side, open_swap, run_both

pytestmark = pytest.mark.anvil
USDC = 10**6


async def test_usdc_on_solana_for_eth_swap_between_two_daemons(tmp_path, evm_nodes, solana_node):
    arb = evm_nodes["arb"]
    operator = Operator.new()
    maker = await make_side("maker", tmp_path, [arb], solana_node)
    taker = await make_side("taker", tmp_path, [arb], solana_node, verify=operator.verifier())
    for side in (maker, taker):
        arb.fund(side.wallet.evm_address, 10 * ETH)
        solana_node.fund(side.wallet.solana_address, 10 * SOL)
    mint = await local_usdc(
        solana_node.url, [taker.wallet.solana_address], 100 * USDC, label=unique("usdc")
    )
    sol: Any = maker.coordinator.chain("sol").adapter
    plan_id = unique("swap-usdc-eth")
    try:
        await open_swap(
            maker,
            taker,
            plan_id,
            give=SwapSide(chain="arb", amount=ETH // 4),
            take=SwapSide(chain="sol", amount=30 * USDC, asset=mint),
            credential=operator.credential(maker, ("sol", "arb")),
        )
        made, taken = await run_both(maker, taker, plan_id)
        ata_rent = await sol.minimum_rent(ACCOUNT_LEN)
        tokens = [await sol.balance(side.wallet.solana_address, mint) for side in (maker, taker)]
        lamports = [await sol.balance(side.wallet.solana_address) for side in (maker, taker)]
    finally:
        await close(maker, taker)
    assert (made.state, taken.state) == ("claimed", "claimed"), (made.reason, taken.reason)
    assert tokens == [30 * USDC, 70 * USDC]
    # The maker's claim created its token account; the taker's escrow and vault rents
    # came back to it with that claim, so it is out only its lock's two signatures.
    assert lamports == [10 * SOL - sol.fee(1) - ata_rent, 10 * SOL - sol.fee(2)]
    maker_steps = maker.coordinator.store.steps(plan_id)
    taker_steps = taker.coordinator.store.steps(plan_id)
    assert [(s.purpose, s.status) for s in maker_steps] == [("lock", "final"), ("claim", "final")]
    assert [(s.purpose, s.status) for s in taker_steps] == [("lock", "final"), ("claim", "final")]
    maker_fee, taker_fee = arb.fee(maker_steps[0].tx_id), arb.fee(taker_steps[1].tx_id)
    assert arb.balance(maker.wallet.evm_address) == 10 * ETH - ETH // 4 - maker_fee
    assert arb.balance(taker.wallet.evm_address) == 10 * ETH + ETH // 4 - taker_fee
