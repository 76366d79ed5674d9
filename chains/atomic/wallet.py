"""The coordinator's view of one agent's wallet: addresses, derived secrets, signing.

A party has no signer of its own: whoever builds it hands it ``sign_tx``. A daemon's
coordinators get the agents' gate's (``agents/gate.py``), so escrow steps reach a signer
the same one way single payments do, and the signer refuses anything without an
:class:`~wallets.authorization.Authorization` for the exact transaction digest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from chains.base import UnsignedTx
from chains.families import family as family_named
from wallets.authorization import Authorization
from wallets.operator import AgentWallet

SignTx = Callable[[UnsignedTx, Authorization, Sequence[bytes]], bytes]
"""(unsigned, authorization, co-signer seeds) -> raw signed bytes."""


class WalletParty:
    """An :class:`~wallets.operator.AgentWallet` as a :class:`chains.atomic.base.Party`."""

    def __init__(self, wallet: AgentWallet, *, sign_tx: SignTx) -> None:
        self._wallet = wallet
        self._sign_tx = sign_tx
        self._jws = wallet.jws_signer()

    @property
    def name(self) -> str:
        """The agent name."""
        return self._wallet.name

    @property
    def did(self) -> str:
        """The agent's did:key."""
        return self._wallet.did

    def address(self, family: str) -> str:
        """The agent's address on chains of `family`."""
        return family_named(family).address(self._wallet)

    def derive_secret(self, label: str) -> bytes:
        """HMAC-SHA256 of the agent's preimage key and `label` (wallets.derive_preimage)."""
        return self._wallet.derive_preimage(label)

    def sign_offer(self, claims: dict[str, object]) -> str:
        """A compact JWS over `claims` by the agent's DID key."""
        return self._jws.sign_json(claims, typ="covenant-swap+jws")

    def sign_tx(
        self,
        family: str,
        unsigned: UnsignedTx,
        authorization: Authorization,
        co_signers: Sequence[bytes] = (),
    ) -> bytes:
        """Raw signed bytes; the signer checks `authorization` against the digest."""
        return self._sign_tx(unsigned, authorization, co_signers)

    def __repr__(self) -> str:
        return f"WalletParty({self._wallet.name!r})"
