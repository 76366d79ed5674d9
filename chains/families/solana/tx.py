"""The unsigned transaction of the Solana family."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from chains.base import UnsignedTx


class SolanaUnsignedTx(UnsignedTx):
    """A compiled message; it is valid until the chain passes `last_valid_block_height`."""

    message: Any = Field(description="solders MessageV0 (or legacy Message).")
    last_valid_block_height: int

    @property
    def expires_at_height(self) -> int:
        """The blockhash's last valid block height."""
        return self.last_valid_block_height
