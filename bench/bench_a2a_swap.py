"""End-to-end latency of a swap between two operators' daemons (two `main.py run`
processes, 1 ETH on anvil for 20 SOL on the LiteSVM server, over A2A), against the time
the two chains themselves make a swap wait.

Latency runs from the taker's acceptance (the moment it journals its side, after its
agent decided) to the last claim final on both sides; the wait between the offer and
the acceptance is the taker agent's schedule, printed apart.

The chains' inclusion and finality times are measured apart from the daemons, by a
bare client (bench/_chain_pace.py): E, an EVM transfer's time to final, S, a Solana
one's, and s, a Solana one's time to seen. A swap cannot end sooner than the waits it
must make one after another: the maker's EVM lock final (E: the taker locks only
against a final lock), the taker's SOL lock final (S: the maker reveals the preimage
only against a final lock), then the longer of the maker's SOL claim final (S) and the
taker's EVM claim, sent once the preimage is seen (s + E). Target: latency at most 1.2x
E + S + max(S, s + E).

Two paces: the local chains as they are (anvil mines each transaction at once, Solana
confirmed), where the chain waits are a few milliseconds and the ratio measures the
daemons' own overhead against almost nothing; and ``--public-pace``, the chains at a
public network's pace (2 s EVM blocks and one confirmation, Solana finalized: 32 blocks
of 0.4 s), the pace the target is about.

    python bench/bench_a2a_swap.py [--swaps 2] [--public-pace]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench._chain_pace import evm_pace, solana_pace
from chains.devnet import manager as devnet
from config.store import open_store
from tests.a2a._two_operators import Side, start, stop, two_operators, wait_for

TARGET = 1.2


def _times(side: Side) -> tuple[datetime, datetime, float]:
    """The side's plan's start and end, and the seconds its own transactions of the
    plan took from signed to final."""
    engine = open_store(side.deployment.store.url or "")
    try:
        with engine.connect() as connection:
            plan = connection.execute(
                sa.text("SELECT created_at, updated_at FROM atomic_plans")
            ).one()
            rows = connection.execute(
                sa.text(
                    "SELECT j.created_at, j.updated_at FROM atomic_steps s "
                    "JOIN chain_tx_journal j ON j.tx_id = s.tx_id "
                    "WHERE s.purpose IN ('lock', 'claim') AND j.status = 'final'"
                )
            ).all()
    finally:
        engine.dispose()
    on_chain = sum((_at(done) - _at(signed)).total_seconds() for signed, done in rows)
    return _at(plan[0]), _at(plan[1]), on_chain


def _at(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def one_swap(tmp: Path, *, public_pace: bool) -> dict[str, float]:
    north, south, urls = two_operators(tmp, idle=(2, 4), public_pace=public_pace)
    daemons = []
    try:
        daemons.append(start(north, tmp / "north.log"))
        daemons.append(start(south, tmp / "south.log"))

        def claimed() -> bool:
            states = [p.state for side in (north, south) for p in side.plans()]
            return states == ["claimed", "claimed"]

        wait_for(claimed, 300, "both plans claimed")
        for process in daemons:
            stop(process)  # the probes measure the chains alone
        evm = asyncio.run(evm_pace(urls["arb"], *((1, 2.0) if public_pace else (0, 0.0))))
        sol = asyncio.run(
            solana_pace(urls["sol"], "finalized" if public_pace else "confirmed", 0.4)
        )
    finally:
        for process in daemons:
            stop(process)
        devnet.down(north.deployment)
    offered, made_end, maker_chain = _times(north)
    accepted, taken_end, taker_chain = _times(south)
    return {
        "latency": (max(made_end, taken_end) - accepted).total_seconds(),
        "journaled": maker_chain + taker_chain,
        "decision": (accepted - offered).total_seconds(),
        "critical": evm.final + sol.final + max(sol.final, sol.seen + evm.final),
        "evm": evm.final,
        "sol": sol.final,
        "sol_seen": sol.seen,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--swaps", type=int, default=2)
    parser.add_argument(
        "--public-pace",
        action="store_true",
        help="local chains at a public network's pace (2 s EVM blocks with one "
        "confirmation, Solana finalized) instead of mining each transaction at once",
    )
    args = parser.parse_args()
    runs = []
    for index in range(args.swaps):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(one_swap(Path(tmp), public_pace=args.public_pace))
        run = runs[-1]
        print(
            f"swap {index + 1}: {run['latency']:.2f} s from acceptance to the last claim final "
            f"(offer to acceptance {run['decision']:.2f} s); chain waits by a bare client: "
            f"E {run['evm']:.2f} s, S {run['sol']:.2f} s, s {run['sol_seen']:.2f} s, critical "
            f"path {run['critical']:.2f} s; its 4 transactions journaled signed-to-final "
            f"{run['journaled']:.2f} s in all"
        )
    latency = statistics.median(r["latency"] for r in runs)
    critical = statistics.median(r["critical"] for r in runs)
    ratio = latency / critical if critical else float("inf")
    verdict = "met" if ratio <= TARGET else "MISSED"
    pace = "public pace" if args.public_pace else "instant local chains"
    print(
        f"median ({pace}): latency {latency:.2f} s against the chains' critical path "
        f"{critical:.2f} s, ratio {ratio:.2f}x (target <= {TARGET}x): {verdict}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
