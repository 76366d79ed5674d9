"""Signed agent-to-agent messages: offer, counter-offer, accept, decline, lock notice and
cancel, each a compact JWS by the sender's DID key (EdDSA, ``wallets.jws``).

The claims bind a message to its sender (``iss``, which must be the DID whose key
signed it), its recipient (``aud``), its id (``jti``), when it was made and until when it
holds (``iat``, ``exp``) and the plan it is about (``plan``). An :class:`Inbox` accepts a
message only once, only for its own agent, only while it is fresh, and only signed by
the DID it names; every refusal has a reason code and is counted per sender. Nothing
here trusts the body: an accepted offer reaches the agent as untrusted data, and what
it then plans still passes its policies.
"""

from __future__ import annotations

import heapq
import re
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.a2a.store import MessageStore, StoredMessage
from config.errors import CovenantError
from wallets.jws import JwsError, JwsSigner, verify_jws

Kind = Literal["offer", "counter_offer", "accept", "decline", "lock_notice", "cancel"]
KINDS: tuple[Kind, ...] = ("offer", "counter_offer", "accept", "decline", "lock_notice", "cancel")
MEDIA_TYPE = "application/jose"
"""The media type of an A2A text part carrying a signed message."""
TYP = "covenant-message+jws"
MAX_MESSAGE_BYTES = 16 * 1024
"""A signed message longer than this is refused unread."""
MAX_LIFETIME = 3600
"""Seconds a message may claim to hold; a longer one is refused as too long-lived."""
CLOCK_SKEW = 30
"""Seconds a message's `iat` may lie in the future (the two machines' clocks differ)."""
_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

Reason = Literal[
    "oversize",
    "malformed",
    "bad-signature",
    "wrong-signer",
    "wrong-recipient",
    "expired",
    "not-yet-valid",
    "too-long-lived",
    "replay",
    "unknown-kind",
    "unknown-sender",
]


class MessageRefused(CovenantError):
    """A message was refused; `reason` is one of :data:`Reason`."""

    def __init__(self, message: str, *, reason: Reason, sender: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.sender = sender


@dataclass(frozen=True)
class SignedMessage:
    """A message that verified: who sent it to whom, which plan, and its body."""

    id: str
    kind: Kind
    sender: str
    recipient: str
    plan: str
    issued_at: int
    expires_at: int
    body: dict[str, Any]


def sign_message(
    signer: JwsSigner,
    *,
    kind: Kind,
    recipient: str,
    plan: str,
    body: dict[str, Any],
    now: int,
    ttl: int = 300,
    message_id: str | None = None,
) -> str:
    """A compact JWS of one message from `signer`'s DID to `recipient` (a DID)."""
    claims = {
        "typ": TYP,
        "iss": signer.did,
        "aud": recipient,
        "jti": message_id or secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + ttl,
        "kind": kind,
        "plan": plan,
        "body": body,
    }
    return signer.sign_json(claims, typ=TYP)


@dataclass
class Inbox:
    """The messages one agent (`did`) accepted, and what it refused, per sender. With a
    `store`, each accepted message is stored before it is answered, so a replay is
    refused after a restart too, and each refusal is recorded with its reason."""

    did: str
    agent: str = ""
    store: MessageStore | None = None
    senders: frozenset[str] | None = None
    """The DIDs this agent takes messages from (its remote counterparties); None: any."""
    seen: dict[str, int] = field(default_factory=dict)
    """Accepted message ids and their expiry: a replay within its lifetime is refused,
    and an expired one is refused as expired, so ids are forgotten once they expire."""
    refused: Counter[str] = field(default_factory=Counter)
    """Refusals per sender DID (or "unknown" when the sender cannot be told)."""
    _expiries: list[tuple[int, str]] = field(default_factory=list, repr=False)

    def accept(self, token: str, *, now: int) -> SignedMessage:
        """The verified message `token`, or MessageRefused naming why not."""
        try:
            message = self._verify(token, now)
            if self.store is not None and not self.store.record(self._stored(message)):
                raise MessageRefused(
                    f"message {message.id} from {message.sender} was already received",
                    reason="replay",
                    sender=message.sender,
                )
        except MessageRefused as refusal:
            sender = refusal.sender or "unknown"
            self.refused[sender] += 1
            if self.store is not None:
                self.store.refused(self.agent, sender, refusal.reason)
            raise
        self.seen[message.id] = message.expires_at
        heapq.heappush(self._expiries, (message.expires_at, message.id))
        while self._expiries and self._expiries[0][0] < now:  # forget what expired
            _, old = heapq.heappop(self._expiries)
            self.seen.pop(old, None)
        return message

    def _stored(self, message: SignedMessage) -> StoredMessage:
        return StoredMessage(
            agent=self.agent,
            message_id=message.id,
            kind=message.kind,
            sender=message.sender,
            plan=message.plan,
            issued_at=message.issued_at,
            expires_at=message.expires_at,
            body=message.body,
        )

    def _verify(self, token: str, now: int) -> SignedMessage:
        if len(token) > MAX_MESSAGE_BYTES:
            raise MessageRefused(
                f"message of {len(token)} bytes is over {MAX_MESSAGE_BYTES}", reason="oversize"
            )
        try:
            verified = verify_jws(token)
            claims = verified.claims()
        except JwsError as exc:
            reason: Reason = "bad-signature" if exc.reason == "tampered" else "malformed"
            raise MessageRefused(f"message refused: {exc}", reason=reason) from None
        except ValueError as exc:
            raise MessageRefused(f"message body is not JSON: {exc}", reason="malformed") from None
        if not isinstance(claims, dict) or claims.get("typ") != TYP:
            raise MessageRefused("not a Covenant message (typ)", reason="malformed")
        sender = verified.did
        if claims.get("iss") != sender:
            raise MessageRefused(
                f"message names sender {claims.get('iss')!r} but is signed by {sender}",
                reason="wrong-signer",
                sender=sender,
            )
        return self._check_claims(claims, sender, now)

    def _check_claims(self, claims: dict[str, Any], sender: str, now: int) -> SignedMessage:
        def refuse(text: str, reason: Reason) -> MessageRefused:
            return MessageRefused(
                f"message from {sender} refused: {text}", reason=reason, sender=sender
            )

        message_id, kind = claims.get("jti"), claims.get("kind")
        issued, expires, plan = claims.get("iat"), claims.get("exp"), claims.get("plan")
        body = claims.get("body")
        if not (isinstance(message_id, str) and _ID.match(message_id)):
            raise refuse("its id (jti) is missing or malformed", "malformed")
        if not (isinstance(issued, int) and isinstance(expires, int) and isinstance(plan, str)):
            raise refuse("iat, exp (integers) and plan (a string) are required", "malformed")
        if not isinstance(body, dict):
            raise refuse("its body is not an object", "malformed")
        if kind not in KINDS:
            raise refuse(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}", "unknown-kind")
        if claims.get("aud") != self.did:
            raise refuse(
                f"it is addressed to {claims.get('aud')!r}, not {self.did}", "wrong-recipient"
            )
        if expires <= now:
            raise refuse(f"it expired {now - expires} s ago", "expired")
        if issued > now + CLOCK_SKEW:
            raise refuse(f"it is issued {issued - now} s in the future", "not-yet-valid")
        if expires - issued > MAX_LIFETIME:
            raise refuse(
                f"it claims to hold {expires - issued} s, over {MAX_LIFETIME}", "too-long-lived"
            )
        if message_id in self.seen:
            raise refuse(f"message {message_id} was already received", "replay")
        if self.senders is not None and sender not in self.senders:
            raise refuse(
                "its sender is no counterparty of this deployment (add its did and card to "
                "the address book to deal with it)",
                "unknown-sender",
            )
        return SignedMessage(
            id=message_id,
            kind=kind,
            sender=sender,
            recipient=self.did,
            plan=plan,
            issued_at=issued,
            expires_at=expires,
            body=body,
        )
