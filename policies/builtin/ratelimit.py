"""RateLimit: at most `max_actions` authorized actions per rolling window.

Nothing of its own is written: every authorized action already has a row in the spend
ledger (released ones too, since a failed attempt still used its slot), so a restart
rebuilds the window from those rows.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from config.types import Duration
from policies._store import from_us, to_us
from policies._tables import spend_ledger
from policies.actions import ProposedAction
from policies.base import ALLOW, Decision, Deny, Policy, PolicyContext, PolicyEnv, as_timedelta

_events = itertools.count()
"""Tells apart two events at the same instant, so a declined one removes only itself."""


class RateLimitParams(BaseModel):
    """`max_actions` per `per` (e.g. 3 per 1h)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_actions: int = Field(ge=1, le=1_000_000)
    per: Duration


class RateLimit(Policy):
    """Deny once the agent has had `max_actions` actions authorized within `per`."""

    Params = RateLimitParams

    def __init__(self, params: RateLimitParams) -> None:
        super().__init__(params)
        self._max = params.max_actions
        self._window = as_timedelta(params.per)
        self._times: deque[tuple[datetime, int]] = deque()
        self._pending: dict[bytes, list[tuple[datetime, int]]] = {}

    def attach(self, env: PolicyEnv) -> None:
        """Load this agent's authorized actions within the window from the ledger."""
        if env.store is None:
            return
        since = to_us(env.clock.now() - self._window)
        ledger = spend_ledger.c
        rows = env.store.read(
            sa.select(ledger.at_us)
            .where(ledger.agent == env.agent.name, ledger.at_us > since)
            .order_by(ledger.at_us)
        )
        self._times.extend((from_us(row.at_us), next(_events)) for row in rows)

    async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
        """Count this action unless the window is full."""
        now = ctx.clock.now()
        cutoff = now - self._window
        while self._times and self._times[0][0] <= cutoff:
            self._times.popleft()
        if len(self._times) >= self._max:
            retry = self._times[0][0] + self._window - now
            return Deny(
                reason=f"rate limit: {self._max} actions per {self._window} already used; "
                f"next slot in {retry}"
            )
        event = (now, next(_events))
        self._times.append(event)
        self._pending.setdefault(action.digest, []).append(event)
        return ALLOW

    async def on_declined(self, action: ProposedAction, ctx: PolicyContext) -> None:
        """Give the slot back: the action was not authorized."""
        events = self._pending.get(action.digest)
        if events:
            event = events.pop()
            if not events:
                del self._pending[action.digest]
            with contextlib.suppress(ValueError):  # it may have aged out already
                self._times.remove(event)

    async def on_executed(self, action: ProposedAction, ctx: PolicyContext) -> None:
        """Forget the pending marker; the slot stays used."""
        self._pending.pop(action.digest, None)

    async def on_failed(self, action: ProposedAction, ctx: PolicyContext, reason: str) -> None:
        """A failed attempt still used its slot (retries must not bypass the limit)."""
        self._pending.pop(action.digest, None)
