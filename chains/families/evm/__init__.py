"""The EVM chain family (``FAMILY``): its configuration, adapter, HTLC client and local
chains. Only :mod:`chains.families` imports this package by name."""

from chains.families.evm.family import EvmFamily

FAMILY = EvmFamily()

__all__ = ["FAMILY"]
