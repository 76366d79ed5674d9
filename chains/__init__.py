"""Chain adapters (EVM via web3.py, Solana via solana-py + solders), the transaction
journal, and local chains for development and tests."""

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
]
