"""Swaps between two agents, possibly in two daemons, over DID-signed messages.

1. The maker journals the plan and sends a JWS-signed :class:`SwapOffer` (its DID key):
   what it gives on one chain, what it takes on another, the hashlock and both deadlines.
   The taker's leg reveals first (the maker claims it), so it has the shorter deadline.
2. The taker checks the offer and the margins, journals its side and answers with a
   signed acceptance naming its escrow.
3. The maker locks. The taker waits until that lock is final, checks it on chain (amount,
   asset, hashlock, recipient, deadline margin) and the maker's authority, then locks.
4. The maker checks the taker's lock the same way and claims it, revealing the preimage;
   the taker reads the preimage from the chain and claims the maker's lock.
If anything is off, nobody reveals anything and each side refunds after its deadline.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError

from chains.atomic._crash import boundary
from chains.atomic.base import Leg, LockState, PlanRefused, check_plan_id, supported_asset
from chains.atomic.store import PlanRecord
from config.errors import CredentialError
from wallets.credentials import RevocationList, verify_credential
from wallets.jws import JwsError, verify_jws

if TYPE_CHECKING:
    from chains.atomic.coordinator import Coordinator

OFFER_TYPE = "covenant-swap-offer"
ACCEPT_TYPE = "covenant-swap-accept"


class SwapSide(BaseModel):
    """One side of a swap: `amount` base units of `asset` (None: native) on `chain`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chain: str
    amount: int
    asset: str | None = None


class Counterparty(BaseModel):
    """The other agent: its DID and its address per chain family."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    did: str
    addresses: dict[str, str]


class SwapOffer(BaseModel):
    """The signed terms of a swap: leg 0 the maker locks, leg 1 the taker locks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = OFFER_TYPE
    plan_id: str
    maker_did: str
    taker_did: str
    hashlock: str
    maker_leg: Leg
    taker_leg: Leg
    credential: str | None = None


async def make_offer(
    coordinator: Coordinator,
    plan_id: str,
    *,
    give: SwapSide,
    take: SwapSide,
    taker: Counterparty,
    credential: str | None = None,
) -> str:
    """Journal a maker plan and return the signed offer (JWS) to send to the taker.

    `credential` is the maker's agent-authority credential (JWT) for the taker to check.
    """
    check_plan_id(plan_id)
    if coordinator.store.exists(plan_id):
        return _stored_offer(coordinator.store.get(plan_id))
    party = coordinator.party
    hashlock = hashlib.sha256(party.derive_secret(plan_id)).digest()
    maker_leg, taker_leg = await _offer_legs(coordinator, plan_id, give, take, taker)
    offer = SwapOffer(
        plan_id=plan_id,
        maker_did=party.did,
        taker_did=taker.did,
        hashlock=hashlock.hex(),
        maker_leg=maker_leg,
        taker_leg=taker_leg,
        credential=credential,
    )
    token = party.sign_offer(offer.model_dump(mode="json"))
    coordinator.store.create(
        PlanRecord(
            plan_id=plan_id,
            agent=party.name,
            kind="maker",
            state="offered",
            hashlock=hashlock,
            preimage_journaled=True,
            legs=(maker_leg, taker_leg),
            counterparty=taker.did,
            offer=token,
        )
    )
    boundary("plan_journaled")
    return token


async def _offer_legs(
    coordinator: Coordinator, plan_id: str, give: SwapSide, take: SwapSide, taker: Counterparty
) -> tuple[Leg, Leg]:
    """Leg 0 the maker locks, leg 1 the taker locks (its escrow id comes with the
    acceptance). The taker's leg reveals first, so it gets the shorter deadline; each
    deadline is set on its own chain's clock (see ``Coordinator._deadlines``)."""
    party = coordinator.party
    give_chain, take_chain = coordinator.chain(give.chain), coordinator.chain(take.chain)
    await supported_asset(give_chain, give.asset)
    await supported_asset(take_chain, take.asset)
    taker_offset, maker_offset = coordinator.margins.default_deadlines(
        0, [take_chain.margin, give_chain.margin]
    )
    maker_leg = Leg(
        index=0,
        chain=give.chain,
        sender=party.address(give_chain.family),
        recipient=_address(taker, give_chain.family),
        amount=give.amount,
        asset=give.asset,
        deadline=await coordinator.clock(give_chain) + maker_offset,
        locator=give_chain.locator(plan_id, 0, party),
    )
    taker_leg = Leg(
        index=1,
        chain=take.chain,
        sender=_address(taker, take_chain.family),
        recipient=party.address(take_chain.family),
        amount=take.amount,
        asset=take.asset,
        deadline=await coordinator.clock(take_chain) + taker_offset,
        locator="",
        ours=False,
    )
    return maker_leg, taker_leg


def _address(counterparty: Counterparty, family: str) -> str:
    try:
        return counterparty.addresses[family]
    except KeyError:
        raise PlanRefused(
            f"counterparty {counterparty.did} has no {family} address; "
            f"it has {sorted(counterparty.addresses)}"
        ) from None


def _stored_offer(plan: PlanRecord) -> str:
    if plan.offer is None:
        raise PlanRefused(f"plan {plan.plan_id} exists and is not a swap offer")
    return plan.offer


def read_offer(token: str, *, maker_did: str) -> SwapOffer:
    """Verify an offer's signature by `maker_did` and parse its terms."""
    try:
        verified = verify_jws(token, expected_did=maker_did)
        offer = SwapOffer.model_validate(verified.claims())
    except (JwsError, ValidationError) as exc:
        raise PlanRefused(f"swap offer refused: {exc}") from exc
    if offer.type != OFFER_TYPE or offer.maker_did != maker_did:
        raise PlanRefused(f"swap offer refused: type {offer.type!r} from {offer.maker_did}")
    return offer


async def accept_offer(coordinator: Coordinator, token: str, *, maker_did: str) -> str:
    """Check an offer, journal the taker's side and return the signed acceptance."""
    offer = read_offer(token, maker_did=maker_did)
    party = coordinator.party
    if not coordinator.store.exists(offer.plan_id):
        await supported_asset(coordinator.chain(offer.taker_leg.chain), offer.taker_leg.asset)
        _check_offer_is_for(coordinator, offer)
        await _check_margins(coordinator, offer.maker_leg, offer.taker_leg)
        take_chain = coordinator.chain(offer.taker_leg.chain)
        if not await take_chain.can_read_reveals():
            raise PlanRefused(
                f"swap offer {offer.plan_id} refused: the maker would reveal the preimage "
                f"on {take_chain.name}, whose endpoint cannot show claim transactions "
                "(getSignaturesForAddress); swap the other way round or use another RPC"
            )
        taker_leg = offer.taker_leg.model_copy(
            update={"locator": take_chain.locator(offer.plan_id, 1, party), "ours": True}
        )
        maker_leg = offer.maker_leg.model_copy(update={"ours": False})
        coordinator.store.create(
            PlanRecord(
                plan_id=offer.plan_id,
                agent=party.name,
                kind="taker",
                state="accepted",
                hashlock=bytes.fromhex(offer.hashlock),
                preimage_journaled=False,
                legs=(maker_leg, taker_leg),
                counterparty=maker_did,
                offer=token,
            )
        )
        boundary("plan_journaled")
    plan = coordinator.store.get(offer.plan_id)
    return party.sign_offer(
        {
            "type": ACCEPT_TYPE,
            "plan_id": plan.plan_id,
            "offer": _digest(token),
            "taker_locator": plan.leg(1).locator,
        }
    )


def _check_offer_is_for(coordinator: Coordinator, offer: SwapOffer) -> None:
    party = coordinator.party
    give = coordinator.chain(offer.maker_leg.chain)
    take = coordinator.chain(offer.taker_leg.chain)
    problems = []
    if offer.taker_did != party.did:
        problems.append(f"it is addressed to {offer.taker_did}, not {party.did}")
    if offer.maker_leg.recipient.lower() != party.address(give.family).lower():
        problems.append(f"the maker pays {offer.maker_leg.recipient}, not us")
    if offer.taker_leg.sender.lower() != party.address(take.family).lower():
        problems.append(f"our leg names sender {offer.taker_leg.sender}, not us")
    if problems:
        raise PlanRefused(f"swap offer {offer.plan_id} refused: {'; '.join(problems)}")


async def _check_margins(coordinator: Coordinator, maker_leg: Leg, taker_leg: Leg) -> None:
    """The taker's safety: time to lock and be claimed before our deadline, and time to
    claim the maker's lock after the maker reveals; no absurdly long lock of our funds."""
    margins = coordinator.margins
    give = coordinator.chain(maker_leg.chain)
    take = coordinator.chain(taker_leg.chain)
    # Time left on each leg's own chain clock: chains' clocks need not agree.
    maker_left = maker_leg.deadline - await coordinator.clock(give)
    taker_left = taker_leg.deadline - await coordinator.clock(take)
    gap = margins.reveal_gap(take.margin, give.margin)
    needed = margins.lock_time(take.margin) + margins.claim_time(take.margin)
    if maker_left - taker_left < gap:
        raise PlanRefused(
            f"the maker's deadline {maker_leg.deadline} leaves {maker_left}s, only "
            f"{maker_left - taker_left}s more than ours ({taker_leg.deadline}, {taker_left}s); "
            f"the margins need {gap}s"
        )
    if taker_left < needed:
        raise PlanRefused(
            f"our deadline {taker_leg.deadline} is {taker_left}s away; locking and being "
            f"claimed needs {needed}s"
        )
    if max(maker_left, taker_left) > margins.max_lock:
        raise PlanRefused(
            f"deadline {maker_leg.deadline} is {maker_left}s away, more than max_lock "
            f"{margins.max_lock}s"
        )


def on_acceptance(coordinator: Coordinator, plan_id: str, token: str) -> PlanRecord:
    """Record the taker's signed acceptance; the maker locks on the next drive."""
    plan = coordinator.store.get(plan_id)
    if plan.kind != "maker" or plan.counterparty is None or plan.offer is None:
        raise PlanRefused(f"plan {plan_id} is not a swap we offered")
    try:
        claims = verify_jws(token, expected_did=plan.counterparty).claims()
    except JwsError as exc:
        raise PlanRefused(f"acceptance of {plan_id} refused: {exc}") from exc
    if (claims.get("type"), claims.get("plan_id"), claims.get("offer")) != (
        ACCEPT_TYPE,
        plan_id,
        _digest(plan.offer),
    ):
        raise PlanRefused(f"acceptance of {plan_id} refused: it accepts another offer")
    if plan.state == "offered":
        coordinator.store.set_leg(plan_id, 1, locator=str(claims["taker_locator"]))
        coordinator.store.set_state(plan_id, "locking")
    return coordinator.store.get(plan_id)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def offer_of(plan: PlanRecord) -> SwapOffer:
    """The offer journaled with a swap plan (signature already checked when stored)."""
    if plan.offer is None:
        raise PlanRefused(f"plan {plan.plan_id} has no offer")
    payload = plan.offer.split(".")[1]
    return SwapOffer.model_validate(json.loads(_unb64(payload)))


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def credential_verifier(
    *, issuer: str, revocations: RevocationList
) -> Callable[[str, PlanRecord], Awaitable[bool]]:
    """A ``verify_authority`` for the taker: the offer must carry an agent-authority
    credential issued by `issuer` to the maker's DID, unexpired, unrevoked, covering the
    chain the maker locks on."""

    async def verify(did: str, plan: PlanRecord) -> bool:
        offer = offer_of(plan)
        if offer.credential is None:
            return False
        try:
            verified = verify_credential(
                offer.credential, issuer=issuer, subject=did, revocations=revocations
            )
        except CredentialError:
            return False
        return offer.maker_leg.chain in verified.authority.chains

    return verify


# -- the maker's side ------------------------------------------------------------------


async def drive_maker(coordinator: Coordinator, plan: PlanRecord) -> None:
    """One pass of the maker: lock, check the taker's lock, claim it, or refund ours."""
    ours, theirs = plan.leg(0), plan.leg(1)
    take = coordinator.chain(theirs.chain)
    margins = coordinator.margins
    if plan.state == "offered":
        if (
            await coordinator.clock(take)
            + margins.lock_time(take.margin)
            + margins.claim_time(take.margin)
            >= theirs.deadline
        ):
            coordinator.store.set_state(plan.plan_id, "cancelled", "the offer expired")
        return
    if plan.state == "locking":
        outcome, reason = await coordinator.ensure_locked(plan, ours)
        if outcome == "pending":
            return
        plan = _move(coordinator, plan, "waiting" if outcome == "done" else "refunding", reason)
    if plan.state == "waiting":
        plan = _move(coordinator, plan, *await _check_taker_lock(coordinator, plan))
    if plan.state == "claiming":
        outcome, reason = await coordinator.ensure_claimed(plan, theirs, coordinator.preimage(plan))
        if outcome != "pending":
            _move(coordinator, plan, "claimed" if outcome == "done" else "refunding", reason)
        return
    if plan.state == "refunding":
        await coordinator.refund_all(plan, [ours])


async def _check_taker_lock(coordinator: Coordinator, plan: PlanRecord) -> tuple[str, str | None]:
    """'claiming' only if the taker's lock is final, exactly as offered, and claimable."""
    theirs = plan.leg(1)
    take = coordinator.chain(theirs.chain)
    too_late = (
        await coordinator.clock(take) + coordinator.margins.claim_time(take.margin)
        >= theirs.deadline
    )
    lock = await coordinator.observe(plan, theirs, final=True)
    invalid = take.why_not_locked(theirs)
    if lock.state == LockState.EMPTY and invalid is not None:
        # The taker's escrow address holds something that is no lock (a forged account):
        # no real lock can be made there any more, so waiting for one is pointless.
        return "refunding", f"the taker's lock is wrong: its escrow is not a lock: {invalid}"
    if lock.state == LockState.EMPTY:
        return ("refunding", "the taker did not lock in time") if too_late else ("waiting", None)
    wrong = lock.mismatch(theirs, plan.hashlock)
    if lock.state != LockState.LOCKED or wrong:
        return "refunding", f"the taker's lock is wrong: {wrong or lock.state.name.lower()}"
    coordinator.saw_locked(plan, theirs)
    if too_late:
        return "refunding", "the taker's lock leaves too little time to claim it"
    return "claiming", None


# -- the taker's side ------------------------------------------------------------------


async def drive_taker(coordinator: Coordinator, plan: PlanRecord) -> None:
    """One pass of the taker: check the maker's lock, lock, claim with the revealed
    preimage, or refund ours after its deadline."""
    ours = plan.leg(1)
    if plan.state == "accepted":
        plan = _move(coordinator, plan, *await _check_maker_lock(coordinator, plan))
    if plan.state == "locking":
        outcome, reason = await coordinator.ensure_locked(plan, ours)
        if outcome == "pending":
            return
        plan = _move(coordinator, plan, "waiting" if outcome == "done" else "refunding", reason)
    if plan.state == "waiting":
        plan = _move(coordinator, plan, *await _watch_own_lock(coordinator, plan))
    if plan.state == "claiming":
        await _claim_maker_lock(coordinator, plan)
    elif plan.state == "refunding":
        refund = await coordinator.ensure_refunded(plan, ours)
        states = {"refunded": "refunded", "never": "cancelled", "claimed": "claiming"}
        if refund in states:
            _move(coordinator, plan, states[refund], None)


async def _check_maker_lock(coordinator: Coordinator, plan: PlanRecord) -> tuple[str, str | None]:
    theirs, ours = plan.leg(0), plan.leg(1)
    take = coordinator.chain(ours.chain)
    margins = coordinator.margins
    lock = await coordinator.observe(plan, theirs, final=True)
    invalid = coordinator.chain(theirs.chain).why_not_locked(theirs)
    if lock.state == LockState.EMPTY and invalid is not None:
        # Something sits at the escrow address that is no lock of ours to trust; the
        # maker cannot lock there either, so waiting only risks our own deadline.
        return "cancelled", f"the maker's escrow is not a valid lock: {invalid}"
    if lock.state == LockState.EMPTY:
        late = (
            await coordinator.clock(take)
            + margins.lock_time(take.margin)
            + margins.claim_time(take.margin)
            >= ours.deadline
        )
        return ("cancelled", "the maker did not lock in time") if late else ("accepted", None)
    wrong = lock.mismatch(theirs, plan.hashlock)
    if lock.state != LockState.LOCKED or wrong:
        return "cancelled", f"the maker's lock is wrong: {wrong or lock.state.name.lower()}"
    coordinator.saw_locked(plan, theirs)
    try:
        await _check_margins(coordinator, theirs, ours)
    except PlanRefused as exc:
        return "cancelled", str(exc)
    refused = await _authority_refused(coordinator, plan)
    return ("cancelled", refused) if refused else ("locking", None)


async def _authority_refused(coordinator: Coordinator, plan: PlanRecord) -> str | None:
    """Why the maker's authority does not hold, or None if it does."""
    verify = coordinator.verify_authority
    refused = "the maker's authority credential did not verify"
    try:
        if verify is None or plan.counterparty is None or not await verify(plan.counterparty, plan):
            return refused
    except CredentialError as exc:  # the verifier says what failed
        return f"{refused}: {exc}"
    return None


async def _watch_own_lock(coordinator: Coordinator, plan: PlanRecord) -> tuple[str, str | None]:
    ours = plan.leg(1)
    take = coordinator.chain(ours.chain)
    state = (await coordinator.observe(plan, ours)).state
    if state == LockState.CLAIMED:
        return "claiming", None
    if state == LockState.REFUNDED:  # anyone may refund after the deadline, to us
        return "refunded", "refunded after the deadline (the maker never claimed)"
    if state == LockState.LOCKED and await take.now() >= ours.deadline:
        return "refunding", "the maker never claimed our lock"
    return "waiting", None


async def _claim_maker_lock(coordinator: Coordinator, plan: PlanRecord) -> None:
    theirs, ours = plan.leg(0), plan.leg(1)
    locks = coordinator.store.steps(plan.plan_id, ours.index, "lock")
    lock_tx = next((step.tx_id for step in locks if step.status == "final"), None)
    preimage = await coordinator.chain(ours.chain).revealed_preimage(
        ours, plan.hashlock, lock_tx=lock_tx
    )
    if preimage is None:
        return  # claimed but the log is not visible yet; next pass
    outcome, reason = await coordinator.ensure_claimed(plan, theirs, preimage)
    if outcome != "pending":
        _move(coordinator, plan, "claimed" if outcome == "done" else "failed", reason)


def _move(coordinator: Coordinator, plan: PlanRecord, state: str, reason: str | None) -> PlanRecord:
    if state != plan.state:
        coordinator.store.set_state(plan.plan_id, state, reason)
    return coordinator.store.get(plan.plan_id)
