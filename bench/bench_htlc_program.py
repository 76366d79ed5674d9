"""Print the compute units each Solana HTLC instruction consumes (run in LiteSVM, under
mainnet-beta's feature set).

Usage: ``python bench/bench_htlc_program.py`` from the repository root. A token
instruction's figure is the HTLC program's whole invocation, the SPL Token CPIs inside it
included (the token program's own share is printed beside it).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chains.htlc.solana.litesvm_harness import measure_compute_units
from chains.htlc.solana.token_harness import PDA_TRY_UNITS, measure_token_detail


def main() -> None:
    """Measure and print one line per instruction."""
    for name, units in measure_compute_units().items():
        print(f"{name:<13} {units:>6} CU")
    for name, (units, token_units) in measure_token_detail().items():
        print(f"{name:<13} {units:>6} CU  (of which SPL Token CPIs: {token_units} CU)")
    print(
        f"(lock_token with the first bump canonical, as for half of all escrows; each "
        f"further bump its PDA search tries adds {PDA_TRY_UNITS:,} CU)"
    )


if __name__ == "__main__":
    main()
