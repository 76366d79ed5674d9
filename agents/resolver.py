"""Address-book names and asset symbols to addresses, decimals and base units.

The model names counterparties and assets; only this module turns a name into an
address, so nothing a planner writes can choose where funds go.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from chains.atomic.base import normalized
from chains.base import Intent, NativeTransfer, TokenTransfer
from config.errors import AtomicityError, ChainError
from config.models import Asset, Deployment
from wallets.operator import OperatorWallets

if TYPE_CHECKING:
    from agents.a2a.peers import PeerBook


class Resolver:
    """Address-book names and asset symbols to addresses, decimals and base units."""

    def __init__(
        self, deployment: Deployment, wallets: OperatorWallets, peers: PeerBook | None = None
    ) -> None:
        self.deployment = deployment
        self.wallets = wallets
        self.peers = peers

    def asset(self, chain: str, symbol: str) -> Asset:
        """The asset `symbol` on `chain`; ChainError if the deployment has none."""
        for asset in self.deployment.assets:
            if asset.chain == chain and asset.symbol == symbol:
                return asset
        raise ChainError(f"no asset {symbol} on chain {chain!r} in the deployment")

    def asset_of_token(self, chain: str, token: str | None) -> Asset:
        """The deployment's asset on `chain` with `token` (None: the native coin);
        AtomicityError if it has none (an offer may name any token)."""
        for asset in self.deployment.assets:
            if asset.chain == chain and normalized(asset.token) == normalized(token):
                return asset
        what = f"token {token}" if token else "native asset"
        raise AtomicityError(f"chain {chain!r} has no {what} in the deployment's assets")

    def address(self, counterparty: str, chain: str) -> str:
        """The address of the address-book entry `counterparty` on `chain`."""
        party = next((p for p in self.deployment.address_book if p.name == counterparty), None)
        if party is None:
            raise ChainError(f"{counterparty!r} is not in the address book")
        if party.agent is not None:
            return self.wallets.agent(party.agent).address(self.deployment, chain)
        if party.remote:  # another operator's agent: only its verified card says where
            if self.peers is None:
                raise ChainError(f"{counterparty!r} is another operator's agent; not loaded")
            return self.peers.address(counterparty, self.deployment.chain(chain))
        if chain not in party.addresses:
            raise ChainError(f"{counterparty!r} has no address on chain {chain!r}")
        return party.addresses[chain]

    @staticmethod
    def base_units(amount: Decimal, asset: Asset) -> int:
        """`amount` in the asset's base units; ChainError if it has too many decimals."""
        scaled = amount.scaleb(asset.decimals)
        if scaled != scaled.to_integral_value():
            raise ChainError(
                f"{amount} {asset.symbol} has more than {asset.decimals} decimal places"
            )
        return int(scaled)


def intent_for(asset: Asset, to: str, amount: int) -> Intent:
    """A native or token transfer intent."""
    if asset.native:
        return NativeTransfer(to=to, amount=amount)
    assert asset.token is not None  # the config model guarantees exactly one kind
    return TokenTransfer(token=asset.token, to=to, amount=amount)
