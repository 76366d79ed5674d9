"""DIDs: did:key resolution, CAIP-10 did:pkh ids, and the agent DID document."""

from __future__ import annotations

import pytest

from chains.families.evm.config import EvmChain
from chains.families.solana.config import SolanaChain
from chains.families.solana.family import LOCALNET_REFERENCE
from config.errors import WalletError
from config.models import Deployment
from wallets.did import (
    caip2,
    did_key_public_key,
    did_pkh,
    resolve,
)
from wallets.operator import OperatorWallets

SPEC_DID = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"


def _solana(cluster: str) -> SolanaChain:
    return SolanaChain(name="sol", family="solana", cluster=cluster, rpc="local")


def test_did_key_resolves_offline_to_its_key() -> None:
    document = resolve(SPEC_DID)
    method = document["verificationMethod"][0]
    assert document["id"] == SPEC_DID
    assert method["id"] == f"{SPEC_DID}#z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
    assert method["publicKeyMultibase"] == SPEC_DID.removeprefix("did:key:")
    assert document["assertionMethod"] == [method["id"]]
    # publicKeyBase58 from the spec's test vector
    from bip_utils import Base58Encoder

    assert (
        Base58Encoder.Encode(did_key_public_key(SPEC_DID))
        == "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS"
    )


@pytest.mark.parametrize(
    "bad",
    ["did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme", "did:key:z111", "did:web:x"],
)
def test_non_ed25519_or_broken_did_keys_are_refused(bad: str) -> None:
    with pytest.raises(WalletError):
        did_key_public_key(bad)


@pytest.mark.parametrize(
    ("cluster", "reference"),
    [
        ("mainnet-beta", "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"),
        ("devnet", "EtWTRABZaYq6iMfeYKouRu166VU2xqa1"),
        ("testnet", "4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z"),
        ("localnet", LOCALNET_REFERENCE),
    ],
)
def test_solana_caip2_uses_the_first_32_characters_of_genesis(cluster: str, reference: str) -> None:
    assert caip2(_solana(cluster)) == f"solana:{reference}"


def test_localnet_genesis_can_be_given() -> None:
    genesis = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"
    assert caip2(_solana("localnet"), solana_genesis=genesis) == f"solana:{genesis[:32]}"


def test_did_pkh_for_evm_and_its_document() -> None:
    chain = EvmChain(name="arb", family="evm", chain_id=42161, rpc="local")
    address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    did = did_pkh(chain, address)
    assert did == f"did:pkh:eip155:42161:{address}"
    method = resolve(did)["verificationMethod"][0]
    assert method["blockchainAccountId"] == f"eip155:42161:{address}"
    assert method["type"] == "EcdsaSecp256k1RecoveryMethod2020"


def test_agent_document_binds_every_chain_account(
    wallets: OperatorWallets, deployment: Deployment
) -> None:
    agent = wallets.agent("maker")
    document = agent.did_document(deployment, solana_genesis={"solana-local": "G" * 44})
    assert document["id"] == agent.did
    accounts = {m.get("blockchainAccountId") for m in document["verificationMethod"]}
    assert f"eip155:31337:{agent.evm_address}" in accounts
    assert f"solana:{'G' * 32}:{agent.solana_address}" in accounts
    assert f"did:pkh:eip155:31337:{agent.evm_address}" in document["alsoKnownAs"]
    ids = [m["id"] for m in document["verificationMethod"]]
    assert f"{agent.did}#arbitrum-local" in ids
    assert f"{agent.did}#solana-local" in ids
    # Only the DID key authenticates; chain accounts are bound, not DID-controlling keys.
    assert document["authentication"] == [ids[0]]


def test_unknown_did_methods_are_not_resolved() -> None:
    with pytest.raises(WalletError, match="only did:key and did:pkh"):
        resolve("did:web:example.org")
