"""Transactions, fees and wall time of cross-chain plans on local chains, and the compute
units of each Solana HTLC instruction.

Usage: ``python bench/bench_swap.py`` from the repository root (needs anvil from npm).
It starts one anvil per EVM chain and the LiteSVM JSON-RPC server (with the HTLC
program) as separate processes, then runs, with the test margins:

* a swap of 2 SOL for 0.5 ETH between two agents, each with its own store;
* a single agent's plan paying two recipients on two anvil chains;
* an ERC-20 leg (the local USDC) claimed, and one refunded: gas of approve, lock, claim
  and refund.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_account import Account

from chains.atomic import Coordinator, Payment
from chains.atomic.swap import SwapSide
from chains.families.evm.devnet import install_local_token, top_up_local_token
from chains.htlc.solana.litesvm_harness import measure_compute_units
from config.store import open_store
from tests.atomic._env import (
    TEST_MARGINS,
    Authorizer,
    evm_htlc,
    make_wallet,
    party,
    start_evm_node,
    start_solana_node,
)
from tests.atomic._swap import ETH, SOL, close, make_side, open_swap, run_both, trusting

USDC = 10**6
TOKEN = "0x" + "c5" * 20


async def bench_swap(tmp: Path, arb, sol) -> None:
    maker = await make_side("maker", tmp, [arb], sol)
    taker = await make_side("taker", tmp, [arb], sol, verify=trusting)
    for side in (maker, taker):
        arb.fund(side.wallet.evm_address, 10 * ETH)
        sol.fund(side.wallet.solana_address, 10 * SOL)
    started = time.perf_counter()
    await open_swap(
        maker,
        taker,
        "bench-swap",
        give=SwapSide(chain="sol", amount=2 * SOL),
        take=SwapSide(chain="arb", amount=ETH // 2),
    )
    made, taken = await run_both(maker, taker, "bench-swap")
    elapsed = time.perf_counter() - started
    print(f"swap 2 SOL <-> 0.5 ETH: {made.state}/{taken.state} in {elapsed:.2f} s wall")
    for side in (maker, taker):
        for step in side.coordinator.store.steps("bench-swap"):
            leg = side.coordinator.store.get("bench-swap").leg(step.idx)
            if leg.chain == "arb":
                shown = f"{arb.fee(step.tx_id)} wei, {_gas(arb, step.tx_id)} gas"
            else:  # a lock carries two signatures (payer and the new escrow account)
                adapter: Any = side.coordinator.chain("sol").adapter
                shown = f"{adapter.fee(2 if step.purpose == 'lock' else 1)} lamports"
            print(f"  {side.wallet.name:<6} {step.purpose:<6} on {leg.chain:<4} fee {shown}")
    await close(maker, taker)


async def bench_plan(tmp: Path, nodes) -> None:
    wallet, authorizer = make_wallet("payer"), Authorizer()
    for node in nodes.values():
        node.fund(wallet.evm_address, 10 * ETH)
    chains = {name: await evm_htlc(node) for name, node in nodes.items()}
    engine = open_store(f"sqlite:///{tmp / 'plan.db'}")
    coordinator = Coordinator(
        engine, party(wallet, authorizer), chains, authorizer, margins=TEST_MARGINS, poll=0.05
    )
    payments = [
        Payment(chain=name, recipient=Account.create().address, amount=ETH // 10) for name in nodes
    ]
    started = time.perf_counter()
    await coordinator.create_plan("bench-plan", payments)
    plan = await coordinator.run("bench-plan", timeout=60)
    elapsed = time.perf_counter() - started
    steps = coordinator.store.steps("bench-plan")
    print(
        f"plan paying 2 recipients on 2 anvils: {plan.state}, {len(steps)} transactions "
        f"in {elapsed:.2f} s wall"
    )
    for step in steps:
        node = nodes[plan.leg(step.idx).chain]
        fee, gas = node.fee(step.tx_id), _gas(node, step.tx_id)
        print(f"  {step.purpose:<6} leg {step.idx} on {node.name:<4} fee {fee} wei, {gas} gas")
    for chain in chains.values():
        await chain.close()
        await chain.adapter.close()


async def bench_token_plan(tmp: Path, nodes) -> None:
    """Gas of an ERC-20 leg's steps: approve, lock and claim of a plan that settles, and
    approve, lock and refund of one whose other leg cannot lock."""
    arb, base = nodes["arb"], nodes["base"]
    wallet, authorizer = make_wallet("usdc-payer"), Authorizer()
    arb.fund(wallet.evm_address, 10 * ETH)
    base.fund(wallet.evm_address, ETH // 1000)  # too little for the refund plan's base leg
    await install_local_token(arb.url, TOKEN)
    await top_up_local_token(arb.url, TOKEN, wallet.evm_address, 1_000 * USDC)
    chains = {name: await evm_htlc(node) for name, node in nodes.items()}
    engine = open_store(f"sqlite:///{tmp / 'token.db'}")
    coordinator = Coordinator(
        engine, party(wallet, authorizer), chains, authorizer, margins=TEST_MARGINS, poll=0.05
    )
    usdc = Payment(chain="arb", recipient=Account.create().address, amount=25 * USDC, asset=TOKEN)
    await coordinator.create_plan("bench-usdc", [usdc])
    claimed = await coordinator.run("bench-usdc", timeout=60)
    short = usdc.model_copy(update={"deadline": await chains["arb"].now() + 30})
    too_much = Payment(chain="base", recipient=Account.create().address, amount=ETH)
    await coordinator.create_plan("bench-usdc-refund", [short, too_much])
    await coordinator.run("bench-usdc-refund", timeout=10)  # the base lock fails
    arb.advance(40)
    refunded = await coordinator.run("bench-usdc-refund", timeout=60)
    print(f"ERC-20 leg (local USDC, OpenZeppelin 5.7.0): {claimed.state}, {refunded.state}")
    for plan_id in ("bench-usdc", "bench-usdc-refund"):
        for step in coordinator.store.steps(plan_id, 0):
            if step.tx_id is not None and step.status == "final":
                print(f"  {step.purpose:<7} {_gas(arb, step.tx_id):>7} gas  ({plan_id})")
    for chain in chains.values():
        await chain.close()
        await chain.adapter.close()


def _gas(node, tx_id: str | None) -> int:
    return int(node.w3.eth.get_transaction_receipt(tx_id)["gasUsed"])


def main() -> None:
    """Start the chains, run both benchmarks, print figures, stop the chains."""
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        nodes = {"arb": start_evm_node("arb", 42_161), "base": start_evm_node("base", 8_453)}
        sol = start_solana_node()
        try:
            asyncio.run(bench_swap(tmp, nodes["arb"], sol))
            asyncio.run(bench_plan(tmp, nodes))
            asyncio.run(bench_token_plan(tmp, nodes))
        finally:
            for process in [node.process for node in nodes.values()] + [sol.process]:
                if process is not None:
                    os.killpg(process.pid, signal.SIGKILL)
    print("Solana HTLC program, compute units per instruction (LiteSVM):")
    for name, units in measure_compute_units().items():
        print(f"  {name:<8} {units:>6} CU")


if __name__ == "__main__":
    main()
