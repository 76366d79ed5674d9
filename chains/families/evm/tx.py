"""The unsigned transaction of the EVM family."""

from __future__ import annotations

from typing import Any

from chains.base import UnsignedTx


class EvmUnsignedTx(UnsignedTx):
    """An EIP-1559 transaction dict (chainId, nonce, gas, fees, to, value, data)."""

    tx: dict[str, Any]

    @property
    def nonce(self) -> int:
        """The sender nonce this transaction uses."""
        return int(self.tx["nonce"])
