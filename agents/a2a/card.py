"""The Agent Card of one hosted agent, signed by the agent's DID key.

The card is the A2A protocol's own model (``a2a.types.AgentCard``, from `a2a-sdk`).
Covenant's facts about the agent travel in one card extension, :data:`IDENTITY_URI`:
its did:key, its did:pkh chain accounts, its operator's did:key, the
AgentAuthorityCredential the operator issued it (if any) and the URL of the operator's
revocation list. Every value in it is
a string, so the card's canonical form never holds a float.

The signature is an A2A card signature (``AgentCard.signatures``): a JWS whose protected
header names the signing key (``kid``: the agent's did:key verification method, alg
EdDSA) over the card's RFC 8785 canonical form with ``signatures`` left out and empty
values dropped, which is how the A2A spec and the SDK's verifier
(``a2a.utils.signing.create_signature_verifier``) canonicalize it. The signature is made
by the wallet's :class:`wallets.jws.JwsSigner`; no key leaves the wallet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentCardSignature,
    AgentExtension,
    AgentInterface,
    AgentProvider,
    AgentSkill,
)
from google.protobuf.json_format import MessageToDict

from config.canonical import canonical
from config.models import Deployment
from wallets.jws import JwsSigner

IDENTITY_URI = "https://covenant.dev/a2a/identity/v1"
"""The card extension carrying the agent's DID, chain accounts and operator DID."""
CARD_PATH = ".well-known/agent-card.json"
"""Where each agent's card is served, below the agent's own URL."""
PROTOCOL_VERSION = "1.0"
REVOCATIONS_PATH = "operator/revocations.jws"


def agent_url(public_url: str, agent: str) -> str:
    """The A2A endpoint of `agent` (JSON-RPC); its card is at ``<url>/`` + CARD_PATH."""
    return f"{public_url.rstrip('/')}/agents/{agent}"


def revocations_url(public_url: str) -> str:
    """Where the endpoint serves its operator's signed revocation list."""
    return f"{public_url.rstrip('/')}/{REVOCATIONS_PATH}"


def build_card(
    deployment: Deployment,
    agent: str,
    *,
    did: str,
    accounts: Sequence[str],
    operator_did: str,
    public_url: str,
    credential: str | None = None,
) -> AgentCard:
    """The unsigned card of `agent`: who it is, what it will consider, and the
    authority credential its operator issued it (with the operator's revocation list)."""
    config = deployment.agent(agent)
    assets = sorted(
        {a.symbol for a in deployment.assets if a.chain in config.chains}
        & (set(config.assets) if config.assets else {a.symbol for a in deployment.assets})
    )
    chains = ", ".join(config.chains)
    skills = [
        AgentSkill(
            id="swap",
            name="All-or-nothing swaps",
            description=f"Swaps of {', '.join(assets) or 'nothing'} across {chains} through "
            "hash-time-locked escrow, offered as messages signed by the sender's DID key.",
            tags=["swap", "htlc", *assets],
        ),
        AgentSkill(
            id="payment",
            name="Payments",
            description=f"Accepts payments in {', '.join(assets) or 'nothing'} on {chains}.",
            tags=["payment", *assets],
        ),
    ]
    identity = AgentExtension(
        uri=IDENTITY_URI,
        description="The agent's DID, its chain accounts (did:pkh) and its operator's DID.",
        required=False,
        params={
            "did": did,
            "accounts": list(accounts),
            "operator": operator_did,
            **({"credential": credential} if credential else {}),
            "revocations": revocations_url(public_url),
        },
    )
    return AgentCard(
        name=agent,
        description=config.mandate,
        version=PROTOCOL_VERSION,
        provider=AgentProvider(organization=deployment.operator.name, url=public_url),
        supported_interfaces=[
            AgentInterface(
                url=agent_url(public_url, agent),
                protocol_binding="JSONRPC",
                protocol_version=PROTOCOL_VERSION,
            )
        ],
        capabilities=AgentCapabilities(streaming=False, extensions=[identity]),
        default_input_modes=["application/json", "text/plain"],
        default_output_modes=["application/json", "text/plain"],
        skills=skills,
    )


def canonical_card(card: AgentCard) -> bytes:
    """The bytes a card signature covers (see the module)."""
    data = MessageToDict(card)
    data.pop("signatures", None)
    return canonical(_without_empty(data) or {})


def sign_card(card: AgentCard, signer: JwsSigner) -> AgentCard:
    """`card` with a signature by `signer` appended."""
    protected, _payload, signature = signer.sign(canonical_card(card), typ="JOSE").split(".")
    card.signatures.append(AgentCardSignature(protected=protected, signature=signature))
    return card


def identity_of(card: AgentCard) -> dict[str, Any] | None:
    """The identity extension's params, or None if the card has none."""
    for extension in card.capabilities.extensions:
        if extension.uri == IDENTITY_URI:
            return MessageToDict(extension.params)
    return None


def _without_empty(value: Any) -> Any:
    # Empty strings, lists and objects are dropped, as the A2A canonical form does.
    if isinstance(value, dict):
        kept = {
            k: v for k, v in ((k, _without_empty(v)) for k, v in value.items()) if v is not None
        }
        return kept or None
    if isinstance(value, list):
        items = [v for v in (_without_empty(v) for v in value) if v is not None]
        return items or None
    if value == "":
        return None
    return value
