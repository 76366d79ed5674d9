"""ConfidenceBreaker: a circuit breaker driven by plan confidence and outcomes.

Closed: actions pass if their plan's derived confidence is high enough and their size is
ordinary. The breaker opens on a plan far below the threshold, on `max_low_plans`
low-confidence plans within `low_window`, on `max_failures` consecutive execution
failures, or on an amount far above the agent's recent history. Open: nothing passes
until `cooldown` has elapsed. Half-open: exactly `probes` actions pass, each at most
`probe_fraction` of the agent's typical amount; when all succeed the breaker closes,
when one fails it opens again. State is written through to the store, so a restart
keeps it; `breakers reset AGENT` closes it by hand.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from statistics import median
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.types import Duration
from policies._store import from_us, to_us
from policies._tables import breaker_state
from policies.actions import ProposedAction
from policies.base import (
    ALLOW,
    Decision,
    Deny,
    Policy,
    PolicyContext,
    PolicyEnv,
    as_timedelta,
)

State = Literal["closed", "open", "half_open"]

RESET_REASON = "reset by the operator"
"""The reason `breakers reset` stores; a running engine adopts a row with it."""

_INSERT = breaker_state.insert()
_UPDATE = (
    breaker_state.update()
    .where(
        breaker_state.c.agent == sa.bindparam("b_agent"),
        breaker_state.c.version < sa.bindparam("v_version"),
    )
    .values(
        {
            c.name: sa.bindparam(f"v_{c.name}")
            for c in breaker_state.c
            if c.name not in ("agent", "resets")
        }
    )
)


class ConfidenceBreakerParams(BaseModel):
    """Thresholds, cool-down and probes; see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_confidence: Decimal = Field(ge=0, le=1, description="Below: deny, count as low.")
    open_below: Decimal | None = Field(
        default=None, ge=0, le=1, description="Below: open at once (default half of min)."
    )
    max_low_plans: int = Field(default=3, ge=1)
    low_window: Duration = Decimal(3600)
    max_failures: int = Field(default=3, ge=1)
    anomaly_factor: Decimal = Field(default=Decimal(10), gt=1)
    anomaly_min_history: int = Field(default=5, ge=1)
    cooldown: Duration = Decimal(300)
    probes: int = Field(default=1, ge=1, le=100)
    probe_fraction: Decimal = Field(default=Decimal("0.5"), gt=0, le=1)

    @model_validator(mode="after")
    def _thresholds(self) -> ConfidenceBreakerParams:
        if self.open_below is not None and self.open_below > self.min_confidence:
            raise ValueError(
                f"open_below {self.open_below} must not exceed min_confidence {self.min_confidence}"
            )
        return self


@dataclass(slots=True)
class BreakerState:
    """The persisted state of one agent's breaker."""

    state: State = "closed"
    reason: str = ""
    opened_at: datetime | None = None
    probes_granted: int = 0
    probes_succeeded: int = 0
    failures: int = 0
    low_plans: deque[tuple[datetime, str]] = field(default_factory=deque)
    version: int = 0


class ConfidenceBreaker(Policy):
    """Stop an agent whose plans are unsure, whose actions fail, or whose size is odd."""

    Params = ConfidenceBreakerParams

    def __init__(self, params: ConfidenceBreakerParams) -> None:
        super().__init__(params)
        self._p = params
        self._open_below = (
            params.open_below if params.open_below is not None else params.min_confidence / 2
        )
        self._low_window = as_timedelta(params.low_window)
        self._cooldown = as_timedelta(params.cooldown)
        self._s = BreakerState()
        self._probes: set[bytes] = set()
        self._seen_resets = 0
        self._env: PolicyEnv | None = None
        self._agent = ""

    @property
    def state(self) -> BreakerState:
        """The current state (read-only use, e.g. by the CLI and tests)."""
        return self._s

    def attach(self, env: PolicyEnv) -> None:
        """Load (or create) the persisted state; reload it when the CLI resets it."""
        self._env, self._agent = env, env.agent.name
        if env.store is None:
            return
        self._load(env)
        env.on_control_change(lambda: self._reload(env))

    async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
        """Deny while open; judge confidence and size; hand out probes when half-open."""
        now = ctx.clock.now()
        if self._s.state == "open" and not self._cooled(now):
            return self._deny_open()
        problem = self._confidence_problem(ctx, now) or self._anomaly(action, ctx)
        if problem is not None:
            return Deny(reason=problem)
        if self._s.state == "half_open":
            return self._probe(action, ctx)
        return ALLOW

    async def on_plan(self, ctx: PolicyContext) -> None:
        """Count a low-confidence plan even when it has no action to deny."""
        if self._s.state == "closed" and ctx.evidence is not None:
            self._confidence_problem(ctx, ctx.clock.now())

    async def on_declined(self, action: ProposedAction, ctx: PolicyContext) -> None:
        """A probe that another policy refused is not a probe: give it back."""
        if action.digest in self._probes:
            self._probes.discard(action.digest)
            self._s.probes_granted -= 1

    async def on_executed(self, action: ProposedAction, ctx: PolicyContext) -> None:
        """Success resets the failure count; enough successful probes close the breaker."""
        self._s.failures = 0
        if action.digest in self._probes:
            self._probes.discard(action.digest)
            self._s.probes_succeeded += 1
            if self._s.probes_succeeded >= self._p.probes:
                self._set("closed", "all probes succeeded", ctx.clock.now())
                return
        self._save(always=True)

    async def on_failed(self, action: ProposedAction, ctx: PolicyContext, reason: str) -> None:
        """A failed probe reopens; `max_failures` failures in a row open."""
        self._s.failures += 1
        now = ctx.clock.now()
        if action.digest in self._probes:
            self._probes.discard(action.digest)
            self._open(now, f"a probe failed: {reason}")
        elif self._s.state == "closed" and self._s.failures >= self._p.max_failures:
            self._open(now, f"{self._s.failures} consecutive execution failures, last: {reason}")
        else:
            self._save(always=True)

    async def on_price_failure(
        self, action: ProposedAction, ctx: PolicyContext, reason: str
    ) -> None:
        """No fresh, agreed price is a failure like a failed execution: an agent acting
        on prices nobody can confirm is stopped after `max_failures` of them in a row."""
        await self.on_failed(action, ctx, reason)

    def _cooled(self, now: datetime) -> bool:
        opened = self._s.opened_at
        if opened is not None and now < opened + self._cooldown:
            return False
        self._set("half_open", f"cool-down over; {self._p.probes} probe(s) allowed", now)
        return True

    def _deny_open(self) -> Deny:
        opened = self._s.opened_at
        until = (opened + self._cooldown).isoformat() if opened else "unknown"
        return Deny(
            reason=f"circuit breaker open for {self._agent!r}: {self._s.reason}; half-opens at "
            f"{until}, or reset with `breakers reset {self._agent}`"
        )

    def _confidence_problem(self, ctx: PolicyContext, now: datetime) -> str | None:
        evidence = ctx.evidence
        if evidence is None:
            return "no confidence evidence for the plan; the breaker allows nothing without it"
        score = evidence.score
        if score < self._open_below:
            self._open(now, f"plan {ctx.plan_id} confidence {score} below {self._open_below}")
            return f"confidence {score} is far below {self._p.min_confidence}; breaker opened"
        if score >= self._p.min_confidence:
            return None
        if self._count_low(ctx.plan_id, now) >= self._p.max_low_plans:
            window = self._low_window
            self._open(now, f"{self._p.max_low_plans} low-confidence plans within {window}")
            return f"confidence {score} below {self._p.min_confidence}; breaker opened"
        self._save(always=True)
        return f"confidence {score} is below the minimum {self._p.min_confidence}"

    def _count_low(self, plan_id: str, now: datetime) -> int:
        low = self._s.low_plans
        while low and low[0][0] <= now - self._low_window:
            low.popleft()
        if all(seen != plan_id for _, seen in low):
            low.append((now, plan_id))
        return len(low)

    def _anomaly(self, action: ProposedAction, ctx: PolicyContext) -> str | None:
        history = ctx.spend.recent_amounts(action.agent, action.asset, 20)
        if len(history) < self._p.anomaly_min_history:
            return None
        typical = median(history)
        if typical > 0 and action.amount > typical * self._p.anomaly_factor:
            factor = self._p.anomaly_factor
            why = f"{action.amount} {action.asset} is over {factor}x the typical {typical}"
            self._open(ctx.clock.now(), f"anomalous size: {why}")
            return f"anomalous size: {why}; breaker opened"
        return None

    def _probe(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
        if self._s.probes_granted >= self._p.probes:
            return Deny(
                reason=f"breaker half-open: all {self._p.probes} probe(s) are in flight; "
                "waiting for their outcome"
            )
        history = ctx.spend.recent_amounts(action.agent, action.asset, 20)
        if history:
            cap = median(history) * self._p.probe_fraction
            if action.amount > cap:
                return Deny(
                    reason=f"breaker half-open: a probe may move at most {cap} {action.asset} "
                    f"({self._p.probe_fraction} of the typical amount), not {action.amount}"
                )
        self._s.probes_granted += 1
        self._probes.add(action.digest)
        self._save(always=False)
        return ALLOW

    def _open(self, now: datetime, reason: str) -> None:
        self._probes.clear()
        self._set("open", reason, now)

    def _set(self, state: State, reason: str, now: datetime) -> None:
        s = self._s
        s.state, s.reason = state, reason
        s.probes_granted = s.probes_succeeded = 0
        if state == "open":
            s.opened_at = now
        if state == "closed":
            s.failures = 0
            s.low_plans.clear()
        self._save(always=True, now=now)

    def _save(self, *, always: bool, now: datetime | None = None) -> None:
        if self._env is None:
            return
        self._s.version += 1
        row = _row(self._s, now or self._env.clock.now())
        params = {"b_agent": self._agent, **{f"v_{k}": v for k, v in row.items()}}
        self._env.persist(_UPDATE, params, always=always)

    def _load(self, env: PolicyEnv) -> None:
        assert env.store is not None
        row = self._read(env)
        if row is None:
            row_values = {"agent": self._agent, **_row(self._s, env.clock.now())}
            env.store.write_now([(_INSERT, row_values)])
            return
        self._s = _state(row)
        self._seen_resets = row.resets
        if self._s.state == "half_open" and self._s.probes_granted:
            # Their outcomes died with the previous process: count them as failed.
            # Outside an evaluation the store writes this at once.
            self._open(env.clock.now(), "restarted while probes were in flight")

    def _reload(self, env: PolicyEnv) -> None:
        # Only an operator's reset is adopted: the rest of the stored row may lag behind
        # memory while evaluations wait for their commit.
        row = self._read(env)
        if row is None or row.resets <= self._seen_resets:
            return
        self._seen_resets = row.resets
        version = max(self._s.version, row.version)
        self._s = BreakerState(reason=RESET_REASON, version=version)
        self._probes.clear()

    def _read(self, env: PolicyEnv) -> sa.Row[Any] | None:
        assert env.store is not None
        rows = env.store.read(sa.select(breaker_state).where(breaker_state.c.agent == self._agent))
        return rows[0] if rows else None


def _row(s: BreakerState, now: datetime) -> dict[str, object]:
    return {
        "state": s.state,
        "reason": s.reason,
        "opened_at_us": to_us(s.opened_at) if s.opened_at else None,
        "probes_granted": s.probes_granted,
        "probes_succeeded": s.probes_succeeded,
        "failures": s.failures,
        "low_plans": json.dumps([[to_us(at), plan] for at, plan in s.low_plans]),
        "updated_at_us": to_us(now),
        "version": s.version,
    }


def _state(row: sa.Row[object]) -> BreakerState:
    low = deque((from_us(at), plan) for at, plan in json.loads(row.low_plans))
    opened = from_us(row.opened_at_us) if row.opened_at_us is not None else None
    return BreakerState(
        row.state,
        row.reason,
        opened,
        row.probes_granted,
        row.probes_succeeded,
        row.failures,
        low,
        row.version,
    )
