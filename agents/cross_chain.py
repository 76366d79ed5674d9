"""All-or-nothing actions of a daemon's agents: swaps between agents and payments on
several chains, run by each agent's HTLC coordinator.

The policies judge every escrow lock exactly like a transfer: the desk describes the
lock the coordinator built as a ``swap_leg`` :class:`~policies.actions.ProposedAction`
(address-book names, amounts, the transaction digest); the one gate (``agents/gate.py``)
evaluates it, and the coordinators' parties sign only through that gate. Claims and
refunds of a plan whose lock was authorized are authorized by the engine without asking
the policies again (:meth:`policies.engine.PolicyEngine.authorize_settlement`): they
only move escrowed funds where the lock fixed them.

Swaps between two agents of this deployment meet in the store: the first agent whose
plan proposes the swap journals a DID-signed offer; the counterparty accepts it when its
own plan proposes the mirror image, and the maker's daemon records the acceptance at its
next sweep. In cluster mode the two agents may be held by different daemons; the store
is the board they share. Swaps with another operator's agent (a remote address-book
entry) go the same way over signed A2A messages (``agents/a2a/deals.py``): offers and
acceptances are stored as they arrive, so they outlive a restart. One watchtower drives
every open plan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from agents.a2a import deals as a2a_deals
from agents.a2a.deals import Deals, RemoteOffer
from agents.a2a.outbox import DeliveryError
from agents.actions import pay_many, swap
from agents.actions.base import ActionResult, EscrowHandler, EscrowLock, PlanModel
from agents.actions.base import Leg as PlannedLeg
from agents.actions.pay_many import PayMany
from agents.actions.swap import Swap
from agents.gate import authorize_lock, authorize_settlement, escrow_signer
from agents.planners.types import Observation, OpenSwap
from agents.resolver import Resolver
from agents.tasks import OfferLeg, Task
from chains.atomic import Coordinator, Counterparty, Leg, Payment, PlanRecord, SwapSide
from chains.atomic.base import PlanRefused, Purpose, normalized
from chains.atomic.swap import accept_offer, make_offer, offer_of, on_acceptance
from chains.atomic.wallet import WalletParty
from chains.atomic.watchtower import Watchtower
from chains.base import UnsignedTx
from chains.families import FAMILIES
from config import fencing
from config.errors import AtomicityError, CovenantError, PolicyViolation
from config.models import Deployment
from policies.actions import ConfidenceEvidence, ProposedAction, Receives
from policies.base import AuthorityClaims, PolicyContext
from policies.engine import PolicyEngine
from wallets.authorization import Authorization
from wallets.operator import OperatorWallets

log = logging.getLogger(__name__)

DESK_SOURCE = "desk"
"""The source name of the offers other agents of this daemon make (their tasks' `source`)."""

Remember = Callable[[str, str, bool], Awaitable[None]]
"""(agent, summary, ok): how one of an agent's plans ended, for its next observation
and its audit log (the runtime's ``remember``)."""


@dataclass
class AtomicDesk:
    """Runs the agents' swaps and multi-chain payments through their coordinators."""

    deployment: Deployment
    engine: PolicyEngine
    wallets: OperatorWallets
    resolver: Resolver
    claims: dict[str, AuthorityClaims | None]
    coordinators: dict[str, Coordinator] = field(default_factory=dict)
    remember: Remember | None = None
    _locks: dict[tuple[str, str, int], EscrowLock] = field(default_factory=dict)
    _spent: dict[tuple[str, str, int], tuple[ProposedAction, PolicyContext]] = field(
        default_factory=dict
    )
    _started: dict[tuple[str, str], str] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _told: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    """What each remote swap's counterparty was last told of it (its state, leg states)."""
    # One sweep at a time: two passes over one plan at once could both send its lock.
    _sweeping: asyncio.Lock = field(default_factory=asyncio.Lock)
    owned: Callable[[str], bool] | None = None
    """Cluster mode: whether this daemon acts for an agent now. The watchtower then drives
    only those agents' plans, each attributed to its agent for the lease fence."""
    writing_for: Callable[[str], AbstractContextManager[None]] = fencing.writing_for
    """Attributes the block's writes to an agent for the fence (cluster mode: under the
    epoch held when the block starts, so a drive that outlives its lease stays fenced)."""
    deals: Deals | None = None
    """Swaps with other operators' agents, when the deployment serves A2A (`a2a:`)."""

    # -- actions -------------------------------------------------------------------------

    def handler(self, agent: str) -> EscrowHandler:
        """`agent`'s escrow strategy for :class:`~agents.agent.Agent`."""

        async def run(
            action: PlanModel,
            plan_id: str,
            evidence: ConfidenceEvidence,
            *,
            task: str | None = None,
        ) -> ActionResult:
            return await self.handle(agent, action, plan_id, evidence, task=task)

        return run

    def extras(self, observation: Observation) -> Observation:
        """`observation` with the agent's open swaps and the offers made to it."""
        agent = observation.agent
        return observation.model_copy(
            update={
                "open_swaps": self.open_swaps(agent),
                "tasks": observation.tasks + self.offers_to(agent),
            }
        )

    async def handle(
        self,
        agent: str,
        action: PlanModel,
        plan_id: str,
        evidence: ConfidenceEvidence,
        *,
        task: str | None = None,
    ) -> ActionResult:
        """Start `action` (a swap or a pay_many) for `agent`; its plan then runs in the
        background. `task` is the offer a swap accepts, if it accepts one."""
        try:
            async with self._sweeping:  # never while a sweep drives the same plans
                if isinstance(action, Swap):
                    return await self._swap(agent, action, plan_id, evidence, task)
                if isinstance(action, PayMany):
                    return await self._pay_many(agent, action, plan_id, evidence)
        except CovenantError as exc:
            return ActionResult("error", f"{getattr(action, 'kind', '?')} not started: {exc}")
        return ActionResult("error", f"no escrow plan for {type(action).__name__}")

    async def _pay_many(
        self, agent: str, action: PayMany, plan_id: str, evidence: ConfidenceEvidence
    ) -> ActionResult:
        coordinator = self._coordinator(agent)
        payments = []
        for index, lock in enumerate(pay_many.propose(action, evidence, self.resolver)):
            self._locks[(agent, plan_id, index)] = lock
            payments.append(
                Payment(
                    chain=lock.chain,
                    recipient=lock.address,
                    amount=lock.base_units,
                    asset=lock.token,
                )
            )
        await coordinator.create_plan(plan_id, payments)
        return self._begun(agent, plan_id, f"paying {len(payments)} legs all-or-nothing")

    async def _swap(
        self,
        agent: str,
        action: Swap,
        plan_id: str,
        evidence: ConfidenceEvidence,
        task: str | None = None,
    ) -> ActionResult:
        remote = self.deals is not None and self.deals.entry(action.counterparty) is not None
        if remote and self.deals is not None:  # its card, fetched again if it did not verify
            await self.deals.peers.ensure(action.counterparty)
        back = Receives(chain=action.take.chain, asset=action.take.asset, amount=action.take.amount)
        give = replace(swap.propose(action, evidence, self.resolver), task=task, receives=back)
        take = self._side(action.take)
        if remote:
            return await self._swap_remote(agent, action, plan_id, give, take=take, task=task)
        counterparty = self._counterparty_agent(action.counterparty)
        offer = self._matching_offer(counterparty, agent, _side_of(give), take)
        if offer is not None:
            return await self._accept(agent, offer, give)
        self._locks[(agent, plan_id, 0)] = give
        await make_offer(
            self._coordinator(agent),
            plan_id,
            give=_side_of(give),
            take=take,
            taker=self._as_counterparty(counterparty),
            credential=None,
        )
        return self._begun(
            agent,
            plan_id,
            f"offered {action.counterparty} {action.give.amount} {action.give.asset} on "
            f"{action.give.chain} for {action.take.amount} {action.take.asset} on "
            f"{action.take.chain}; waiting for it to accept",
        )

    async def _swap_remote(
        self,
        agent: str,
        action: Swap,
        plan_id: str,
        give: EscrowLock,
        *,
        take: SwapSide,
        task: str | None,
    ) -> ActionResult:
        """The swap with another operator's agent: accept its offer if it made the
        mirror image of this one, else offer it this swap (see agents/a2a/deals.py)."""
        assert self.deals is not None
        name, gives = action.counterparty, _side_of(give)
        coordinator = self._coordinator(agent)
        wanted = task.split("/", 1)[1] if task and task.startswith(f"{a2a_deals.SOURCE}/") else None
        remote = self.deals.matching(
            agent, name, gives, take, taken=coordinator.store.exists, plan_id=wanted
        )
        # Both ways, the other side must have the authority for what it locks.
        await self.deals.check_authority(name, take.chain, take.asset, take.amount)
        if remote is not None:
            return await self._accept_remote(agent, remote, give)
        counterparty = await self.deals.counterparty(name, (give.chain, take.chain))
        self._locks[(agent, plan_id, 0)] = give
        token = await make_offer(
            coordinator,
            plan_id,
            give=gives,
            take=take,
            taker=counterparty,
            credential=self.deals.credential(agent),
        )
        started = self._begun(
            agent,
            plan_id,
            f"offered {name} {action.give.amount} {action.give.asset} on {action.give.chain} "
            f"for {action.take.amount} {action.take.asset} on {action.take.chain}; waiting "
            "for its answer",
        )
        try:
            await self.deals.send_offer(agent, name, plan_id, token)
        except DeliveryError as exc:
            # The plan stays offered and the offer is sent again (follow_up) until it
            # is answered or expires; nothing is locked before an acceptance.
            return ActionResult("started", f"{started.summary}; not delivered yet: {exc}")
        return started

    async def _accept_remote(
        self, agent: str, remote: RemoteOffer, give: EscrowLock
    ) -> ActionResult:
        assert self.deals is not None
        await self.deals.check_offer(remote)
        self._locks[(agent, remote.plan_id, 1)] = give
        acceptance = await accept_offer(
            self._coordinator(agent), remote.token, maker_did=remote.offer.maker_did
        )
        started = self._begun(
            agent, remote.plan_id, f"accepted swap {remote.plan_id} of {remote.peer}"
        )
        try:
            await self.deals.send_acceptance(agent, remote, acceptance)
        except DeliveryError as exc:
            # Journaled as accepted: if the maker never hears it, it never locks, and
            # our plan ends cancelled without locking anything.
            return ActionResult("started", f"{started.summary}; the maker was not told yet: {exc}")
        return started

    async def _accept(self, agent: str, offer: PlanRecord, give: EscrowLock) -> ActionResult:
        """Journal `agent`'s side of another agent's `offer`; the maker's daemon (this
        one, or another in cluster mode) records the acceptance at its next sweep."""
        assert offer.offer is not None
        self._locks[(agent, offer.plan_id, 1)] = give
        maker_did = self.wallets.agent(offer.agent).did
        await accept_offer(self._coordinator(agent), offer.offer, maker_did=maker_did)
        return self._begun(agent, offer.plan_id, f"accepted swap {offer.plan_id} of {offer.agent}")

    def _begun(self, agent: str, plan_id: str, summary: str) -> ActionResult:
        self._started[(agent, plan_id)] = summary
        self._wake.set()
        return ActionResult("started", f"{summary} (plan {plan_id})")

    def _matching_offer(
        self, maker: str, taker: str, gives: SwapSide, takes: SwapSide
    ) -> PlanRecord | None:
        """An open offer by `maker` to `taker` that is the mirror image of the swap in
        which `taker` gives `gives` for `takes`."""
        for offer in self._local_offers(taker):
            terms = offer_of(offer)
            mirrored = _leg_side(terms.maker_leg) == takes and _leg_side(terms.taker_leg) == gives
            if offer.agent == maker and mirrored:
                return offer
        return None

    def _local_offers(self, taker: str) -> list[PlanRecord]:
        """The open offers other agents of this deployment made to `taker` that it has
        not taken yet (the makers' plans, from the store every daemon shares)."""
        coordinator = self.coordinators.get(taker)
        if coordinator is None:
            return []
        return [
            plan
            for plan in coordinator.store.offers(to=coordinator.party.did)
            if plan.agent in self.coordinators and not coordinator.store.exists(plan.plan_id)
        ]

    # -- policy gate ---------------------------------------------------------------------

    async def authorize(
        self, agent: str, unsigned: UnsignedTx, purpose: Purpose, plan_id: str, leg: Leg
    ) -> Authorization:
        """The coordinators' ``authorize``. A leg's first commitment goes through the
        policies: its lock, or the approval that lets an ERC-20 lock take exactly the
        leg's amount (judged as the lock, since it commits the same tokens). Everything
        after it (that lock, claims, refunds, revokes) settles a plan the engine
        allowed, through its grant."""
        judged = (agent, plan_id, leg.index) in self._spent
        if purpose not in ("approve", "lock") or (purpose == "lock" and judged):
            return authorize_settlement(self.engine, agent, plan_id, unsigned)
        lock = self._locks.get((agent, plan_id, leg.index))
        if lock is None:
            raise PolicyViolation(
                f"lock of leg {leg.index} of plan {plan_id} has no planned action behind it "
                "(planned before a restart?); nothing is locked and the plan winds down"
            )
        if (leg.chain, leg.amount, leg.recipient.lower(), normalized(leg.asset)) != (
            lock.chain,
            lock.base_units,
            lock.address.lower(),
            normalized(lock.token),
        ):
            raise PolicyViolation(f"lock of plan {plan_id} differs from the planned action")
        action = lock.propose(agent, plan_id, unsigned.digest)
        ctx = self.engine.context(
            agent,
            plan_id=plan_id,
            evidence=lock.evidence,
            claims=self.claims.get(agent),
            plan_actions=(action,),
        )
        authorization = await authorize_lock(self.engine, action, ctx)
        self._spent[(agent, plan_id, leg.index)] = (action, ctx)
        return authorization

    def holds_unjudged_lock(self, agent: str) -> bool:
        """Whether an open plan of `agent` has a lock planned here and not judged yet.
        Only this daemon can lock it (the plan's confidence evidence is in its memory),
        so in cluster mode the agent is not handed to another daemon meanwhile: there the
        plan would wind down with nothing locked. Called from the lease cycle's thread,
        so it only reads (a snapshot of) what the event loop writes."""
        waiting = [key for key in list(self._locks) if key[0] == agent and key not in self._spent]
        store = self._coordinator(agent).store if waiting else None
        return any(store is not None and not store.get(key[1]).terminal for key in waiting)

    def party(self, agent: str) -> WalletParty:
        """`agent`'s wallet as its coordinator's party, signing through the gate."""
        wallet = self.wallets.agent(agent)
        return WalletParty(wallet, sign_tx=escrow_signer(self.engine, wallet))

    async def verify_authority(self, did: str, plan: PlanRecord) -> bool:
        """A counterparty of this daemon is vouched for by its operator's own keystore;
        another operator's agent by the credential its card presents (CredentialError
        says what failed)."""
        if any(wallet.did == did for wallet in self.wallets.agents.values()):
            return True
        return self.deals is not None and await self.deals.verify_authority(did, plan)

    def wake(self) -> None:
        """Sweep now (a counterparty's message arrived)."""
        self._wake.set()

    # -- the watchtower --------------------------------------------------------------------

    async def sweep(self) -> list[PlanRecord]:
        """Drive every open plan once; report finished plans; the plans still open."""
        async with self._sweeping:
            await self._take_acceptances()
            if self.owned is None:
                still_open = await Watchtower(list(self.coordinators.values())).sweep()
            else:
                mine = [agent for agent in self.coordinators if self.owned(agent)]
                swept = await asyncio.gather(*(self._sweep_agent(agent) for agent in mine))
                still_open = [plan for plans in swept for plan in plans]
            await self._report_finished()
        return still_open

    async def take_over(self, agent: str) -> list[PlanRecord]:
        """Cluster mode: drive `agent`'s open plans once from their state on chain (and
        send what a crash left journaled), before the agent plans anything here."""
        async with self._sweeping:
            return await self._sweep_agent(agent)

    async def _sweep_agent(self, agent: str) -> list[PlanRecord]:
        with self.writing_for(agent):  # the tasks gather makes inherit it
            return await Watchtower([self.coordinators[agent]]).sweep()

    async def run(self, stop: asyncio.Event, *, interval: float) -> None:
        """Sweep now, then every `interval` seconds or as soon as a plan starts."""
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.sweep()
                await self.follow_up()
            except Exception:  # the tower must outlive one bad sweep; the cause is logged
                log.exception("atomic plans: sweep failed; retrying in %ss", interval)
            wake = asyncio.create_task(self._wake.wait())
            halt = asyncio.create_task(stop.wait())
            await asyncio.wait({wake, halt}, timeout=interval, return_when="FIRST_COMPLETED")
            wake.cancel()
            halt.cancel()

    async def settle(self, *, timeout: float, pause: float = 0.5) -> list[PlanRecord]:
        """Sweep until no plan started in this run is open, or `timeout` seconds pass."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            await self.sweep()
            if not self._started or loop.time() > deadline:
                return self.open_plans()
            await asyncio.sleep(pause)

    def open_plans(self) -> list[PlanRecord]:
        """Every open plan of every agent."""
        return [
            plan
            for coordinator in self.coordinators.values()
            for plan in coordinator.store.plans(agent=coordinator.party.name, open_only=True)
        ]

    async def _report_finished(self) -> None:
        for agent, plan_id in list(self._started):
            if self.owned is not None and not self.owned(agent):
                continue  # another daemon drives it now
            plan = self._coordinator(agent).store.get(plan_id)
            if not plan.terminal:
                continue
            summary = self._started.pop((agent, plan_id))
            with self.writing_for(agent):
                await self._settle_spend(agent, plan)
            for leg in plan.legs:
                self._locks.pop((agent, plan_id, leg.index), None)
            ok = plan.state == "claimed"
            reason = f": {plan.reason}" if plan.reason else ""
            log.info("agent %s: plan %s %s%s", agent, plan_id, plan.state, reason)
            if self.remember is not None:
                with self.writing_for(agent):
                    await self.remember(
                        agent, f"plan {plan_id} ({summary}) {plan.state}{reason}", ok
                    )

    async def _settle_spend(self, agent: str, plan: PlanRecord) -> None:
        """Tell the engine what became of each lock it authorized (spend and breaker)."""
        for leg, state in zip(plan.legs, plan.leg_states, strict=True):
            spent = self._spent.pop((agent, plan.plan_id, leg.index), None)
            if spent is None:
                continue
            action, ctx = spent
            if state == "never":
                await self.engine.failed(action, ctx, f"plan {plan.plan_id} {plan.state}")
            else:
                await self.engine.executed(action, ctx)

    async def follow_up(self) -> None:
        """Say again to other operators' agents what they may not have heard: each offer
        of ours still unanswered, each acceptance whose maker has not locked yet (a
        daemon that was down or unreachable hears it once it is back), as long as this
        process holds the planned lock behind it. An offer of ours
        that crossed the mirror offer of its counterparty is settled first: the side
        with the greater DID takes the other's offer, so both never wait for each other."""
        if self.deals is None:
            return
        sends = []
        for agent, coordinator in self.coordinators.items():
            if self.owned is not None and not self.owned(agent):
                continue
            open_plans = coordinator.store.plans(agent=agent, open_only=True)
            sends.extend(self._progress_notices(agent, coordinator, open_plans))
            for plan in open_plans:
                name = self.deals.name_of(plan.counterparty or "")
                if name is None or plan.offer is None:
                    continue
                our_leg = 0 if plan.kind == "maker" else 1
                if (agent, plan.plan_id, our_leg) not in self._locks:
                    # Planned before a restart: this daemon will not lock it (see
                    # authorize), so asking the other side to go on only costs it a lock.
                    continue
                if not self.deals.due(plan.plan_id):
                    continue
                if plan.kind == "maker" and plan.state == "offered":
                    if await self._take_crossed(agent, plan):
                        continue
                    sends.append(self.deals.send_offer(agent, name, plan.plan_id, plan.offer))
                elif plan.kind == "taker" and plan.state == "accepted":
                    with self.writing_for(agent):
                        token = await accept_offer(
                            coordinator, plan.offer, maker_did=plan.counterparty or ""
                        )
                    sends.append(
                        self.deals.send(agent, name, "accept", plan.plan_id, {"acceptance": token})
                    )
        for outcome in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.info("a2a: not delivered, will try again: %s", outcome)

    def _progress_notices(
        self, agent: str, coordinator: Coordinator, open_plans: list[PlanRecord]
    ) -> list[Coroutine[Any, Any, None]]:
        """A notice to the counterparty of each remote swap of `agent` whose state or
        leg states changed since it was last told, once the offer and acceptance are
        behind it: the other daemon then acts on the chain at once, not at its next
        sweep. Ended plans are told once and forgotten."""
        assert self.deals is not None
        plans = {plan.plan_id: plan for plan in open_plans}
        for owner, plan_id in list(self._told):
            if owner == agent and plan_id not in plans:  # it ended since
                plans[plan_id] = coordinator.store.get(plan_id)
        notices = []
        for plan_id, plan in plans.items():
            name = self.deals.name_of(plan.counterparty or "")
            if name is None:
                continue
            progress = (plan.state, *plan.leg_states)
            if plan.terminal:
                self._told.pop((agent, plan_id), None)
            elif self._told.get((agent, plan_id)) == progress:
                continue
            else:
                self._told[(agent, plan_id)] = progress
            if plan.state not in ("offered", "accepted"):  # those have their messages
                notices.append(self.deals.notify(agent, name, plan))
        return notices

    async def _take_crossed(self, agent: str, plan: PlanRecord) -> bool:
        """If the counterparty of our offer `plan` offered us its mirror image (both
        planned at once, in two daemons or two operators') and its DID is the smaller,
        take its offer instead of ours (ours is cancelled: nothing was locked). One rule
        on both sides, so they never both wait for the other."""
        coordinator = self._coordinator(agent)
        gives, takes = _leg_side(plan.leg(0)), _leg_side(plan.leg(1))
        lock = self._locks.get((agent, plan.plan_id, 0))
        their_did = plan.counterparty or ""
        other = self._agent_with(their_did)
        name = self.deals.name_of(their_did) if self.deals is not None else None
        local = self._matching_offer(other, agent, gives, takes) if other is not None else None
        remote = None
        if self.deals is not None and name is not None:
            remote = self.deals.matching(agent, name, gives, takes, taken=coordinator.store.exists)
        if lock is None or (local is None and remote is None) or their_did > coordinator.party.did:
            return False
        theirs = local.plan_id if local is not None else remote.plan_id if remote else ""
        with self.writing_for(agent):
            coordinator.store.set_state(
                plan.plan_id, "cancelled", f"crossed {other or name}'s offer {theirs}; took it"
            )
            summary = self._started.pop((agent, plan.plan_id), "")
            self._locks.pop((agent, plan.plan_id, 0), None)  # it is theirs we lock now
            if local is not None:
                result = await self._accept(agent, local, lock)
            else:
                assert remote is not None
                result = await self._accept_remote(agent, remote, lock)
        log.info("agent %s: %s (instead of %s)", agent, result.summary, summary)
        return True

    async def _take_acceptances(self) -> None:
        """Record each acceptance of an offer of ours that still waits for one: sent by
        another operator's taker, or journaled by an agent of this deployment. The maker
        then locks in this sweep. One read of the store for every agent's offers."""
        if not self.coordinators:
            return
        board = next(iter(self.coordinators.values())).store
        for plan in board.offers():
            agent = plan.agent
            coordinator = self.coordinators.get(agent)
            if coordinator is None or (self.owned is not None and not self.owned(agent)):
                continue
            taker = self._agent_with(plan.counterparty or "")
            if taker is not None:
                token = await self._local_acceptance(agent, taker, plan)
                # Not accepted: perhaps the taker offered us the mirror image instead.
                if token is None and await self._take_crossed(agent, plan):
                    continue
            elif self.deals is not None:
                token = self.deals.acceptance(agent, plan)
            else:
                token = None
            if token is None:
                continue
            with self.writing_for(agent):
                try:
                    on_acceptance(coordinator, plan.plan_id, token)
                except PlanRefused as exc:
                    log.warning("agent %s: %s", agent, exc)

    async def _local_acceptance(self, maker: str, taker: str, plan: PlanRecord) -> str | None:
        """The acceptance of `maker`'s offer `plan` if `taker`, an agent of this
        deployment, journaled its side of it and has not wound it down. Signed here by
        the taker's key (this operator holds it, and the taker may be held by another
        daemon): it only restates what the taker journaled."""
        taker_coordinator = self.coordinators[taker]
        assert plan.offer is not None
        if not taker_coordinator.store.exists(plan.plan_id):
            return None
        if taker_coordinator.store.get(plan.plan_id).terminal:
            return None
        maker_did = self.coordinators[maker].party.did
        return await accept_offer(taker_coordinator, plan.offer, maker_did=maker_did)

    # -- what agents see -------------------------------------------------------------------

    def open_swaps(self, agent: str) -> tuple[OpenSwap, ...]:
        """The agent's unsettled swaps, for its observation."""
        coordinator = self.coordinators.get(agent)
        if coordinator is None:
            return ()
        swaps = []
        for plan in coordinator.store.plans(agent=agent, open_only=True):
            if plan.kind in ("maker", "taker"):
                swaps.append(self._open_swap(agent, plan))
        return tuple(swaps)

    def _open_swap(self, agent: str, plan: PlanRecord) -> OpenSwap:
        offer = offer_of(plan)
        ours, theirs = (
            (offer.maker_leg, offer.taker_leg)
            if plan.kind == "maker"
            else (offer.taker_leg, offer.maker_leg)
        )
        other = offer.taker_did if plan.kind == "maker" else offer.maker_did
        return OpenSwap(
            id=plan.plan_id,
            counterparty=self._name_of(other) or "unknown",
            give=self._observed(ours),
            take=self._observed(theirs),
            state=plan.state,
        )

    def offers_to(self, agent: str) -> tuple[Task, ...]:
        """Open offers to `agent`, as offer tasks it may accept by id (its side: it gives
        what the maker takes): other agents' of this daemon, and other operators' agents'
        as they came by A2A. A task is untrusted data like any other."""
        offers = []
        for plan in self._local_offers(agent):
            terms = offer_of(plan)
            offers.append((DESK_SOURCE, plan.plan_id, self._book_name(plan.agent), terms))
        if self.deals is not None and agent in self.coordinators:
            for remote in self.deals.offers_to(agent, self.coordinators[agent].store.exists):
                offers.append((a2a_deals.SOURCE, remote.plan_id, remote.peer, remote.offer))
        tasks = []
        for source, plan_id, payee, terms in offers:
            gives, takes = _leg_side(terms.maker_leg), _leg_side(terms.taker_leg)
            try:
                give, take = self._leg_of(takes), self._leg_of(gives)
            except AtomicityError:  # an asset this deployment does not know: not an offer for us
                continue
            tasks.append(
                Task(id=plan_id, kind="offer", source=source, payee=payee, give=give, take=take)
            )
        return tuple(tasks)

    # -- helpers ---------------------------------------------------------------------------

    def _coordinator(self, agent: str) -> Coordinator:
        try:
            return self.coordinators[agent]
        except KeyError:
            raise AtomicityError(
                "no chain of this deployment has an HTLC (`htlc:` on the chain), so "
                "all-or-nothing actions cannot run"
            ) from None

    def _counterparty_agent(self, name: str) -> str:
        party = next((p for p in self.deployment.address_book if p.name == name), None)
        if party is None or party.agent is None:
            raise AtomicityError(
                f"swap counterparty {name!r} is not an agent of this deployment; swaps "
                "with agents of other daemons are not wired into the runtime yet"
            )
        return party.agent

    def _as_counterparty(self, agent: str) -> Counterparty:
        wallet = self.wallets.agent(agent)
        return Counterparty(
            did=wallet.did,
            addresses={family.name: family.address(wallet) for family in FAMILIES},
        )

    def _side(self, leg: PlannedLeg) -> SwapSide:
        asset = self.resolver.asset(leg.chain, leg.asset)
        amount = self.resolver.base_units(leg.amount, asset)
        return SwapSide(chain=leg.chain, amount=amount, asset=asset.token)

    def _leg_of(self, side: SwapSide) -> OfferLeg:
        asset = self.resolver.asset_of_token(side.chain, side.asset)
        amount = Decimal(side.amount).scaleb(-asset.decimals)
        return OfferLeg(chain=side.chain, asset=asset.symbol, amount=amount)

    def _observed(self, leg: Leg) -> PlannedLeg:
        asset = self.resolver.asset_of_token(leg.chain, leg.asset)
        amount = Decimal(leg.amount).scaleb(-asset.decimals)
        return PlannedLeg(chain=leg.chain, asset=asset.symbol, amount=amount)

    def _agent_with(self, did: str) -> str | None:
        """The agent of this deployment whose DID is `did`, if one is."""
        for name, coordinator in self.coordinators.items():
            if coordinator.party.did == did:
                return name
        return None

    def _name_of(self, did: str) -> str | None:
        for name, wallet in self.wallets.agents.items():
            if wallet.did == did:
                return self._book_name(name)
        return self.deals.name_of(did) if self.deals is not None else None

    def _book_name(self, agent: str) -> str:
        party = next((p for p in self.deployment.address_book if p.agent == agent), None)
        return party.name if party is not None else agent


def _side_of(lock: EscrowLock) -> SwapSide:
    return SwapSide(chain=lock.chain, amount=lock.base_units, asset=lock.token)


def _leg_side(leg: Leg) -> SwapSide:
    return SwapSide(chain=leg.chain, amount=leg.amount, asset=leg.asset)
