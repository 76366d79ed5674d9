"""DIDs: ``did:key`` (Ed25519) and ``did:pkh`` (CAIP-10 chain accounts), resolved offline.

``did:key`` follows the did:key spec: ``did:key:z`` + base58btc(multicodec ``0xed01`` +
32-byte public key). ``did:pkh`` ids are ``did:pkh:<CAIP-10 account>``:
``eip155:<chain id>:<address>`` and ``solana:<genesis>:<pubkey>``, where ``<genesis>``
is the first 32 characters of the cluster's base58 genesis hash (CAIP-2 references are at
most 32 characters; this is the Solana CAIP-2 namespace rule). A ``localnet`` cluster has
no fixed genesis; pass the local chain's genesis hash, or the documented placeholder
reference ``localnet`` is used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from bip_utils import Base58Decoder, Base58Encoder

from chains.families import FAMILIES, family_of_chain, family_of_namespace
from config.chain_model import ChainModel
from config.errors import WalletError

ED25519_MULTICODEC = b"\xed\x01"

DID_CONTEXT = "https://www.w3.org/ns/did/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
_ACCOUNT_CONTEXT = {
    "blockchainAccountId": "https://w3id.org/security#blockchainAccountId",
    "EcdsaSecp256k1RecoveryMethod2020": "https://identity.foundation/"
    "EcdsaSecp256k1RecoverySignature2020#EcdsaSecp256k1RecoveryMethod2020",
    "Ed25519VerificationKey2018": "https://w3id.org/security#Ed25519VerificationKey2018",
    "publicKeyBase58": "https://w3id.org/security#publicKeyBase58",
}
_CAIP10 = re.compile(r"^([-a-z0-9]{3,8}):([-_a-zA-Z0-9]{1,32}):([-.%a-zA-Z0-9]{1,128})$")
"""A CAIP-10 account id; the namespace must also be a registered family's."""


def did_key(public_key: bytes) -> str:
    """The did:key of a 32-byte Ed25519 public key."""
    if len(public_key) != 32:
        raise WalletError(f"an Ed25519 public key has 32 bytes, got {len(public_key)}")
    return "did:key:z" + str(Base58Encoder.Encode(ED25519_MULTICODEC + public_key))


def did_key_public_key(did: str) -> bytes:
    """The Ed25519 public key inside a did:key; WalletError if it is not one."""
    if not did.startswith("did:key:z"):
        raise WalletError(f"{did!r} is not an Ed25519 did:key (expected did:key:z6Mk...)")
    try:
        raw = Base58Decoder.Decode(did.removeprefix("did:key:z"))
    except ValueError as exc:
        raise WalletError(f"{did!r} is not valid base58btc") from exc
    if len(raw) != 34 or raw[:2] != ED25519_MULTICODEC:
        raise WalletError(f"{did!r} is not an Ed25519 did:key (multicodec 0xed01, 32 bytes)")
    return bytes(raw[2:])


def verification_method_id(did: str) -> str:
    """The id of a did:key's one verification method: ``did#<multibase key>``."""
    return f"{did}#{did.removeprefix('did:key:')}"


def caip2(chain: ChainModel, *, solana_genesis: str | None = None) -> str:
    """The CAIP-2 chain id of `chain`, as its family writes it (`solana_genesis`: the
    genesis hash of a local chain whose genesis is known only at run time)."""
    return family_of_chain(chain).caip2(chain, genesis=solana_genesis)


def did_pkh(chain: ChainModel, address: str, *, solana_genesis: str | None = None) -> str:
    """The did:pkh of `address` on `chain`."""
    return f"did:pkh:{caip2(chain, solana_genesis=solana_genesis)}:{address}"


def did_key_document(did: str) -> dict[str, Any]:
    """The DID document of a did:key, built offline from the key."""
    did_key_public_key(did)
    method = verification_method_id(did)
    return {
        "@context": [DID_CONTEXT, MULTIKEY_CONTEXT],
        "id": did,
        "verificationMethod": [
            {
                "id": method,
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": did.removeprefix("did:key:"),
            }
        ],
        "authentication": [method],
        "assertionMethod": [method],
        "capabilityInvocation": [method],
        "capabilityDelegation": [method],
    }


def did_pkh_document(did: str) -> dict[str, Any]:
    """The DID document of a did:pkh of a registered family's account, built offline."""
    match = _CAIP10.match(did.removeprefix("did:pkh:")) if did.startswith("did:pkh:") else None
    family = family_of_namespace(match.group(1)) if match is not None else None
    if family is None:
        namespaces = " or ".join(f.did_namespace for f in FAMILIES)
        raise WalletError(f"{did!r} is not an {namespaces} did:pkh")
    account_id = did.removeprefix("did:pkh:")
    method = {"id": f"{did}#blockchainAccountId", "controller": did}
    method["blockchainAccountId"] = account_id
    method.update(family.verification_method(account_id))
    return {
        "@context": [DID_CONTEXT, _ACCOUNT_CONTEXT],
        "id": did,
        "verificationMethod": [method],
        "authentication": [method["id"]],
        "assertionMethod": [method["id"]],
    }


def resolve(did: str) -> dict[str, Any]:
    """Resolve a did:key or did:pkh offline to its DID document."""
    if did.startswith("did:key:"):
        return did_key_document(did)
    if did.startswith("did:pkh:"):
        return did_pkh_document(did)
    raise WalletError(f"cannot resolve {did!r} offline: only did:key and did:pkh are supported")


def agent_document(
    did: str, accounts: Sequence[tuple[str, str]], *, names: Mapping[str, str]
) -> dict[str, Any]:
    """The agent's did:key document plus its chain accounts.

    `accounts` are ``(did:pkh, public key base58 or "")`` pairs; `names` maps each did:pkh
    to the deployment's chain name, used as the verification method fragment.
    """
    document = did_key_document(did)
    document["@context"] = [DID_CONTEXT, MULTIKEY_CONTEXT, _ACCOUNT_CONTEXT]
    document["alsoKnownAs"] = [pkh for pkh, _ in accounts]
    for pkh, public_key in accounts:
        method = did_pkh_document(pkh)["verificationMethod"][0]
        method.update({"id": f"{did}#{names[pkh]}", "controller": did})
        if public_key:
            method["publicKeyBase58"] = public_key
        document["verificationMethod"].append(method)
    return document
