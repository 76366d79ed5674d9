"""Rolling spend never exceeds its limits: concurrent evaluations, failures, restarts,
and a second engine opening the same store while the first still runs."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy.engine import Engine as SqlEngine

from config.store import open_store
from policies import Authorized, Denied, Outcome, PolicyContext, PolicyEngine, ProposedAction
from policies.testing import FakeClock, make_action, make_deployment, make_evidence
from tests.policies._policy_helpers import fresh_store_url

DAY_LIMIT = Decimal("1")
HOUR_LIMIT = Decimal("0.5")
PER_TX = Decimal("0.3")
POLICIES = [
    {
        "SpendLimit": {
            "per_transaction": {"ETH": str(PER_TX)},
            "per_day": {"ETH": str(DAY_LIMIT)},
            "windows": [{"per": "1h", "limits": {"ETH": str(HOUR_LIMIT)}}],
        }
    }
]


@dataclass
class Spent:
    at: datetime
    amount: Decimal
    action: ProposedAction
    released: bool = False
    done: bool = False


class SpendMachine(RuleBasedStateMachine):
    """Model: the authorized, not released amounts; the engine must keep them in limit."""

    @initialize()
    def start(self) -> None:
        self.dir = tempfile.mkdtemp()
        self.url = fresh_store_url(self.dir)
        self.clock = FakeClock()
        # One loop per run: asyncio.run per step would start a fresh executor thread.
        self.loop = asyncio.new_event_loop()
        self.deployment = make_deployment(POLICIES)
        self.spent: list[Spent] = []
        self.serial = 0
        self.superseded: list[tuple[SqlEngine, PolicyEngine]] = []
        self._open()

    def _open(self) -> None:
        self.store = open_store(self.url)
        self.engine = PolicyEngine(self.deployment, self.store, clock=self.clock)

    def teardown(self) -> None:
        if hasattr(self, "loop"):
            self.loop.close()
        if hasattr(self, "store"):
            for store, _ in self.superseded:
                store.dispose()
            self.store.dispose()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _ctx(self) -> PolicyContext:
        return self.engine.context("payer", plan_id="p", evidence=make_evidence())

    @rule(millis=st.lists(st.integers(1, 400), min_size=1, max_size=12))
    def evaluate_concurrently(self, millis: list[int]) -> None:
        actions = []
        for amount in millis:
            self.serial += 1
            digest = self.serial.to_bytes(32, "big")
            actions.append(make_action(amount=Decimal(amount) / 1000, plan_id="p", digest=digest))
        ctx = self._ctx()

        async def run() -> list[Outcome]:
            return await asyncio.gather(*(self.engine.evaluate(a, ctx) for a in actions))

        # Each evaluation checks and reserves before it first waits (for its commit), so
        # concurrent evaluations are decided in list order: the model predicts each one.
        for action, outcome in zip(actions, self.loop.run_until_complete(run()), strict=True):
            fits = action.amount <= PER_TX and all(
                self._model_total(length) + action.amount <= limit
                for length, limit in (
                    (timedelta(days=1), DAY_LIMIT),
                    (timedelta(hours=1), HOUR_LIMIT),
                )
            )
            assert isinstance(outcome, Authorized) == fits, (action.amount, outcome)
            if fits:
                self.spent.append(Spent(self.clock.now(), action.amount, action))

    @rule(data=st.data(), success=st.booleans())
    def finish_one(self, data: st.DataObject, success: bool) -> None:
        open_items = [item for item in self.spent if not item.done]
        if not open_items:
            return
        item = data.draw(st.sampled_from(open_items))
        item.done = True
        ctx = self._ctx()
        if success:
            self.loop.run_until_complete(self.engine.executed(item.action, ctx))
        else:
            item.released = True
            self.loop.run_until_complete(self.engine.failed(item.action, ctx, "reverted"))

    @rule(minutes=st.integers(1, 26 * 60))
    def advance(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @rule()
    def restart(self) -> None:
        self.store.dispose()
        self._open()
        # Reservations whose outcome the old process never reported stay counted.
        for item in self.spent:
            item.done = True

    @rule()
    def second_engine(self) -> None:
        # A second daemon opens the same store while the first still runs.
        self.superseded.append((self.store, self.engine))
        self._open()
        for item in self.spent:
            item.done = True

    @rule(millis=st.lists(st.integers(1, 400), min_size=1, max_size=4))
    def superseded_engine_evaluates(self, millis: list[int]) -> None:
        if not self.superseded:
            return
        _, engine = self.superseded[-1]
        ctx = engine.context("payer", plan_id="p", evidence=make_evidence())
        actions = []
        for amount in millis:
            self.serial += 1
            digest = self.serial.to_bytes(32, "big")
            actions.append(make_action(amount=Decimal(amount) / 1000, plan_id="p", digest=digest))

        async def run() -> list[Outcome]:
            return await asyncio.gather(*(engine.evaluate(a, ctx) for a in actions))

        # Whatever its memory says, an engine that lost the store authorizes nothing.
        for outcome in self.loop.run_until_complete(run()):
            assert isinstance(outcome, Denied), outcome

    def _model_total(self, length: timedelta) -> Decimal:
        cutoff = self.clock.now() - length
        return sum((i.amount for i in self.spent if i.at > cutoff and not i.released), Decimal(0))

    @invariant()
    def within_limits_and_in_agreement(self) -> None:
        if not hasattr(self, "engine"):
            return
        now = self.clock.now()
        for length, limit in ((timedelta(days=1), DAY_LIMIT), (timedelta(hours=1), HOUR_LIMIT)):
            model = self._model_total(length)
            assert model <= limit
            assert self.engine.ledger.window_total("payer", "ETH", now, length) == model


SpendMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
TestSpendNeverExceedsItsLimit = SpendMachine.TestCase
