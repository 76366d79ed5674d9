"""Known derivation vectors and the separation of key purposes."""

from __future__ import annotations

import pytest
from solders.keypair import Keypair

from config.errors import KeystoreError, WalletError
from wallets._secrets import Secret, _reveal
from wallets.did import did_key
from wallets.hd import (
    derive_agent_keys,
    ed25519_public_key,
    evm_address,
    generate_mnemonic,
    seed_from_mnemonic,
)

from .conftest import TEST_MNEMONIC


def test_hardhat_mnemonic_gives_the_well_known_first_account() -> None:
    keys = derive_agent_keys(seed_from_mnemonic(TEST_MNEMONIC), 0)
    assert evm_address(keys.evm) == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_hardhat_mnemonic_second_account() -> None:
    keys = derive_agent_keys(seed_from_mnemonic(TEST_MNEMONIC), 1)
    assert evm_address(keys.evm) == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_solana_vector_from_trust_wallet_core() -> None:
    # Source: trustwallet/wallet-core, tests/common/Keystore/StoredKeyTests.cpp
    # (gMnemonic "team engine ... saddle"; the TWDerivationSolanaSolana account,
    # derivation path m/44'/501'/0'/0', expectedSol2).
    mnemonic = "team engine square letter hero song dizzy scrub tornado fabric divert saddle"
    keys = derive_agent_keys(seed_from_mnemonic(mnemonic), 0)
    address = str(Keypair.from_seed(_reveal(keys.solana)).pubkey())
    assert address == "CgWJeEWkiYqosy1ba7a3wn9HAQuHyK48xs3LM4SSDc1C"


# Source: w3c-ccg/did-method-key, test-vectors/ed25519-x25519.json (seed -> did:key).
DID_KEY_VECTORS = [
    ("00" * 32, "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"),
    ("00" * 31 + "01", "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG"),
    ("00" * 31 + "02", "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf"),
    ("00" * 31 + "03", "did:key:z6MkvqoYXQfDDJRv8L4wKzxYeuKyVZBfi9Qo6Ro8MiLH3kDQ"),
    ("00" * 31 + "04", "did:key:z6MkwW6aqMnjgrhJXFUko3NnZPGzVpkNzhYK7yEhnsibmLwL"),
]


@pytest.mark.parametrize(("seed", "expected"), DID_KEY_VECTORS)
def test_did_key_spec_vectors(seed: str, expected: str) -> None:
    assert did_key(ed25519_public_key(Secret(bytes.fromhex(seed)))) == expected


def test_every_purpose_has_its_own_key_and_agents_differ() -> None:
    seed = seed_from_mnemonic(TEST_MNEMONIC)
    first, second = derive_agent_keys(seed, 0), derive_agent_keys(seed, 1)
    own = [_reveal(first.evm), _reveal(first.solana), _reveal(first.did), _reveal(first.preimage)]
    assert len(set(own)) == 4
    assert not set(own) & {_reveal(second.solana), _reveal(second.did), _reveal(second.evm)}


def test_index_out_of_range_is_refused() -> None:
    with pytest.raises(WalletError, match="outside"):
        derive_agent_keys(seed_from_mnemonic(TEST_MNEMONIC), 2**31)


def test_invalid_mnemonic_error_does_not_quote_the_words() -> None:
    bad = "test test test test test test test test test test test test"
    with pytest.raises(KeystoreError) as caught:
        seed_from_mnemonic(bad)
    assert "test test" not in str(caught.value)
    assert "12 words" in str(caught.value)


def test_generated_mnemonics_are_valid_and_fresh() -> None:
    first, second = generate_mnemonic(24), generate_mnemonic(24)
    assert len(first.split()) == 24
    assert first != second
    assert len(seed_from_mnemonic(first)) == 64
    with pytest.raises(WalletError):
        generate_mnemonic(13)


def test_agent_keys_repr_is_redacted() -> None:
    keys = derive_agent_keys(seed_from_mnemonic(TEST_MNEMONIC), 0)
    assert _reveal(keys.evm).hex() not in repr(keys)
    assert "redacted" in repr(keys)
