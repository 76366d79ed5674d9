"""Swaps with another operator's agent, as the desk (``agents/cross_chain.py``) runs them
over A2A messages; everything that settles them happens on chain, as for two agents of
one daemon (``chains/atomic/swap.py``).

1. Our maker journals its plan and sends its signed offer inside a signed ``offer``
   message to the taker's endpoint, the one its verified card names.
2. The other daemon stores the message (``agents/a2a/store.py``) and its agent sees the
   offer as an untrusted task; if what it plans takes the offer (and its policies allow
   the lock), it journals its side and sends a signed ``accept`` message back.
3. Our maker reads that acceptance from its store on its next sweep and locks; the rest
   is the HTLC protocol, each side checking the other's lock on chain.

What is trusted, and from where: a counterparty's addresses come only from its verified
card (:class:`~agents.a2a.peers.PeerBook`), never from a message; its authority only from
the credential its card presents, issued by an operator this deployment trusts, valid,
not revoked, and covering the leg it locks (:func:`~agents.a2a.authority.verify_authority`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from agents.a2a.authority import RevocationCache, covers, verify_authority
from agents.a2a.messages import Kind, sign_message
from agents.a2a.outbox import Outbox
from agents.a2a.peers import Peer, PeerBook
from agents.a2a.store import MessageStore
from agents.resolver import Resolver
from chains.atomic import Counterparty, PlanRecord, SwapSide
from chains.atomic.base import PlanRefused, normalized
from chains.atomic.swap import SwapOffer, read_offer
from chains.families import family_of_chain
from config.errors import CredentialError
from config.models import Counterparty as BookEntry
from config.models import Deployment
from wallets.operator import OperatorWallets

log = logging.getLogger(__name__)

RESEND_AFTER = 5.0
"""Seconds before an unanswered offer, or an acceptance whose maker has not locked, is
sent again."""
SOURCE = "a2a"
"""The source name of offers from other operators' agents (their tasks' `source`)."""


@dataclass(frozen=True)
class RemoteOffer:
    """An offer another operator's agent sent one of ours, its signature checked."""

    agent: str
    """Our agent it is addressed to."""
    peer: str
    """The maker's address-book name."""
    token: str
    offer: SwapOffer

    @property
    def plan_id(self) -> str:
        return self.offer.plan_id


class Deals:
    """Offers, acceptances and authority checks with other operators' agents."""

    def __init__(
        self,
        deployment: Deployment,
        wallets: OperatorWallets,
        peers: PeerBook,
        messages: MessageStore,
        *,
        outbox: Outbox | None = None,
        revocations: RevocationCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert deployment.a2a is not None  # only built for a deployment with `a2a:`
        self.config = deployment.a2a
        self.deployment = deployment
        self.wallets = wallets
        self.peers = peers
        self.resolver = Resolver(deployment, wallets, peers)
        self.messages = messages
        self.outbox = outbox or Outbox()
        self.revocations = revocations or RevocationCache(float(self.config.revocation_max_age))
        self._clock = clock
        self._entries = {entry.name: entry for entry in deployment.address_book if entry.remote}
        self._sent: dict[str, float] = {}

    # -- who the other side is -------------------------------------------------------------

    def entry(self, name: str) -> BookEntry | None:
        """The remote address-book entry `name`, or None if it is not one."""
        return self._entries.get(name)

    def name_of(self, did: str) -> str | None:
        """The address-book name of the remote agent `did`."""
        return next((e.name for e in self._entries.values() if e.did == did), None)

    async def counterparty(self, name: str, chains: Sequence[str]) -> Counterparty:
        """`name` as a swap's counterparty: its DID and, for each of `chains`, its
        address from its verified card."""
        peer = await self.peers.ensure(name)
        addresses = {}
        for chain_name in chains:
            chain = self.deployment.chain(chain_name)
            addresses[family_of_chain(chain).name] = self.peers.address(name, chain)
        return Counterparty(did=peer.did, addresses=addresses)

    async def check_authority(self, name: str, chain: str, token: str | None, amount: int) -> None:
        """CredentialError unless `name`'s card presents a credential of a trusted
        operator, valid and unrevoked now, that covers locking `amount` base units of
        `token` (None: native) on `chain`."""
        entry = self._entries[name]
        peer = await self.peers.ensure(name)
        trusted = [*self.config.trusted_operators, *entry.trusted_operators]
        credential = await verify_authority(peer, trusted=trusted, revocations=self.revocations)
        asset = self.resolver.asset_of_token(chain, token)
        why = covers(credential, chain, asset.symbol, Decimal(amount).scaleb(-asset.decimals))
        if why is not None:
            raise CredentialError(f"{name} ({peer.did}): {why}", reason="not-covered")

    async def verify_authority(self, did: str, plan: PlanRecord) -> bool:
        """The taker's check of a remote maker before it locks (the coordinator's
        ``verify_authority``): CredentialError naming what failed."""
        name = self.name_of(did)
        if name is None:
            raise CredentialError(f"{did} is no counterparty of this deployment", reason="unknown")
        maker_leg = plan.leg(0)
        await self.check_authority(name, maker_leg.chain, maker_leg.asset, maker_leg.amount)
        return True

    # -- offers we make and the acceptances we get back ------------------------------------

    async def send_offer(self, agent: str, name: str, plan_id: str, token: str) -> None:
        """Send our agent's signed offer to `name`; DeliveryError if it was not taken."""
        await self.send(agent, name, "offer", plan_id, {"offer": token})

    def due(self, plan_id: str) -> bool:
        """Whether plan `plan_id`'s last message is old enough to send again (at most
        once per :data:`RESEND_AFTER` seconds; at once after a restart)."""
        now = self._clock()
        if now - self._sent.get(plan_id, -RESEND_AFTER) < RESEND_AFTER:
            return False
        self._sent[plan_id] = now
        return True

    def acceptance(self, agent: str, plan: PlanRecord) -> str | None:
        """The signed acceptance of our offer `plan` its taker sent, if one came."""
        for message in self.messages.messages(agent, kind="accept", plan=plan.plan_id):
            token = message.body.get("acceptance")
            if message.sender == plan.counterparty and isinstance(token, str):
                return token
        return None

    # -- offers made to us -----------------------------------------------------------------

    def offers_to(self, agent: str, taken: Callable[[str], bool]) -> list[RemoteOffer]:
        """Live offers to `agent` from its remote counterparties, signature checked;
        `taken(plan_id)` says a plan of that id is journaled here already (an offer
        taken before, or a maker reusing one of our ids), so it is not offered again."""
        now = int(self._clock())
        offers = []
        for message in self.messages.messages(agent, kind="offer", live_at=now):
            name = self.name_of(message.sender)
            token = message.body.get("offer")
            if name is None or not isinstance(token, str) or taken(message.plan):
                continue
            try:
                offer = read_offer(token, maker_did=message.sender)
            except PlanRefused as exc:
                log.info("a2a: offer %s from %s is not valid: %s", message.plan, name, exc)
                continue
            if offer.plan_id == message.plan:
                offers.append(RemoteOffer(agent, name, token, offer))
        return offers

    def matching(
        self,
        agent: str,
        name: str,
        give: SwapSide,
        take: SwapSide,
        *,
        taken: Callable[[str], bool],
        plan_id: str | None = None,
    ) -> RemoteOffer | None:
        """An offer of `name` to `agent` that is the mirror image of our swap (the one
        of id `plan_id`, when the agent named one)."""
        for remote in self.offers_to(agent, taken):
            maker, taker = remote.offer.maker_leg, remote.offer.taker_leg
            mirrored = _same(maker, take) and _same(taker, give)
            if remote.peer == name and mirrored and plan_id in (None, remote.plan_id):
                return remote
        return None

    async def check_offer(self, remote: RemoteOffer) -> None:
        """PlanRefused unless the offer pays to and from where the maker's verified card
        says (the body's addresses are the maker's claim, not ours to trust)."""
        offer = remote.offer
        await self.peers.ensure(remote.peer)
        for leg, field in ((offer.maker_leg, "sender"), (offer.taker_leg, "recipient")):
            chain = self.deployment.chain(leg.chain)
            verified = self.peers.address(remote.peer, chain)
            claimed = getattr(leg, field)
            if normalized(claimed) != normalized(verified):
                raise PlanRefused(
                    f"offer {offer.plan_id} from {remote.peer} names {claimed} on {leg.chain} "
                    f"as its address, but its verified card says {verified}"
                )

    async def send_acceptance(self, agent: str, remote: RemoteOffer, token: str) -> None:
        """Tell the maker we took its offer; DeliveryError if it did not hear it."""
        await self.send(agent, remote.peer, "accept", remote.plan_id, {"acceptance": token})

    async def notify(self, agent: str, name: str, plan: PlanRecord) -> None:
        """Tell `name` our side of `plan` moved (a lock or claim of ours landed, or the
        plan ended), so its daemon looks at the chains now instead of at its next
        watcher sweep. Only a hint: the other side believes the chain, not the notice."""
        body = {"state": plan.state, "legs": list(plan.leg_states)}
        await self._deliver(agent, name, "lock_notice", plan.plan_id, body)

    async def send(
        self, agent: str, name: str, kind: Kind, plan_id: str, body: dict[str, Any]
    ) -> None:
        """Send one signed message of our `agent` about `plan_id` to `name` (an offer or
        acceptance: sent again by the desk while it is unanswered, see :meth:`due`)."""
        self._sent[plan_id] = self._clock()
        await self._deliver(agent, name, kind, plan_id, body)

    async def _deliver(
        self, agent: str, name: str, kind: Kind, plan_id: str, body: dict[str, Any]
    ) -> None:
        peer: Peer = await self.peers.ensure(name)
        message = sign_message(
            self.wallets.agent(agent).jws_signer(),
            kind=kind,
            recipient=peer.did,
            plan=plan_id,
            body=body,
            now=int(self._clock()),
            ttl=int(self.config.message_lifetime),
        )
        await self.outbox.deliver(peer, message)
        log.info("a2a: %s sent %s of plan %s to %s", agent, kind, plan_id, name)

    # -- helpers ---------------------------------------------------------------------------

    def credential(self, agent: str) -> str | None:
        """Our agent's own authority credential (a JWT), presented with its offers."""
        path = next(a.credential for a in self.deployment.agents if a.name == agent)
        return Path(path).read_text(encoding="utf-8").strip() if path else None


def _same(leg: object, side: SwapSide) -> bool:
    chain, amount, asset = (getattr(leg, k) for k in ("chain", "amount", "asset"))
    return (chain, amount, normalized(asset)) == (side.chain, side.amount, normalized(side.asset))
