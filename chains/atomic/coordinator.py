"""The coordinator: drives plans of hash-time-locked legs to all claimed or all refunded.

Phase 1 locks every leg under one hashlock (an ERC-20 leg's lock is preceded by an
approval of exactly its amount, journaled as a step of its own); once every lock is
final, phase 2 claims
every leg (the leg with the shortest deadline first, which reveals the preimage) while
its chain leaves time for that claim to be included; otherwise every lock is
refunded after its deadline. Each lock, claim and refund is journaled as a step
*before* it is signed, its transaction id before its bytes are journaled, and its bytes
(``chains.journal``, sent by ``chains.sender``) before they are broadcast. A pass of
:meth:`Coordinator.drive` reads the chain before acting, so running it again after a crash
never locks a leg twice:
the escrow id is derived from the plan id and the leg index, and a lock already
on chain is recognised by its terms.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine

from chains.atomic._crash import boundary
from chains.atomic.base import (
    Authorize,
    HtlcChain,
    Leg,
    LockState,
    OnChainLock,
    Party,
    PlanRefused,
    Purpose,
    check_plan_id,
    hashlock_of,
    supported_asset,
)
from chains.atomic.store import PlanRecord, PlanStore, StepRecord
from chains.base import TxId, UnsignedTx
from chains.journal import TxJournal
from chains.sender import resend_unsent, track
from config.errors import (
    AtomicityError,
    ChainError,
    ChainTimeout,
    InsufficientFunds,
    PolicyViolation,
    TransactionReverted,
)
from config.margins import Margins

log = logging.getLogger(__name__)

LegOutcome = Literal["done", "pending", "failed"]
RefundOutcome = Literal["refunded", "never", "claimed", "pending"]
VerifyAuthority = Callable[[str, "PlanRecord"], Awaitable[bool]]
"""(counterparty DID, plan) -> whether the counterparty's authority credential holds; it may
raise CredentialError instead of answering False, to say what failed."""
MAX_CLAIM_ATTEMPTS = 3


class Payment(BaseModel):
    """One leg of a single agent's plan: pay `amount` to `recipient` on `chain`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chain: str
    recipient: str
    amount: int = Field(gt=0)
    asset: str | None = None
    deadline: int | None = Field(default=None, description="Default: the earliest safe one.")


class Coordinator:
    """Drives the atomic plans and swaps of one agent."""

    def __init__(
        self,
        engine: Engine,
        party: Party,
        chains: Mapping[str, HtlcChain],
        authorize: Authorize,
        *,
        margins: Margins | None = None,
        verify_authority: VerifyAuthority | None = None,
        tx_timeout: float = 60,
        poll: float = 0.2,
    ) -> None:
        self.party = party
        self.chains = dict(chains)
        self.margins = margins or Margins()
        self.store = PlanStore(engine, party.name)
        self.journal = TxJournal(engine)
        self.verify_authority = verify_authority
        self._authorize = authorize
        self._timeout, self._poll = tx_timeout, poll

    # -- plans of one agent ----------------------------------------------------------

    async def create_plan(self, plan_id: str, payments: Sequence[Payment]) -> PlanRecord:
        """Journal a plan paying every payment atomically; idempotent for a known id.

        The first payment reveals first, so it gets the shortest deadline.
        """
        check_plan_id(plan_id)
        if self.store.exists(plan_id):
            return self.store.get(plan_id)
        if not payments:
            raise PlanRefused(f"plan {plan_id} has no payments; give at least one")
        for payment in payments:
            await supported_asset(self.chain(payment.chain), payment.asset)
        hashlock = hashlock_of(self.party.derive_secret(plan_id))
        deadlines = await self._deadlines(payments)
        legs = tuple(
            self._own_leg(plan_id, index, payment, deadline)
            for index, (payment, deadline) in enumerate(zip(payments, deadlines, strict=True))
        )
        record = PlanRecord(
            plan_id=plan_id,
            agent=self.party.name,
            kind="plan",
            state="locking",
            hashlock=hashlock,
            preimage_journaled=True,
            legs=legs,
        )
        self.store.create(record)
        boundary("plan_journaled")
        return self.store.get(plan_id)

    def _own_leg(self, plan_id: str, index: int, payment: Payment, deadline: int) -> Leg:
        chain = self.chain(payment.chain)
        return Leg(
            index=index,
            chain=payment.chain,
            sender=self.party.address(chain.family),
            recipient=payment.recipient,
            amount=payment.amount,
            asset=payment.asset,
            deadline=deadline,
            locator=chain.locator(plan_id, index, self.party),
        )

    async def _deadlines(self, payments: Sequence[Payment]) -> list[int]:
        # Offsets are set on each leg's own chain clock, so chains whose clocks disagree
        # still get the margins in real time.
        chains = [self.chain(payment.chain) for payment in payments]
        clocks = [await self.clock(chain) for chain in chains]
        reveal_order = [chain.margin for chain in chains]
        minimum = self.margins.minimum_deadlines(0, reveal_order)
        default = self.margins.default_deadlines(0, reveal_order)
        offsets: list[int] = []
        for index, (payment, clock) in enumerate(zip(payments, clocks, strict=True)):
            floor = minimum[index]
            if offsets:  # later legs keep the gap after the deadline actually chosen
                gap = self.margins.reveal_gap(chains[index - 1].margin, chains[index].margin)
                floor = max(floor, offsets[-1] + gap)
            offset = payment.deadline - clock if payment.deadline else max(default[index], floor)
            if not floor <= offset <= self.margins.max_lock:
                raise PlanRefused(
                    f"deadline {clock + offset} of leg {index} on {payment.chain} must be "
                    f"between {clock + floor} (the chain margins) and "
                    f"{clock + self.margins.max_lock} (max_lock); leave it out to use the "
                    "earliest safe deadline"
                )
            offsets.append(offset)
        return [clock + offset for clock, offset in zip(clocks, offsets, strict=True)]

    # -- driving ---------------------------------------------------------------------

    async def resend_unsent(self) -> None:
        """After a restart, before any plan builds anew: send what was journaled but never
        broadcast, so no new transaction waits behind it for a nonce."""
        for chain in self.chains.values():
            await resend_unsent(chain.adapter, self.journal)

    async def drive(self, plan_id: str) -> PlanRecord:
        """One pass over `plan_id`: act on whatever the chain and the journal allow.

        Safe to repeat at any time; chain errors leave the plan where it was. A settled
        plan is only followed (:meth:`follow`). A plan this agent did not make (another
        agent's legs or preimage) raises AtomicityError.
        """
        from chains.atomic import swap

        plan = self.store.get(plan_id)
        self._check_ours(plan)
        handlers = {
            "plan": Coordinator._drive_plan,
            "maker": swap.drive_maker,
            "taker": swap.drive_taker,
        }
        try:
            if plan.terminal:
                await self.follow(plan)
            else:
                await handlers[plan.kind](self, plan)
        except (ChainTimeout, ChainError) as exc:
            log.warning("plan %s waits: %s", plan_id, exc)
        return self.store.get(plan_id)

    def _check_ours(self, plan: PlanRecord) -> None:
        for leg in plan.legs:
            family = self.chain(leg.chain).family
            if leg.ours and leg.sender.lower() != self.party.address(family).lower():
                raise AtomicityError(
                    f"plan {plan.plan_id}: leg {leg.index} is sent by {leg.sender}, not by "
                    f"agent {self.party.name} ({self.party.address(family)}); it belongs to "
                    "another agent's coordinator"
                )
        if plan.preimage_journaled:
            self.preimage(plan)

    async def follow(self, plan: PlanRecord) -> None:
        """Read every leg of a settled plan still stored as locked, so its stored state
        follows the chain: the maker's plan is claimed before the taker claims the maker's
        own leg, and a counterparty may refund its leg after we gave up on it."""
        for leg, state in zip(plan.legs, plan.leg_states, strict=True):
            if state == "locked":
                await self.observe(plan, leg)

    async def run(self, plan_id: str, *, timeout: float = 120) -> PlanRecord:
        """Drive `plan_id` until it is terminal or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            plan = await self.drive(plan_id)
            if plan.terminal or time.monotonic() > deadline:
                return plan
            await asyncio.sleep(self._poll)

    async def _drive_plan(self, plan: PlanRecord) -> None:
        if plan.state == "locking":
            await self._lock_all(plan)
        plan = self.store.get(plan.plan_id)
        if plan.state == "claiming":
            await self._claim_all(plan)
        elif plan.state == "refunding":
            await self.refund_all(plan, plan.legs)

    async def _lock_all(self, plan: PlanRecord) -> None:
        for leg in plan.legs:
            outcome, reason = await self.ensure_locked(plan, leg)
            if outcome == "failed":
                self.store.set_state(plan.plan_id, "refunding", reason)
                return
            if outcome == "pending":
                return
        boundary("locked_all")
        for leg in plan.legs:  # reveal nothing unless every claim can still land in time
            chain = self.chain(leg.chain)
            if await self.clock(chain) + self.margins.claim_time(chain.margin) >= leg.deadline:
                self.store.set_state(
                    plan.plan_id,
                    "refunding",
                    f"every leg locked too late to claim leg {leg.index} "
                    f"before its deadline {leg.deadline}",
                )
                return
        self.store.set_state(plan.plan_id, "claiming")

    async def _claim_all(self, plan: PlanRecord) -> None:
        preimage = self.preimage(plan)
        # Index order is reveal order: deadlines were staggered by it, each on its own
        # chain's clock, so raw deadlines of two chains need not compare the same way.
        for leg in plan.legs:
            outcome, reason = await self.ensure_claimed(plan, leg, preimage)
            if outcome == "failed":  # nothing revealed yet: every leg can still refund
                state = "failed" if self.revealed(plan) else "refunding"
                self.store.set_state(plan.plan_id, state, reason)
                return
            if outcome == "pending":
                return
        self.store.set_state(plan.plan_id, "claimed")

    async def refund_all(self, plan: PlanRecord, legs: Sequence[Leg]) -> None:
        """Refund every locked leg of `legs` once its deadline passed; settle the plan."""
        outcomes = [await self.ensure_refunded(plan, leg) for leg in legs]
        if "pending" in outcomes:
            return
        if "claimed" in outcomes:
            self.store.set_state(
                plan.plan_id, "failed", "a leg was claimed while the plan was refunding"
            )
        elif "refunded" in outcomes:
            self.store.set_state(plan.plan_id, "refunded")
        else:
            self.store.set_state(plan.plan_id, "cancelled")

    def preimage(self, plan: PlanRecord) -> bytes:
        """Derive the plan's preimage again from the agent's seed and check it."""
        preimage = self.party.derive_secret(plan.plan_id)
        if hashlock_of(preimage) != plan.hashlock:
            raise AtomicityError(
                f"plan {plan.plan_id}: the derived preimage does not match "
                "the journaled hashlock; is this the agent that made it?"
            )
        return preimage

    # -- one leg ---------------------------------------------------------------------

    async def observe(self, plan: PlanRecord, leg: Leg, *, final: bool = False) -> OnChainLock:
        """The escrow of `leg` on chain, completed where the chain deletes settled escrows
        (:meth:`_closed`). A leg seen claimed or refunded gets that state in the store,
        so `swaps list | show` follow the chain."""
        chain = self.chain(leg.chain)
        lock = await chain.read(leg, final=final)
        if lock.state == LockState.EMPTY and chain.closes_on_settle:
            lock = await self._closed(plan, leg, lock)
        settled = lock.state in (LockState.CLAIMED, LockState.REFUNDED)
        if settled and lock.mismatch(leg, plan.hashlock) is None:
            state = lock.state.name.lower()
            if plan.leg_states[leg.index] != state:
                self.store.set_leg(plan.plan_id, leg.index, state=state)
        return lock

    async def _closed(self, plan: PlanRecord, leg: Leg, empty: OnChainLock) -> OnChainLock:
        """An empty escrow we saw locked was settled: by us if our claim or refund is
        final, else as the chain shows (:meth:`_closed_by`)."""
        steps = self.store.steps(plan.plan_id, leg.index)
        done = {step.purpose for step in steps if step.status == "final"}
        seen = self.store.get(plan.plan_id).leg_states[leg.index] not in ("planned", "never")
        if not seen and "lock" not in done:
            return empty  # never locked, as far as we know: empty means empty
        if "claim" in done:
            state = LockState.CLAIMED
        elif "refund" in done:
            state = LockState.REFUNDED
        else:
            lock_tx = next(
                (s.tx_id for s in steps if s.purpose == "lock" and s.status == "final"), None
            )
            state = await self._closed_by(plan, leg, lock_tx)
        return OnChainLock(
            state=state,
            sender=leg.sender,
            recipient=leg.recipient,
            amount=leg.amount,
            asset=leg.asset,
            hashlock=plan.hashlock,
            deadline=leg.deadline,
        )

    async def _closed_by(self, plan: PlanRecord, leg: Leg, lock_tx: str | None) -> LockState:
        """How someone else settled a closed escrow. The program allows a claim only
        before the deadline and a refund only from it, on its own clock
        (chains/htlc/solana/htlc.s), so before the deadline it was claimed; from it on,
        the chain's history tells a claim from a refund."""
        chain = self.chain(leg.chain)
        if await chain.now() < leg.deadline:
            return LockState.CLAIMED
        settled = await chain.settlement(leg, plan.hashlock, lock_tx=lock_tx)
        if settled is None:
            raise ChainError(
                f"{chain.name}: escrow {leg.locator} of plan {plan.plan_id} (leg {leg.index}) "
                "is closed and the endpoint cannot show whether it was claimed or refunded; "
                "configure an RPC that serves its transaction history"
            )
        return settled

    def saw_locked(self, plan: PlanRecord, leg: Leg) -> None:
        """Remember that `leg` was locked on chain (see :meth:`observe`)."""
        self.store.set_leg(plan.plan_id, leg.index, state="locked")

    async def ensure_locked(  # noqa: PLR0911 - one return per chain state, in order
        self, plan: PlanRecord, leg: Leg
    ) -> tuple[LegOutcome, str | None]:
        """Lock `leg` unless it is already locked; ('done', None) once final on chain."""
        chain = self.chain(leg.chain)
        await self._settle(plan, leg, "lock")
        final = await self.observe(plan, leg, final=True)
        if final.state != LockState.EMPTY:
            wrong = final.mismatch(leg, plan.hashlock)
            if wrong:
                return "failed", f"escrow {leg.locator} on {leg.chain} is not our lock: {wrong}"
            if final.state == LockState.LOCKED:
                self.saw_locked(plan, leg)
            return "done", None
        if (await chain.read(leg)).state != LockState.EMPTY:
            return "pending", None  # included, not yet final
        done = self.store.steps(plan.plan_id, leg.index, "lock")
        failed = [step for step in done if step.status in ("failed", "final")]
        if failed:
            return "failed", f"lock of leg {leg.index} failed: {failed[-1].reason}"
        latest = leg.deadline - self.margins.claim_time(chain.margin)
        if await self.clock(chain) + self.margins.lock_time(chain.margin) >= latest:
            return "failed", f"too late to lock leg {leg.index} before deadline {leg.deadline}"
        approved, reason = await self.ensure_approved(plan, leg)
        if approved != "done":
            return approved, reason
        if await self._send(plan, leg, "lock", hashlock=plan.hashlock) == "abandoned":
            return "pending", None
        return await self.ensure_locked(plan, leg)

    async def ensure_approved(self, plan: PlanRecord, leg: Leg) -> tuple[LegOutcome, str | None]:
        """Let the escrow take `leg`'s tokens where its chain needs that (an ERC-20 leg):
        ('done', None) once the allowance covers the amount, after an approval of exactly
        the amount if it fell short.

        ``approve`` sets an allowance, it does not add to one, so an agent keeps at most
        one approval in flight per token and chain: a leg whose token another open plan
        has approved and not yet locked waits ('pending') until that lock or its revoke.
        An agent's plans are driven one after another (``Watchtower``), so the check and
        the approval cannot interleave with another plan's.
        """
        chain = self.chain(leg.chain)
        await self._settle(plan, leg, "approve")
        allowance = await chain.allowance(leg)
        if allowance is None or allowance >= leg.amount:
            return "done", None
        steps = self.store.steps(plan.plan_id, leg.index, "approve")
        failed = [step for step in steps if step.status == "failed"]
        if failed:
            return "failed", f"approval of leg {leg.index} failed: {failed[-1].reason}"
        if self._approval_holder(plan, leg) is not None:
            return "pending", None
        if any(step.status == "final" for step in steps):
            # Our approval is final and nobody else's replaced it: the token ignores it.
            return "failed", (
                f"token {leg.asset} on {leg.chain} shows an allowance of {allowance} after "
                f"approving {leg.amount}; it does not behave as an ERC-20"
            )
        if await self._send(plan, leg, "approve") == "abandoned":
            return "pending", None
        return await self.ensure_approved(plan, leg)

    def _approval_holder(self, plan: PlanRecord, leg: Leg) -> str | None:
        """Another open plan of this agent whose approval of `leg`'s token on `leg`'s
        chain its lock has not used yet (nor a revoke withdrawn), if there is one."""
        for other in self.store.plans(open_only=True):
            if other.plan_id == plan.plan_id:
                continue
            for each in other.legs:
                same = each.ours and each.chain == leg.chain and each.asset == leg.asset
                if same and self._holds_approval(other, each):
                    return other.plan_id
        return None

    def _holds_approval(self, plan: PlanRecord, leg: Leg) -> bool:
        steps = self.store.steps(plan.plan_id, leg.index)
        done = {step.purpose for step in steps if step.status == "final"}
        return "approve" in done and not done & {"lock", "revoke"}

    async def _withdraw_approval(self, plan: PlanRecord, leg: Leg) -> bool:
        """Revoke what this plan approved for `leg` and no lock used (a plan winding down
        before its lock landed), so nothing stays approved after the plan ends; False
        while a revoke is still on its way. A revoke that fails three times is logged
        and given up: the plan must still end."""
        if not self._holds_approval(plan, leg):
            return True
        await self._settle(plan, leg, "revoke")
        if not self._holds_approval(plan, leg):  # a revoke in flight became final
            return True
        if not await self.chain(leg.chain).allowance(leg):
            return True
        if self._approval_holder(plan, leg) is not None:
            return True  # the allowance is another plan's approval now
        failed = [
            s for s in self.store.steps(plan.plan_id, leg.index, "revoke") if s.status == "failed"
        ]
        if len(failed) >= MAX_CLAIM_ATTEMPTS:
            log.error(
                "plan %s: revoking the approval of leg %s failed %s times (%s); revoke it by hand",
                plan.plan_id,
                leg.index,
                len(failed),
                failed[-1].reason,
            )
            return True
        return await self._send(plan, leg, "revoke") == "final"

    async def ensure_claimed(
        self, plan: PlanRecord, leg: Leg, preimage: bytes
    ) -> tuple[LegOutcome, str | None]:
        """Claim `leg` with `preimage` unless claimed; ('done', None) once claimed."""
        await self._settle(plan, leg, "claim")
        state = (await self.observe(plan, leg)).state
        if state == LockState.CLAIMED:
            return "done", None
        if state != LockState.LOCKED:
            return "failed", f"leg {leg.index} is {state.name.lower()}, it cannot be claimed"
        refusal = await self._why_not_claim(plan, leg)
        if refusal is not None:
            return "failed", refusal
        if await self._send(plan, leg, "claim", preimage=preimage) == "abandoned":
            return "pending", None
        return await self.ensure_claimed(plan, leg, preimage)

    async def _why_not_claim(self, plan: PlanRecord, leg: Leg) -> str | None:
        """Why a claim of the locked `leg` must not be sent now, or None."""
        attempts = self.store.steps(plan.plan_id, leg.index, "claim")
        if len([step for step in attempts if step.status == "failed"]) >= MAX_CLAIM_ATTEMPTS:
            return f"claim of leg {leg.index} failed: {attempts[-1].reason}"
        chain = self.chain(leg.chain)
        left = leg.deadline - await self.clock(chain)
        if left <= 0:
            return f"leg {leg.index} passed its deadline {leg.deadline} unclaimed"
        needed = self.reveal_time(chain)
        if left < needed and not self.revealed(plan):
            # A claim that lands too late reverts with the preimage already in the
            # mempool: the counterparty would refund its leg and claim ours with it. Once
            # the preimage is public, a late claim loses nothing more, so it is tried.
            return (
                f"too late to reveal the preimage: leg {leg.index} on {leg.chain} has {left}s "
                f"before its deadline {leg.deadline}, a claim needs {needed}s to be included; "
                "nothing was revealed, so every leg refunds after its deadline"
            )
        return None

    async def ensure_refunded(self, plan: PlanRecord, leg: Leg) -> RefundOutcome:
        """Refund `leg` once its deadline passed; 'never' if it was never locked."""
        chain = self.chain(leg.chain)
        await self._settle(plan, leg, "lock")  # a lock still in flight may yet land
        await self._settle(plan, leg, "refund")
        state = (await self.observe(plan, leg)).state
        if state == LockState.LOCKED and await chain.now() >= leg.deadline:
            await self._send(plan, leg, "refund")
            state = (await self.observe(plan, leg)).state
        outcome: dict[LockState, RefundOutcome] = {
            LockState.EMPTY: "never",
            LockState.REFUNDED: "refunded",
            LockState.CLAIMED: "claimed",
            LockState.LOCKED: "pending",
        }
        if outcome[state] == "never" and not await self._withdraw_approval(plan, leg):
            return "pending"
        if outcome[state] != "pending":
            self.store.set_leg(plan.plan_id, leg.index, state=outcome[state])
        return outcome[state]

    # -- journaled sending -------------------------------------------------------------

    async def _send(
        self,
        plan: PlanRecord,
        leg: Leg,
        purpose: Purpose,
        *,
        hashlock: bytes = b"",
        preimage: bytes = b"",
    ) -> str:
        chain = self.chain(leg.chain)
        step = self.store.add_step(plan.plan_id, leg.index, purpose)
        boundary(f"{purpose}_intent")
        signed = await self._sign(plan, leg, purpose, step, hashlock=hashlock, preimage=preimage)
        if signed is None:
            return "failed"
        unsigned, raw = signed
        tx_id = chain.adapter.tx_id(raw)
        # The step names its tx before the bytes are journaled: a step whose tx is not
        # in the journal was never sent, so it is safe to abandon and build anew.
        self.store.step_signed(step, tx_id)
        self.journal.record(chain.name, unsigned, tx_id, raw)
        boundary(f"{purpose}_signed")
        if not await self._broadcast(step, chain, tx_id, raw):
            return "failed"
        status = await self._track(step, chain, tx_id)
        boundary(f"{purpose}_final")
        return status

    async def _sign(
        self,
        plan: PlanRecord,
        leg: Leg,
        purpose: Purpose,
        step: int,
        *,
        hashlock: bytes,
        preimage: bytes,
    ) -> tuple[UnsignedTx, bytes] | None:
        """Build, get the policy engine's authorization, sign; None (step failed) if the
        chain or the engine refuses."""
        chain = self.chain(leg.chain)
        try:
            unsigned = await chain.build(
                purpose,
                leg,
                hashlock=hashlock,
                preimage=preimage,
                payer=self.party.address(chain.family),
            )
        except (TransactionReverted, InsufficientFunds) as exc:
            self.store.finish_step(step, "failed", str(exc))
            return None
        try:
            authorization = await self._authorize(
                self.party.name, unsigned, purpose, plan.plan_id, leg
            )
        except PolicyViolation as exc:
            # A denied lock sends the plan to refunding; claims and refunds of a plan the
            # engine already allowed should always be authorized, and are retried.
            self.store.finish_step(step, "failed", f"denied by policy: {exc}")
            await chain.adapter.abandon(unsigned)
            return None
        seeds = chain.co_signers(purpose, leg, self.party, plan.plan_id)
        return unsigned, self.party.sign_tx(chain.family, unsigned, authorization, seeds)

    async def _broadcast(self, step: int, chain: HtlcChain, tx_id: TxId, raw: bytes) -> bool:
        """Send journaled bytes once; False if the chain refused them for good. Any other
        failure is left to tracking, which resends the same bytes or settles them."""
        try:
            await chain.adapter.broadcast(raw)
        except (TransactionReverted, InsufficientFunds) as exc:
            self.journal.mark(tx_id, "failed", str(exc))
            self.store.finish_step(step, "failed", str(exc))
            return False
        except ChainError as exc:
            log.warning("%s: broadcast of %s failed (%s); tracking it", chain.name, tx_id, exc)
            return True
        self.journal.mark(tx_id, "broadcast")
        return True

    async def _settle(self, plan: PlanRecord, leg: Leg, purpose: Purpose) -> None:
        for step in self.store.steps(plan.plan_id, leg.index, purpose):
            if step.status in ("intent", "signed"):
                await self._settle_step(step, self.chain(leg.chain))

    async def _settle_step(self, step: StepRecord, chain: HtlcChain) -> None:
        entry = self.journal.get(step.tx_id) if step.tx_id else None
        if entry is None:
            self.store.finish_step(step.id, "abandoned", "crashed before it was journaled")
        elif entry.may_land:
            await self._track(step.id, chain, TxId(entry.tx_id))
        else:
            status = entry.status if entry.status in ("final", "failed") else "abandoned"
            self.store.finish_step(step.id, status, entry.reason)

    async def _track(self, step: int, chain: HtlcChain, tx_id: TxId) -> str:
        entry = self.journal.get(tx_id)
        assert entry is not None
        try:
            status = await track(
                chain.adapter, self.journal, entry, timeout=self._timeout, poll=self._poll
            )
        except (TransactionReverted, InsufficientFunds) as exc:
            self.store.finish_step(step, "failed", str(exc))
            return "failed"
        except ChainTimeout:
            raise
        except ChainError as exc:
            settled = self.journal.get(tx_id)
            if settled is not None and settled.status in ("replaced", "expired"):
                self.store.finish_step(step, "abandoned", str(exc))
                return "abandoned"
            raise
        self.store.finish_step(step, status.state, status.reason)
        return status.state

    def reveal_time(self, chain: HtlcChain) -> int:
        """Seconds a claim that reveals the preimage needs before its deadline (the
        margins' budget for a claim, so the schedule and this check agree)."""
        return self.margins.reveal_time(chain.margin)

    def revealed(self, plan: PlanRecord) -> bool:
        """Whether the plan's preimage may be public: a taker read it from the chain, or
        the journal holds the bytes of one of our claims (a step names its tx before the
        bytes are journaled, so a tx the journal lacks was never sent)."""
        if not plan.preimage_journaled:
            return True
        return any(
            step.tx_id is not None and self.journal.get(step.tx_id) is not None
            for step in self.store.steps(plan.plan_id, purpose="claim")
        )

    async def clock(self, chain: HtlcChain) -> int:
        """The later of the wall clock and `chain`'s clock, for planning and for "too
        late" decisions: an idle chain's last block can be old, and erring late only
        makes us give up sooner. Refunds wait for the chain's own clock."""
        return max(int(time.time()), await chain.now())

    def chain(self, name: str) -> HtlcChain:
        """The HTLC chain called `name`."""
        try:
            return self.chains[name]
        except KeyError:
            raise AtomicityError(
                f"no HTLC contract or program is configured on chain {name!r}; chains with "
                f"one: {sorted(self.chains)}"
            ) from None
