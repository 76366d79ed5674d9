"""Chain adapters (one per chain family, under ``chains/families/``), the transaction
journal, and local chains for development and tests.

The names below load on first use: :mod:`config.models` imports the family registry
(``chains.families``) while it is being built, and that must not pull in
:mod:`chains.base`, which needs the finished configuration models.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chains.base import (
        AccountRef,
        ChainAdapter,
        ContractCall,
        Intent,
        NativeTransfer,
        ProgramInstruction,
        Simulation,
        TokenTransfer,
        TxExpired,
        TxId,
        TxStatus,
        UnsignedTx,
    )
    from chains.connect import connect

_LAZY_HOME = {"connect": "chains.connect"}  # web3, solana-py and the devnet: load on use
"""Where each name of ``__all__`` not in :mod:`chains.base` lives."""


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'chains' has no attribute {name!r}")
    home = _LAZY_HOME.get(name, "chains.base")
    return getattr(import_module(home), name)


__all__ = [
    "AccountRef",
    "ChainAdapter",
    "ContractCall",
    "Intent",
    "NativeTransfer",
    "ProgramInstruction",
    "Simulation",
    "TokenTransfer",
    "TxExpired",
    "TxId",
    "TxStatus",
    "UnsignedTx",
    "connect",
]
