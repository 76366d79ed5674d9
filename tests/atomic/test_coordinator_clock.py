"""The coordinator's judgement of chain state after a restart (issue #13).

- A maker that comes back too close to the taker's deadline must not reveal the preimage:
  a claim that cannot land in time reverts with the preimage already public, and the
  taker would refund its own leg and claim the maker's.
- An escrow that disappears (Solana closes a settled escrow) is classified from the
  chain: a counterparty's refund is a refund, and our own lock is then refunded.

The maker's first life is a real process SIGKILLed by ``COVENANT_CRASH_AT`` right after
it journals its claim intent (``chains.atomic._crash``), so the store holds exactly what
a crash there leaves. Its second life is a fresh coordinator over the same store and
seed. Clocks move with evm_increaseTime on anvil; the LiteSVM server's clock is the wall
clock, so a Solana deadline is waited for.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from web3.types import RPCEndpoint

from chains.atomic import ChainMargin, Coordinator, HtlcChain, Margins
from chains.atomic._crash import ENV_VAR
from chains.atomic.swap import SwapSide
from chains.atomic.watchtower import Watchtower
from config.store import open_store
from tests.atomic._env import (
    Authorizer,
    EvmNode,
    SolanaNode,
    evm_htlc,
    make_wallet,
    party,
    solana_htlc,
    unique,
)
from tests.atomic._swap import ETH, SOL, Side, close, make_side, open_swap, run_both, trusting
from wallets.hd import generate_mnemonic

pytestmark = pytest.mark.anvil
ROOT = Path(__file__).resolve().parents[2]
# Wide EVM margins, so seconds of scheduling jitter never decide a test: a claim that
# reveals needs inclusion (+ halt allowance, 0 on EVM) = 20s before its deadline.
EVM_WIDE = Margins(
    watcher_interval=1, evm=ChainMargin(inclusion=20, finality=5), slack=3, max_lock=3600
)
REVEAL = 20
# Quick margins with a Solana taker leg: its deadline is ~20s of wall time away.
SOL_QUICK = Margins(
    watcher_interval=1,
    evm=ChainMargin(inclusion=1, finality=0),
    solana=ChainMargin(inclusion=5, finality=0),
    slack=6,
    max_lock=3600,
)


def _config(
    tmp_path: Path, nodes: list[EvmNode], sol: SolanaNode | None, margins: Margins
) -> dict[str, Any]:
    return {
        "store": f"sqlite:///{tmp_path / 'maker.db'}",
        "mnemonic": generate_mnemonic(12),
        "margins": margins.model_dump(mode="json"),
        "evm": {
            n.name: {"chain_id": n.chain_id, "url": n.url, "contract": n.contract} for n in nodes
        },
        "solana": sol.url if sol is not None else None,
    }


async def _maker(config: dict[str, Any]) -> Side:
    """The maker as one daemon life: its seed, its store, its own chain connections."""
    wallet = make_wallet("maker", config["mnemonic"])
    authorizer = Authorizer()  # stands in for this life's policy engine
    margins = Margins.model_validate(config["margins"])
    chains: dict[str, HtlcChain] = {}
    for name, node in config["evm"].items():
        evm = EvmNode(name, node["chain_id"], node["url"], node["contract"])
        chains[name] = await evm_htlc(evm, margins)
    if config["solana"]:
        chains["sol"] = await solana_htlc(SolanaNode(config["solana"]), margins)
    coordinator = Coordinator(
        open_store(config["store"]),
        party(wallet, authorizer),
        chains,
        authorizer,
        margins=margins,
        tx_timeout=20,
        poll=0.05,
    )
    return Side(wallet, coordinator, authorizer)


async def _first_life(config: dict[str, Any]) -> int:
    maker = await _maker(config)
    await maker.coordinator.drive(config["plan_id"])
    return 3  # reached only if the crash boundary was never hit


def _crash_at_claim_intent(tmp_path: Path, config: dict[str, Any], plan_id: str) -> None:
    """Run the maker's next pass in its own process, killed once its claim is journaled
    as an intent (before anything is signed or sent)."""
    config_file = tmp_path / "maker.json"
    config_file.write_text(json.dumps({**config, "plan_id": plan_id}))
    result = subprocess.run(
        [sys.executable, "-m", "tests.atomic.test_coordinator_clock", str(config_file)],
        cwd=ROOT,
        env={**os.environ, ENV_VAR: "claim_intent:1"},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]


async def _setup(
    tmp_path: Path,
    nodes: list[EvmNode],
    sol: SolanaNode | None,
    margins: Margins,
    **sides: SwapSide,
) -> tuple[dict[str, Any], Side, str]:
    """Offer, accept and lock both legs; the maker then crashes as it starts to claim."""
    config = _config(tmp_path, nodes, sol, margins)
    maker = await _maker(config)
    taker = await make_side("taker", tmp_path, nodes, sol, verify=trusting, margins=margins)
    for side in (maker, taker):
        for node in nodes:
            node.fund(side.wallet.evm_address, 10 * ETH)
        if sol is not None:
            sol.fund(side.wallet.solana_address, 10 * SOL)
    plan_id = unique("late")
    try:
        await open_swap(maker, taker, plan_id, **sides)
        assert (await maker.coordinator.drive(plan_id)).state == "waiting"
        assert (await taker.coordinator.drive(plan_id)).state == "waiting"  # both locked
    finally:
        await close(maker)
    _crash_at_claim_intent(tmp_path, config, plan_id)
    maker = await _maker(config)
    crashed = maker.coordinator.store.get(plan_id)
    await close(maker)
    assert crashed.state == "claiming"
    steps = [(s.purpose, s.status) for s in maker.coordinator.store.steps(plan_id)]
    assert steps == [("lock", "final"), ("claim", "intent")]
    return config, taker, plan_id


def _carrying(node: EvmNode, secret: bytes) -> list[str]:
    """Transactions in any block of `node`, or waiting in its pool, whose calldata
    holds `secret`."""
    w3, found = node.w3, []
    for number in range(w3.eth.block_number + 1):
        transactions: list[Any] = list(w3.eth.get_block(number, True)["transactions"])
        found += [tx["hash"].hex() for tx in transactions if secret in bytes(tx["input"])]
    pool = w3.provider.make_request(RPCEndpoint("txpool_content"), [])["result"]
    for section in ("pending", "queued"):
        for by_nonce in pool.get(section, {}).values():
            found += [tx["hash"] for tx in by_nonce.values() if secret.hex() in tx["input"]]
    return found


async def _left(side: Side, plan_id: str, index: int) -> int:
    """Seconds before leg `index`'s deadline on its chain, as the coordinator reckons."""
    leg = side.coordinator.store.get(plan_id).leg(index)
    return leg.deadline - await side.coordinator.clock(side.coordinator.chain(leg.chain))


async def _leave(side: Side, node: EvmNode, plan_id: str, index: int, seconds: int) -> None:
    """Move `node`'s clock on until leg `index` has about `seconds` left."""
    node.advance(max(await _left(side, plan_id, index) - seconds, 0))


def _pass(node: EvmNode, deadline: int) -> None:
    now = int(node.w3.eth.get_block("latest")["timestamp"])
    node.advance(max(deadline - now, 0) + 1)


def _spent(node: EvmNode, side: Side, plan_id: str) -> int:
    plan = side.coordinator.store.get(plan_id)
    return sum(
        node.fee(step.tx_id)
        for step in side.coordinator.store.steps(plan_id)
        if step.tx_id and step.status == "final" and plan.leg(step.idx).chain == node.name
    )


@pytest.mark.parametrize("left", [REVEAL - 13, REVEAL + 20], ids=["too-late", "in-time"])
async def test_restarted_maker_reveals_only_with_time_to_claim(tmp_path, evm_nodes, left):
    arb, base = evm_nodes["arb"], evm_nodes["base"]
    give, take = SwapSide(chain="arb", amount=ETH // 10), SwapSide(chain="base", amount=ETH // 5)
    config, taker, plan_id = await _setup(
        tmp_path, [arb, base], None, EVM_WIDE, give=give, take=take
    )
    maker = await _maker(config)  # the second life
    try:
        await _leave(maker, base, plan_id, 1, left)
        remaining = await _left(maker, plan_id, 1)
        assert (0 < remaining < REVEAL) == (left < REVEAL), remaining
        preimage = maker.wallet.derive_preimage(plan_id)
        made = await maker.coordinator.drive(plan_id)
        if left > REVEAL:  # negative control: the claim goes out and the check sees it
            assert made.state == "claimed", made.reason
            assert len(_carrying(base, preimage)) == 1
            made, taken = await run_both(maker, taker, plan_id)
            assert (made.state, taken.state) == ("claimed", "claimed")
            return
        assert made.state == "refunding"
        assert "too late to reveal the preimage" in (made.reason or "")
        assert _carrying(base, preimage) + _carrying(arb, preimage) == []
        _pass(base, made.leg(1).deadline)
        _pass(arb, made.leg(0).deadline)
        made, taken = await run_both(maker, taker, plan_id)
        # Each side's view of the other's leg is settled by following the chain.
        await Watchtower([maker.coordinator, taker.coordinator]).sweep()
        made, taken = (side.coordinator.store.get(plan_id) for side in (maker, taker))
    finally:
        await close(maker, taker)
    assert (made.state, taken.state) == ("refunded", "refunded"), (made.reason, taken.reason)
    assert made.leg_states == taken.leg_states == ("refunded", "refunded")
    assert "too late to reveal the preimage" in (made.reason or "")
    assert _carrying(base, preimage) + _carrying(arb, preimage) == []
    assert "claim" not in maker.purposes + taker.purposes
    assert arb.balance(maker.wallet.evm_address) == 10 * ETH - _spent(arb, maker, plan_id)
    assert base.balance(taker.wallet.evm_address) == 10 * ETH - _spent(base, taker, plan_id)


async def test_late_claim_is_still_sent_once_the_preimage_is_public(tmp_path, evm_nodes):
    """The taker claims the maker's leg with less than the reveal margin left: the
    maker's claim already made the preimage public, so waiting would only lose it."""
    arb, base = evm_nodes["arb"], evm_nodes["base"]
    nodes = [arb, base]
    maker = await make_side("maker", tmp_path, nodes, None, margins=EVM_WIDE)
    taker = await make_side("taker", tmp_path, nodes, None, verify=trusting, margins=EVM_WIDE)
    for side in (maker, taker):
        for node in nodes:
            node.fund(side.wallet.evm_address, 10 * ETH)
    plan_id = unique("public")
    give, take = SwapSide(chain="arb", amount=ETH // 10), SwapSide(chain="base", amount=ETH // 5)
    try:
        await open_swap(maker, taker, plan_id, give=give, take=take)
        assert (await maker.coordinator.drive(plan_id)).state == "waiting"
        assert (await taker.coordinator.drive(plan_id)).state == "waiting"
        assert (await maker.coordinator.drive(plan_id)).state == "claimed"  # revealed
        await _leave(taker, arb, plan_id, 0, REVEAL - 13)
        assert 0 < await _left(taker, plan_id, 0) < REVEAL
        taken = await taker.coordinator.run(plan_id, timeout=30)
    finally:
        await close(maker, taker)
    assert taken.state == "claimed", taken.reason
    assert arb.balance(taker.wallet.evm_address) == 10 * ETH + give.amount - _spent(
        arb, taker, plan_id
    )


async def _until_past(side: Side, plan_id: str, index: int) -> None:
    """Wait (wall time: the LiteSVM clock) until leg `index`'s deadline has passed."""
    leg = side.coordinator.store.get(plan_id).leg(index)
    chain = side.coordinator.chain(leg.chain)
    await asyncio.sleep(max(leg.deadline - await chain.now(), 0))
    for _ in range(20):  # the server's clock moves with the blocks it makes when asked
        if await chain.now() >= leg.deadline:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{chain.name}'s clock never reached {leg.deadline}")


@pytest.mark.parametrize("taker_refunds", [True, False], ids=["taker-refunded", "maker-claimed"])
async def test_closed_escrow_is_judged_from_the_chain(
    tmp_path, evm_nodes, solana_node, taker_refunds
):
    """The taker's SOL escrow disappears while the maker is down. Refunded by the taker
    (it waited out its deadline): the maker must refund its own lock, not call the swap
    claimed. Negative control: the maker claims in time, and the taker, looking only
    after its deadline, finds the claim in the escrow's history and claims in turn."""
    arb = evm_nodes["arb"]
    give, take = SwapSide(chain="arb", amount=ETH // 10), SwapSide(chain="sol", amount=SOL)
    config, taker, plan_id = await _setup(
        tmp_path, [arb], solana_node, SOL_QUICK, give=give, take=take
    )
    maker = await _maker(config)
    try:
        if taker_refunds:
            await _until_past(taker, plan_id, 1)
            taken = await taker.coordinator.run(plan_id, timeout=30)
            assert taken.state == "refunded", taken.reason
        made = await maker.coordinator.drive(plan_id)  # the maker's second life
        if not taker_refunds:
            assert made.state == "claimed", made.reason
            await _until_past(taker, plan_id, 1)
            made, taken = await run_both(maker, taker, plan_id)
            assert (made.state, taken.state) == ("claimed", "claimed"), taken.reason
            assert taken.leg_states == ("claimed", "claimed")
            return
        assert made.state == "refunding", made.reason
        assert made.leg_states[1] == "refunded"
        _pass(arb, made.leg(0).deadline)
        made = await maker.coordinator.run(plan_id, timeout=30)
    finally:
        await close(maker, taker)
    assert made.state == "refunded", made.reason
    assert made.leg_states == ("refunded", "refunded")
    assert maker.purposes == ["refund"]  # this life's; the first life locked
    assert arb.balance(maker.wallet.evm_address) == 10 * ETH - _spent(arb, maker, plan_id)


if __name__ == "__main__":  # the maker's first life: `python -m ... CONFIG_FILE`
    sys.exit(asyncio.run(_first_life(json.loads(Path(sys.argv[1]).read_text()))))
