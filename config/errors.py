"""The project's one exception tree.

Every error Covenant raises on purpose derives from :class:`CovenantError`. Library
errors are converted at the boundary of the package that calls the library
(``raise ChainError(...) from exc``), so callers catch by meaning, not by library.
Messages quote the bad value and say what to do; they never contain key material,
seeds or HTLC preimages.
"""

from __future__ import annotations


class CovenantError(Exception):
    """Root of every error Covenant raises on purpose."""


class ConfigError(CovenantError):
    """A deployment file or CLI argument is invalid; the message says where and why."""


class StoreError(CovenantError):
    """The state store cannot be opened, migrated or written."""


class WalletError(CovenantError):
    """Keystore, key derivation, DID or credential failure."""


class KeystoreError(WalletError):
    """A keystore file is missing, unreadable, corrupt, or the passphrase is wrong."""


class SignerError(WalletError):
    """A signer refused to sign (missing, mismatched or expired authorization)."""


class CredentialError(WalletError):
    """A verifiable credential failed verification; ``reason`` says which check."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ChainError(CovenantError):
    """A chain adapter could not complete a read or a transaction."""


class RpcUnreachable(ChainError):
    """The RPC endpoint did not answer."""


class WrongChainId(ChainError):
    """The endpoint serves a different chain than the deployment configures."""


class InsufficientFunds(ChainError):
    """The account cannot pay for the transaction."""


class TransactionReverted(ChainError):
    """The transaction (or its simulation) failed on chain; ``reason`` is decoded."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class BlockhashExpired(ChainError):
    """A Solana transaction's blockhash expired before it landed."""


class ChainTimeout(ChainError):
    """A transaction was not confirmed within the allowed time."""


class AtomicityError(CovenantError):
    """A cross-chain plan or swap cannot proceed safely."""


class PolicyViolation(CovenantError):
    """An action was denied by a policy."""


class CircuitOpen(PolicyViolation):
    """An agent's confidence circuit breaker is open."""


class PlannerError(CovenantError):
    """A planner could not produce a plan (backend unreachable, model missing)."""


class AuditError(CovenantError):
    """The audit log failed verification or could not be written."""
