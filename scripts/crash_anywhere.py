"""Crash-anywhere campaign: SIGKILL the crash-test daemon at random instants and at every
durable write of one swap, restart it until its plans finish, and count from the chains
what was lost.

    .venv/bin/python scripts/crash_anywhere.py --kills 200 --seed 7 --every-write

Starts its own chains (two anvils with the HTLC contract, the LiteSVM JSON-RPC server
with the HTLC program) and stops them at the end. Prints one line per failed scenario
(its kills, with the write index or the random delay, and what is wrong), then the
figures: kills done, plans claimed/refunded/open, funds lost in wei and lamports, seed,
wall time. Exits 1 if anything was lost, left open or did not reconcile.
See tests/atomic/_crash_harness.py for what is killed and how the chains are read.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.atomic._crash_harness import KINDS, campaign
from tests.atomic._env import EVM_CHAINS, start_evm_node, start_solana_node


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200, help="random-instant kills (200)")
    parser.add_argument("--seed", type=int, default=None, help="RNG seed (default: from time)")
    parser.add_argument(
        "--every-write", action="store_true", help="also kill at every durable write of a swap"
    )
    parser.add_argument(
        "--write-kind", default="swap-arb-sol", choices=KINDS, help="scenario of --every-write"
    )
    parser.add_argument(
        "--modes",
        default="after,before",
        help="when --every-write kills: after and/or before the commit (after,before)",
    )
    parser.add_argument("--workers", type=int, default=3, help="daemons at once (3)")
    parser.add_argument("--dir", type=Path, default=None, help="keep stores and logs here")
    parser.add_argument("--verbose", action="store_true", help="one line per scenario")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the campaign; 0 when nothing was lost or left open."""
    args = _arguments(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the chains on the way out
    seed = args.seed if args.seed is not None else int(time.time()) % 100_000
    print(f"seed {seed}", flush=True)
    work = args.dir or Path(tempfile.mkdtemp(prefix="crash-anywhere-"))
    work.mkdir(parents=True, exist_ok=True)
    nodes = {
        name: start_evm_node(name, cid, work / f"{name}.log") for name, cid in EVM_CHAINS.items()
    }
    sol = start_solana_node(work / "solana-rpc.log")
    try:
        figures = campaign(
            nodes,
            sol,
            work / "scenarios",
            kills=args.kills,
            seed=seed,
            every_write=args.every_write,
            write_kind=args.write_kind,
            modes=tuple(mode for mode in args.modes.split(",") if mode),
            workers=args.workers,
            progress=(lambda line: print(line, flush=True)) if args.verbose else lambda line: None,
        )
    finally:
        for process in [node.process for node in nodes.values()] + [sol.process]:
            if process is not None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    for failure in figures.failures():
        print("FAILED", failure)
    print(json.dumps(figures.summary(), indent=2))
    print(f"stores and logs: {work}")
    return 0 if not figures.failures() else 1


if __name__ == "__main__":
    sys.exit(main())
