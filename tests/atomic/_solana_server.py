"""The devnet Solana JSON-RPC server (chains.families.solana.solana_rpc) with the HTLC program
deployed, as its own process: ``python tests/atomic/_solana_server.py PORT``.

The devnet server has no option to load a program yet, so this launcher builds the same
app around a ledger that has the committed HTLC ELF at its well-known local id.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiohttp import web

from chains.families.solana._svm import SvmLedger
from chains.families.solana.htlc_client import LOCAL_PROGRAM_ID
from chains.families.solana.solana_rpc import make_app
from chains.htlc.solana.build import ELF_PATH


def main() -> None:
    ledger = SvmLedger(block_time=0.1, finality_depth=4)
    ledger.svm.add_program(LOCAL_PROGRAM_ID, ELF_PATH.read_bytes())
    web.run_app(
        make_app(ledger), host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None
    )


if __name__ == "__main__":
    main()
