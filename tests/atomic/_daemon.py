"""A minimal daemon for the crash tests, run as its own process.

``python tests/atomic/_daemon.py CONFIG.json``: opens the store, derives the agent's
wallet from the test mnemonic, journals the configured plans (idempotently), then lets
a watchtower drive every open plan to the end. ``COVENANT_CRASH_AT`` makes it SIGKILL
itself at a journal boundary.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from chains.atomic import ChainMargin, Coordinator, HtlcChain, Margins, Payment
from chains.atomic.swap import Counterparty, SwapSide, accept_offer, make_offer, on_acceptance
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
)


async def main(config: dict[str, Any]) -> int:
    engine = open_store(config["store"])
    authorizer = Authorizer()  # stands in for this daemon's policy engine
    wallet = make_wallet(config["agent"], config["mnemonic"])
    quick = ChainMargin(inclusion=1, finality=0)
    margins = Margins(
        watcher_interval=config["watcher"], evm=quick, solana=quick, slack=2, max_lock=3600
    )
    chains: dict[str, HtlcChain] = {}
    for name, node in config["evm"].items():
        chains[name] = await evm_htlc(
            EvmNode(name, node["chain_id"], node["url"], node["contract"]), margins
        )
    if config.get("solana"):
        chains["sol"] = await solana_htlc(SolanaNode(config["solana"]), margins)
    coordinator = Coordinator(
        engine,
        party(wallet, authorizer),
        chains,
        authorizer,
        margins=margins,
        tx_timeout=20,
        poll=0.05,
    )
    taker = await _swaps(config, engine, coordinator, chains, authorizer, margins)
    for plan in config["plans"]:
        payments = []
        for payment in plan["payments"]:
            offset = payment.pop("deadline_in", None)
            if offset is not None:
                payment["deadline"] = await chains[payment["chain"]].now() + offset
            payments.append(Payment.model_validate(payment))
        await coordinator.create_plan(plan["id"], payments)
    ticker = asyncio.create_task(
        _tick([EvmNode(name, 0, node["url"], "") for name, node in config["evm"].items()])
    )
    still_open = await Watchtower([coordinator, taker], interval=0.1).settle(timeout=60)
    ticker.cancel()
    for chain in chains.values():
        await chain.close()
        await chain.adapter.close()
    return 3 if still_open else 0


async def _swaps(
    config: dict[str, Any],
    engine: Any,
    maker: Coordinator,
    chains: dict[str, HtlcChain],
    authorizer: Authorizer,
    margins: Margins,
) -> Coordinator:
    """A second agent of this daemon, and the swaps it takes from the first one: offer,
    acceptance and its receipt are idempotent, so a restart replays them safely."""
    wallet = make_wallet("taker", config["taker_mnemonic"])

    async def trust(did: str, plan: Any) -> bool:
        return did == maker.party.did

    taker = Coordinator(
        engine,
        party(wallet, authorizer),
        chains,
        authorizer,
        margins=margins,
        verify_authority=trust,
        tx_timeout=20,
        poll=0.05,
    )
    them = Counterparty(
        did=wallet.did, addresses={"evm": wallet.evm_address, "solana": wallet.solana_address}
    )
    for swap in config.get("swaps", []):
        offer = await make_offer(
            maker,
            swap["id"],
            give=SwapSide(**swap["give"]),
            take=SwapSide(**swap["take"]),
            taker=them,
        )
        acceptance = await accept_offer(taker, offer, maker_did=maker.party.did)
        on_acceptance(maker, swap["id"], acceptance)
    return taker


async def _tick(nodes: list[EvmNode]) -> None:
    """Mine an empty block every half second, as a live L2 would: an idle anvil has no
    new blocks, so its clock (the latest block's timestamp) would never pass a deadline."""
    while True:
        for node in nodes:
            await asyncio.to_thread(node.mine)
        await asyncio.sleep(0.5)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(json.loads(Path(sys.argv[1]).read_text()))))
