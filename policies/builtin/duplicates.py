"""DuplicateGuard: the same payment is not authorized twice within a window.

A planner that sees the same invoice on every tick proposes the same transfer on every
tick; each has a new nonce, so a new digest, and rate and spend limits only bound how
often it gets paid. This policy compares what an action *does* (kind, chain, asset,
amount in base units, recipient name and address, function selector) with what it
authorized for the agent within `within`, and denies a repeat. An action that settles a
task (a ``pay_invoice`` or an ``accept_offer``: ``ProposedAction.task``) is compared by
the task alone, whatever its kind: an invoice is paid once even if its amount is edited,
two invoices of one amount are both paid, and an offer is accepted once. It is
remembered by what it does as well, so a plain transfer repeating it is still a
duplicate. An authorized action that then failed or was never sent does not count, so
a retry goes through.

Its rows (one per authorized action of the guarded kinds and intent) are written with the
evaluation's group commit and deleted when the action fails, so a restart keeps them.
Memory holds the window's actions only: older ones are dropped when their intent is
next looked at (an intent never proposed again keeps its few bytes until then).
"""

from __future__ import annotations

import hashlib
import itertools
from collections import deque
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from config.types import Duration
from policies._store import from_us, new_id, to_us
from policies._tables import authorized_intents
from policies.actions import ActionKind, Intent, ProposedAction
from policies.base import ALLOW, Decision, Deny, Policy, PolicyContext, PolicyEnv, as_timedelta

_INSERT = authorized_intents.insert()
_DELETE = authorized_intents.delete().where(authorized_intents.c.id == sa.bindparam("row_id"))
_events = itertools.count()

_TRANSFERS: tuple[ActionKind, ...] = ("transfer",)

_Event = tuple[datetime, int, str, bytes]
"""(authorized at, a sequence number telling apart equal times, row id, digest)."""


class DuplicateGuardParams(BaseModel):
    """How long an authorized payment blocks its repeat, and for which kinds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    within: Duration = Field(default=Decimal(86_400), description="Default 24h.")
    kinds: list[ActionKind] = Field(
        default_factory=lambda: list(_TRANSFERS),
        min_length=1,
        description="Action kinds compared. Swap legs are left out by default: swaps of "
        "one size may repeat, and a refunded leg counts as executed, so guarding legs "
        "blocks a retry for the whole window.",
    )


class DuplicateGuard(Policy):
    """Deny an action that does exactly what one authorized within `within` did."""

    Params = DuplicateGuardParams

    def __init__(self, params: DuplicateGuardParams) -> None:
        super().__init__(params)
        self._window = as_timedelta(params.within)
        self._kinds = frozenset(params.kinds)
        self._seen: dict[str, deque[_Event]] = {}
        self._by_digest: dict[bytes, list[tuple[str, _Event]]] = {}
        self._env: PolicyEnv | None = None

    def attach(self, env: PolicyEnv) -> None:
        """Load what was authorized for this agent within the window."""
        self._env = env
        if env.store is None:
            return
        rows = env.store.read(
            sa.select(authorized_intents)
            .where(
                authorized_intents.c.agent == env.agent.name,
                authorized_intents.c.at_us > to_us(env.clock.now() - self._window),
            )
            .order_by(authorized_intents.c.at_us)
        )
        for row in rows:
            self._remember(row.intent, (from_us(row.at_us), next(_events), row.id, row.digest))

    async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
        """Deny a repeat; otherwise remember this one (kept only if it is authorized)."""
        if action.kind not in self._kinds and action.task is None:
            return ALLOW
        judged, *also = intents_of(action)
        if action.kind not in self._kinds:
            also = []  # a task of an unguarded kind: only the task is remembered
        now = ctx.clock.now()
        earlier = self._live(judged, now)
        if earlier:
            first = earlier[0][0]
            what = (
                f"a payment for {action.task}"
                if action.task is not None
                else f"the same {action.kind} of {action.amount} {action.asset} "
                f"to {action.recipient} on {action.chain}"
            )
            return Deny(
                reason=f"duplicate: {what} was authorized at {first.isoformat()}; "
                f"repeats are denied for {self._window} (DuplicateGuard)"
            )
        for intent in (judged, *also):
            event = (now, next(_events), new_id(), action.digest)
            self._remember(intent, event)
            if self._env is not None:
                row = {
                    "id": event[2],
                    "agent": action.agent,
                    "intent": intent,
                    "digest": action.digest,
                    "at_us": to_us(now),
                }
                self._env.persist(_INSERT, row)
        return ALLOW

    def screen(self, intent: Intent, ctx: PolicyContext) -> str | None:
        """A task already settled (authorized, and not failed) within the window."""
        if intent.task is None:
            return None
        earlier = self._live(task_intent(intent.task), ctx.clock.now())
        if not earlier:
            return None
        return f"{intent.task} was settled at {earlier[0][0].isoformat()} (duplicate)"

    async def on_declined(self, action: ProposedAction, ctx: PolicyContext) -> None:
        """Another policy refused it: it was never authorized, so forget it."""
        self._forget(action.digest, persist=False)

    async def on_failed(self, action: ProposedAction, ctx: PolicyContext, reason: str) -> None:
        """It failed or was never sent: a retry is not a duplicate."""
        self._forget(action.digest, persist=True)

    def _remember(self, intent: str, event: _Event) -> None:
        self._seen.setdefault(intent, deque()).append(event)
        self._by_digest.setdefault(event[3], []).append((intent, event))

    def _live(self, intent: str, now: datetime) -> deque[_Event] | None:
        events = self._seen.get(intent)
        if events is None:
            return None
        cutoff = now - self._window
        while events and events[0][0] <= cutoff:
            self._unlink(events.popleft())
        if not events:
            del self._seen[intent]
            return None
        return events

    def _unlink(self, event: _Event) -> None:
        remembered = self._by_digest.get(event[3], [])
        remembered[:] = [(intent, e) for intent, e in remembered if e is not event]
        if not remembered:
            self._by_digest.pop(event[3], None)

    def _forget(self, digest: bytes, *, persist: bool) -> None:
        for intent, event in self._by_digest.pop(digest, []):
            events = self._seen.get(intent)
            if events is not None and event in events:
                events.remove(event)
                if not events:
                    del self._seen[intent]
            if persist and self._env is not None:
                self._env.persist(_DELETE, {"row_id": event[2]}, always=True)


def intents_of(action: ProposedAction) -> list[str]:
    """What the action does, as hashes; the first is the one judged, all are remembered.

    A payment that settles a task is judged by the task alone (two invoices of one
    amount are two payments; one invoice is paid once even if its amount is edited),
    and also remembered by what it does, so a plain transfer repeating it is denied."""
    what = intent_of(action)
    if action.task is None:
        return [what]
    return [task_intent(action.task), what]


def task_intent(task: str) -> str:
    """The hash a task (`source/id`) is remembered under."""
    return hashlib.sha256(f"task\x00{task}".encode()).hexdigest()


def intent_of(action: ProposedAction) -> str:
    """What the action does, as a hash: every field but the agent, plan, digest and task."""
    what = (
        action.kind,
        action.chain,
        action.asset,
        str(action.amount_base_units),
        action.recipient,
        action.recipient_address,
        action.selector or "",
    )
    return hashlib.sha256("\x00".join(what).encode()).hexdigest()
