"""The two-operator demo: two operators' daemons swap 1 ETH for 20 SOL with each other
over A2A, on local chains (tests/a2a/_two_operators.py builds both deployments: two
keystores, two stores, two data dirs, each trusting the other's operator and listing
the other's agent by DID and card URL). Both deployments are made afresh under
.covenant/two-operators; the run ends when both plans have ended, with what each side
gave and got.

    bash scripts/demo_two_operators.sh      (sets up .venv first)
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chains.devnet import manager as devnet
from config.loader import load_deployment
from tests.a2a._two_operators import ROOT, balances, start, stop, two_operators, wait_for


def main() -> int:
    """Run the demo: both deployments made afresh under .covenant/two-operators, both
    daemons started, until both plans end; then what each side gave and got."""
    base = ROOT / ".covenant" / "two-operators"
    if (base / "north" / "north.yaml").exists():  # a run cut short left its chains up
        devnet.down(load_deployment(base / "north" / "north.yaml"))
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    north, south, urls = two_operators(base)
    print(f"north: {north.file}\n  agent {north.agent} {north.did}")
    print(f"south: {south.file}\n  agent {south.agent} {south.did}")
    before = {side.name: asyncio.run(balances(side, urls)) for side in (north, south)}
    daemons = []
    try:
        daemons.append(start(north, base / "north.log"))
        daemons.append(start(south, base / "south.log"))
        print("both daemons started (logs: north.log, south.log); waiting for the swap")

        def ended() -> bool:
            states = [p.state for side in (north, south) for p in side.plans()]
            return len(states) == 2 and all(
                s in ("claimed", "refunded", "cancelled") for s in states
            )

        seconds = wait_for(ended, 180, "both sides' plans to end")
        after = {side.name: asyncio.run(balances(side, urls)) for side in (north, south)}
    finally:
        for process in daemons:
            stop(process)
        devnet.down(north.deployment)
    print(f"ended after {seconds:.1f} s:")
    units = {"arb": ("ETH", 18), "sol": ("SOL", 9)}
    for side in (north, south):
        (plan,) = side.plans()
        moved = ", ".join(
            f"{Decimal(after[side.name][c] - before[side.name][c]).scaleb(-places):+f} {symbol}"
            for c, (symbol, places) in units.items()
        )
        print(f"  {side.name}: {plan.kind} of plan {plan.plan_id}: {plan.state}; {moved}")
    print(f"inspect: python main.py swaps list {north.file}")
    return 0 if all(p.state == "claimed" for s in (north, south) for p in s.plans()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
