"""Interfaces of the wallets package."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from wallets.authorization import Authorization

UnsignedT = TypeVar("UnsignedT")
SignedT = TypeVar("SignedT")


class Signer(ABC, Generic[UnsignedT, SignedT]):
    """Signs for one agent, only with a matching :class:`Authorization`.

    A signer exposes its address, never its key. ``sign`` recomputes the digest of
    `unsigned` itself and raises :class:`~config.errors.SignerError` unless
    `authorization` was minted by the trusted policy engine for this agent and exactly
    that digest, and has not expired.
    """

    @property
    @abstractmethod
    def agent(self) -> str:
        """The agent this signer signs for."""

    @property
    @abstractmethod
    def address(self) -> str:
        """The account address (EIP-55 hex for EVM, base58 for Solana)."""

    @abstractmethod
    def sign(self, unsigned: UnsignedT, authorization: Authorization | None) -> SignedT:
        """Sign `unsigned` if `authorization` allows it."""
