"""The Solana chain family (``FAMILY``): its configuration, adapter, HTLC client and
local chains. Only :mod:`chains.families` imports this package by name."""

from chains.families.solana.family import SolanaFamily

FAMILY = SolanaFamily()

__all__ = ["FAMILY"]
