"""Print the compute units each Solana HTLC instruction consumes (run in LiteSVM).

Usage: ``python bench/bench_htlc_program.py`` from the repository root.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chains.htlc.solana.litesvm_harness import measure_compute_units


def main() -> None:
    """Measure and print one line per instruction."""
    for name, units in measure_compute_units().items():
        print(f"{name:<8} {units:>6} CU")


if __name__ == "__main__":
    main()
