"""Chain adapters (EVM via web3.py, Solana via solana-py + solders), the transaction
journal, and local chains for development and tests."""

from typing import Any

from chains.base import (
    AccountRef,
    ChainAdapter,
    ContractCall,
    EvmUnsignedTx,
    Intent,
    NativeTransfer,
    ProgramInstruction,
    Simulation,
    SolanaUnsignedTx,
    TokenTransfer,
    TxExpired,
    TxId,
    TxStatus,
    UnsignedTx,
)


def __getattr__(name: str) -> Any:
    # `connect` pulls in web3, solana-py and the devnet; import it only when asked for.
    if name == "connect":
        from chains.connect import connect

        return connect
    raise AttributeError(f"module 'chains' has no attribute {name!r}")


__all__ = [
    "AccountRef",
    "ChainAdapter",
    "ContractCall",
    "EvmUnsignedTx",
    "Intent",
    "NativeTransfer",
    "ProgramInstruction",
    "Simulation",
    "SolanaUnsignedTx",
    "TokenTransfer",
    "TxExpired",
    "TxId",
    "TxStatus",
    "UnsignedTx",
    "connect",
]
