"""Another operator's agent, as its Agent Card proves it: fetched, validated against the
A2A model (`a2a-sdk`'s own parser) and its signature verified by the DID it names.

What a card may claim is checked, not trusted: the card must carry Covenant's identity
extension; its signature must verify under that extension's did:key, and a signature by
any other key does not count; every account must be a did:pkh of a registered chain
family with a valid address. Addresses to pay or lock to are taken from here (the
verified card) and never from a message body or a model.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass

import httpx
from a2a.client.card_resolver import parse_agent_card
from a2a.types import AgentCard
from a2a.utils.signing import SignatureVerificationError, create_signature_verifier
from google.protobuf.json_format import ParseError
from jwt.api_jwk import PyJWK
from jwt.exceptions import InvalidKeyError

from agents.a2a.card import CARD_PATH, identity_of
from config.chain_model import ChainModel
from config.errors import ChainError, CovenantError, WalletError
from config.models import Counterparty, Deployment
from wallets.did import did_key_public_key, did_pkh, did_pkh_document

log = logging.getLogger(__name__)

RETRY_AFTER = 2.0
"""Seconds between two fetches of a card that did not verify."""
MAX_CARD_BYTES = 256 * 1024
"""A card larger than this is refused unread (a card is a few kilobytes)."""


class PeerError(CovenantError):
    """A card could not be fetched, or does not prove what it claims."""


@dataclass(frozen=True)
class Peer:
    """A verified card: the agent's DID, its chain accounts and its operator's DID."""

    url: str
    name: str
    did: str
    accounts: tuple[str, ...]
    operator: str
    skills: tuple[str, ...]
    card: AgentCard
    credential: str | None = None
    """The AgentAuthorityCredential (VC-JWT) the card presents; see agents.a2a.authority."""
    revocations: str | None = None
    """The URL of the operator's revocation list, as the card names it."""


def card_url(url: str) -> str:
    """The card's URL for an agent URL (or the card URL itself)."""
    return url if url.endswith(".json") else f"{url.rstrip('/')}/{CARD_PATH}"


async def fetch_peer(url: str, *, client: httpx.AsyncClient | None = None) -> Peer:
    """Fetch the card at `url` (an agent URL or its card URL) and verify it."""
    where = card_url(url)
    own = client is None
    http = client or httpx.AsyncClient(timeout=10)
    try:
        async with http.stream("GET", where, follow_redirects=False) as reply:
            if reply.status_code != 200:
                raise PeerError(f"{where} answered {reply.status_code}; is this an agent URL?")
            body = bytearray()
            async for chunk in reply.aiter_bytes():
                body += chunk
                if len(body) > MAX_CARD_BYTES:
                    raise PeerError(f"{where}: the card is over {MAX_CARD_BYTES} bytes; refused")
    except httpx.HTTPError as exc:
        raise PeerError(f"cannot fetch the agent card at {where}: {exc}") from exc
    finally:
        if own:
            await http.aclose()
    return verify_card_json(bytes(body), where)


def verify_card_json(body: bytes, where: str) -> Peer:
    """Parse and verify the card JSON `body` fetched from `where`."""
    try:
        card = parse_agent_card(json.loads(body))
    except (ValueError, ParseError, TypeError) as exc:
        raise PeerError(f"{where} is not a valid A2A Agent Card: {exc}") from exc
    return verify_card(card, where)


def verify_card(card: AgentCard, where: str) -> Peer:
    """The peer `card` proves itself to be (see the module); PeerError naming the flaw."""
    identity = identity_of(card)
    if identity is None:
        raise PeerError(f"the card at {where} has no Covenant identity extension (no DID)")
    did, operator = identity.get("did"), identity.get("operator")
    accounts = identity.get("accounts") or []
    if not isinstance(did, str) or not isinstance(operator, str) or not isinstance(accounts, list):
        raise PeerError(f"the card at {where} has a malformed identity extension")
    try:
        did_key_public_key(did)
        did_key_public_key(operator)
        for account in accounts:
            did_pkh_document(str(account))
    except WalletError as exc:
        raise PeerError(f"the card at {where} names an invalid DID: {exc}") from exc

    def key_of(kid: str | None, _jku: str | None) -> PyJWK:
        # Only the card's own DID may sign it: a valid signature by another key is
        # a card someone else vouches for, not the agent's own.
        # InvalidKeyError is the SDK's "this signature does not count, try the next".
        if not kid or kid.split("#", 1)[0] != did:
            raise InvalidKeyError(f"signed by {kid!r}, not by the card's DID")
        x = base64.urlsafe_b64encode(did_key_public_key(did)).rstrip(b"=").decode()
        return PyJWK.from_dict({"kty": "OKP", "crv": "Ed25519", "x": x}, algorithm="EdDSA")

    try:
        create_signature_verifier(key_of, ["EdDSA"])(card)
    except SignatureVerificationError as exc:
        raise PeerError(
            f"the card at {where} is not signed by its DID {did}: {exc}; do not deal with it"
        ) from exc
    return Peer(
        url=where,
        name=card.name,
        did=did,
        accounts=tuple(str(a) for a in accounts),
        operator=operator,
        skills=tuple(skill.id for skill in card.skills),
        card=card,
        credential=_text(identity.get("credential")),
        revocations=_text(identity.get("revocations")),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class PeerBook:
    """The deployment's counterparties of other operators, each verified from its card:
    fetched once at start (:meth:`load`) and checked to be signed by the DID the address
    book names. An entry whose card did not verify gets nothing paid or locked to it."""

    def __init__(self, deployment: Deployment) -> None:
        self._entries = {p.name: p for p in deployment.address_book if p.remote}
        self._peers: dict[str, Peer] = {}
        self._tried: dict[str, float] = {}
        self.problems: dict[str, str] = {}

    async def load(self, client: httpx.AsyncClient | None = None) -> None:
        """Fetch and verify every entry's card; a failure is kept as the entry's problem."""
        for name, entry in self._entries.items():
            self._tried[name] = time.monotonic()
            await self._load_one(name, entry, client)

    async def _load_one(
        self, name: str, entry: Counterparty, client: httpx.AsyncClient | None
    ) -> None:
        assert entry.card is not None  # remote entries have both (config validation)
        try:
            peer = await fetch_peer(entry.card, client=client)
            if peer.did != entry.did:
                raise PeerError(
                    f"the card at {entry.card} is {peer.did}'s, but the address book "
                    f"says {name} is {entry.did}; fix the entry or the URL"
                )
        except PeerError as exc:
            self.problems[name] = str(exc)
            log.warning("counterparty %s: %s", name, exc)
            return
        self._peers[name] = peer
        self.problems.pop(name, None)

    async def ensure(self, name: str) -> Peer:
        """The verified peer of entry `name`, fetching its card again if it did not
        verify yet (the other daemon may have started after this one), at most once per
        :data:`RETRY_AFTER` seconds; ChainError saying why there is none."""
        if name not in self._peers and name in self._entries:
            last = self._tried.get(name)
            if last is None or time.monotonic() - last >= RETRY_AFTER:
                self._tried[name] = time.monotonic()
                await self._load_one(name, self._entries[name], None)
        return self.peer(name)

    def peer(self, name: str) -> Peer:
        """The verified peer of entry `name`; ChainError saying why there is none."""
        peer = self._peers.get(name)
        if peer is not None:
            return peer
        entry = self._entries.get(name)
        where = entry.card if entry is not None else "?"
        problem = self.problems.get(name, "its card was not fetched yet")
        raise ChainError(
            f"counterparty {name} is not verified ({problem}); nothing is paid or locked "
            f"to it until its card verifies (`peers show {where}` shows why it does not)"
        )

    def address(self, name: str, chain: ChainModel) -> str:
        """`name`'s address on `chain`, from the did:pkh accounts of its verified card."""
        peer = self.peer(name)
        prefix = did_pkh(chain, "")
        for account in peer.accounts:
            if account.startswith(prefix):
                return account[len(prefix) :]
        raise ChainError(
            f"counterparty {name}'s verified card lists no account on {chain.name} "
            f"({prefix.removesuffix(':')}); its accounts: {', '.join(peer.accounts)}"
        )
