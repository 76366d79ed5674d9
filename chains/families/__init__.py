"""The registry of chain families: the one place that names each family.

Adding a family is one folder, ``chains/families/<name>/``, exporting ``FAMILY`` (a
:class:`~chains.families.base.ChainFamily`), plus one line in :data:`_MODULES` below.
Everything else (the configuration's chain union, signing, held approvals, connecting,
escrows, devnet, doctor, DIDs, margins) asks the registry.

Importing this module imports each family's ``__init__``, which holds only its
configuration model; adapters, RPC clients and devnet helpers load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from chains.families.base import ChainFamily
from config.errors import ConfigError

if TYPE_CHECKING:
    from chains.base import UnsignedTx
    from config.chain_model import ChainModel

_MODULES = (
    "chains.families.evm",
    "chains.families.solana",
)

FAMILIES: tuple[ChainFamily, ...] = tuple(import_module(path).FAMILY for path in _MODULES)
"""Every registered family, in registry order (the order of the configuration union)."""

_BY_NAME = {family.name: family for family in FAMILIES}
_BY_NAMESPACE = {family.did_namespace: family for family in FAMILIES}


def family(name: str) -> ChainFamily:
    """The family called `name` (a chain's `family:` value); ConfigError if none is."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ConfigError(f"no chain family {name!r}; families: {sorted(_BY_NAME)}") from None


def family_of_chain(chain: ChainModel) -> ChainFamily:
    """The family of a configured chain."""
    return family(chain.family)


def family_of_unsigned(unsigned: UnsignedTx) -> ChainFamily | None:
    """The family whose transaction `unsigned` is, or None (callers raise their own
    error: a signer refuses, the held-approval store cannot hold it)."""
    return next((f for f in FAMILIES if f.owns_unsigned(unsigned)), None)


def family_of_namespace(namespace: str) -> ChainFamily | None:
    """The family whose accounts use CAIP-2 `namespace`, or None."""
    return _BY_NAMESPACE.get(namespace)


def family_of_node(kind: str) -> ChainFamily | None:
    """The family whose local node the devnet records as `kind`, or None."""
    return next((f for f in FAMILIES if f.devnet_kind == kind), None)


__all__ = [
    "FAMILIES",
    "ChainFamily",
    "family",
    "family_of_chain",
    "family_of_namespace",
    "family_of_node",
    "family_of_unsigned",
]
