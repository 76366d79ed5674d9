"""Wallets and identity: the encrypted operator keystore, per-agent HD keys, signers
that sign only with an :class:`Authorization`, DIDs and agent-authority credentials.

No key material leaves this package: objects expose addresses, DIDs and signatures.
"""

from wallets.authorization import (
    Authorization,
    AuthorizationMint,
    AuthorizationVerifier,
    evm_message_digest,
    evm_tx_digest,
    solana_message_bytes,
    solana_message_digest,
)
from wallets.base import Signer
from wallets.credentials import (
    AgentAuthority,
    RevocationList,
    VerifiedCredential,
    issue_credential,
    verify_credential,
)
from wallets.did import caip2, did_key, did_pkh, resolve
from wallets.evm import EvmSigner, SignedEvmMessage, SignedEvmTransaction
from wallets.jws import JwsError, JwsSigner, VerifiedJws, verify_jws
from wallets.keystore import DEFAULT_SCRYPT_N, Keystore
from wallets.operator import (
    AgentWallet,
    OperatorWallets,
    authority_from_config,
    create_keystore,
    ensure_demo_keystore,
    keystore_for,
    open_wallets,
)
from wallets.passphrase import ENV_VAR, resolve_passphrase
from wallets.solana import SolanaSigner

__all__ = [
    "DEFAULT_SCRYPT_N",
    "ENV_VAR",
    "AgentAuthority",
    "AgentWallet",
    "Authorization",
    "AuthorizationMint",
    "AuthorizationVerifier",
    "EvmSigner",
    "JwsError",
    "JwsSigner",
    "Keystore",
    "OperatorWallets",
    "RevocationList",
    "SignedEvmMessage",
    "SignedEvmTransaction",
    "Signer",
    "SolanaSigner",
    "VerifiedCredential",
    "VerifiedJws",
    "authority_from_config",
    "caip2",
    "create_keystore",
    "did_key",
    "did_pkh",
    "ensure_demo_keystore",
    "evm_message_digest",
    "evm_tx_digest",
    "issue_credential",
    "keystore_for",
    "open_wallets",
    "resolve",
    "resolve_passphrase",
    "solana_message_bytes",
    "solana_message_digest",
    "verify_credential",
    "verify_jws",
]
