"""End-to-end latency of a swap between two operators' daemons (two `main.py run`
processes, 1 ETH on anvil for 20 SOL on the LiteSVM server, over A2A), against the time
its four transactions spend on chain.

A swap's critical path is four transactions one after another: the maker's lock, the
taker's lock, the maker's claim (revealing the preimage), the taker's claim. Each one's
inclusion and finality time is read from the sending daemon's transaction journal
(signed to final). Latency runs from the taker's acceptance (the moment it journals its
side, after its agent decided) to the last claim final; the wait between the offer and
the acceptance is the taker agent's schedule, printed apart. Target: latency at most
1.2x the four transactions' inclusion and finality times.

    python bench/bench_a2a_swap.py [--swaps 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

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


def one_swap(tmp: Path) -> dict[str, float]:
    north, south, _ = two_operators(tmp, idle=(2, 4))
    daemons = []
    try:
        daemons.append(start(north, tmp / "north.log"))
        daemons.append(start(south, tmp / "south.log"))

        def claimed() -> bool:
            states = [p.state for side in (north, south) for p in side.plans()]
            return states == ["claimed", "claimed"]

        wait_for(claimed, 180, "both plans claimed")
    finally:
        for process in daemons:
            stop(process)
        devnet.down(north.deployment)
    offered, made_end, maker_chain = _times(north)
    accepted, taken_end, taker_chain = _times(south)
    latency = (max(made_end, taken_end) - accepted).total_seconds()
    return {
        "latency": latency,
        "on_chain": maker_chain + taker_chain,
        "decision": (accepted - offered).total_seconds(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--swaps", type=int, default=2)
    args = parser.parse_args()
    runs = []
    for index in range(args.swaps):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(one_swap(Path(tmp)))
        run = runs[-1]
        print(
            f"swap {index + 1}: {run['latency']:.2f} s from acceptance to the last claim; "
            f"its 4 transactions {run['on_chain']:.2f} s on chain; offer to acceptance "
            f"{run['decision']:.2f} s"
        )
    latency = statistics.median(r["latency"] for r in runs)
    on_chain = statistics.median(r["on_chain"] for r in runs)
    ratio = latency / on_chain if on_chain else float("inf")
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(
        f"median: latency {latency:.2f} s, on chain {on_chain:.2f} s, ratio {ratio:.1f}x "
        f"(target <= {TARGET}x): {verdict}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
