"""HD derivation: one BIP-39 seed gives every key of every agent and of the operator.

Paths (``i`` is the agent's stable index from ``config.store.agent_indices``):

============================  ==================================  ==================
key                           path                                curve / scheme
============================  ==================================  ==================
agent EVM account             ``m/44'/60'/0'/0/i``                secp256k1, BIP-32
agent Solana account          ``m/44'/501'/i'/0'``                ed25519, SLIP-10
agent DID key (did:key, JWS)  ``m/4411222'/1'/i'``                ed25519, SLIP-10
agent HTLC preimage secret    ``m/4411222'/2'/i'``                HMAC key, SLIP-10
operator DID key              ``m/4411222'/0'/0'``                ed25519, SLIP-10
============================  ==================================  ==================

``4411222`` is ``0x434F56``, ASCII "COV": a private BIP-43 purpose, so the DID and
preimage keys can never coincide with a chain account that a wallet app derives from
the same mnemonic, and a DID signature can never be a valid chain transaction signature.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bip_utils import (
    Bip32Slip10Ed25519,
    Bip32Slip10Secp256k1,
    Bip39Languages,
    Bip39MnemonicGenerator,
    Bip39MnemonicValidator,
    Bip39SeedGenerator,
    Bip39WordsNum,
)
from bip_utils.bip.bip32.base import Bip32Base
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_keys.datatypes import PrivateKey as EthPrivateKey

from config.errors import KeystoreError, WalletError
from wallets._secrets import Secret, _reveal

log = logging.getLogger(__name__)

COVENANT_PURPOSE = 0x434F56
EVM_PATH = "m/44'/60'/0'/0/{index}"
SOLANA_PATH = "m/44'/501'/{index}'/0'"
AGENT_DID_PATH = f"m/{COVENANT_PURPOSE}'/1'/{{index}}'"
PREIMAGE_PATH = f"m/{COVENANT_PURPOSE}'/2'/{{index}}'"
OPERATOR_DID_PATH = f"m/{COVENANT_PURPOSE}'/0'/0'"
MAX_INDEX = 2**31 - 1
_WORDS = {12: Bip39WordsNum.WORDS_NUM_12, 24: Bip39WordsNum.WORDS_NUM_24}


@dataclass(frozen=True, slots=True, repr=False)
class AgentKeys:
    """Every private key of one agent, each held as a :class:`Secret`."""

    index: int
    evm: Secret
    solana: Secret
    did: Secret
    preimage: Secret

    def __repr__(self) -> str:
        return f"AgentKeys(index={self.index}, <redacted>)"


def generate_mnemonic(words: int = 24) -> str:
    """A fresh English BIP-39 mnemonic of 12 or 24 words from the OS CSPRNG."""
    if words not in _WORDS:
        raise WalletError(f"a mnemonic has 12 or 24 words, not {words}; use --words 24")
    return str(Bip39MnemonicGenerator(Bip39Languages.ENGLISH).FromWordsNumber(_WORDS[words]))


def seed_from_mnemonic(mnemonic: str) -> Secret:
    """The 64-byte BIP-39 seed (empty BIP-39 passphrase) of a checked mnemonic."""
    normalized = " ".join(mnemonic.lower().split())
    if not Bip39MnemonicValidator(Bip39Languages.ENGLISH).IsValid(normalized):
        # Never quote the words: a near-miss mnemonic is still most of a secret.
        raise KeystoreError(
            f"the mnemonic ({len(normalized.split())} words) is not a valid English BIP-39 "
            "mnemonic: check every word and their order, then try again"
        )
    return Secret(Bip39SeedGenerator(normalized).Generate())


def derive_agent_keys(seed: Secret, index: int) -> AgentKeys:
    """All keys of the agent with HD index `index`."""
    if not 0 <= index <= MAX_INDEX:
        raise WalletError(f"agent index {index} is outside 0..{MAX_INDEX}")
    evm_key = _derive(Bip32Slip10Secp256k1, seed, EVM_PATH.format(index=index))
    keys = AgentKeys(
        index=index,
        evm=evm_key,
        solana=_derive(Bip32Slip10Ed25519, seed, SOLANA_PATH.format(index=index)),
        did=_derive(Bip32Slip10Ed25519, seed, AGENT_DID_PATH.format(index=index)),
        preimage=_derive(Bip32Slip10Ed25519, seed, PREIMAGE_PATH.format(index=index)),
    )
    log.debug("derived the keys of agent index %d (EVM %s)", index, evm_address(evm_key))
    return keys


def derive_operator_did_key(seed: Secret) -> Secret:
    """The operator's Ed25519 DID key, which signs credentials and revocation lists."""
    return _derive(Bip32Slip10Ed25519, seed, OPERATOR_DID_PATH)


def _derive(kind: type[Bip32Base], seed: Secret, path: str) -> Secret:
    node = kind.FromSeed(_reveal(seed)).DerivePath(path)
    return Secret(node.PrivateKey().Raw().ToBytes())


def evm_address(key: Secret) -> str:
    """The EIP-55 address of a secp256k1 private key."""
    return str(EthPrivateKey(_reveal(key)).public_key.to_checksum_address())


def ed25519_public_key(key: Secret) -> bytes:
    """The 32-byte Ed25519 public key of a 32-byte private key (seed)."""
    private = Ed25519PrivateKey.from_private_bytes(_reveal(key))
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
