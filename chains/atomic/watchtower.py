"""The watchtower: on start and then periodically, drive every open plan forward.

A restarted daemon starts one watchtower over the coordinators of its agents; its first
sweep finishes (or refunds) every plan a crash interrupted, and every sweep also reads
the legs of settled plans a counterparty has yet to claim or refund. It holds no state
of its own: everything it needs is in the coordinators' journal and on chain.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from chains.atomic.coordinator import Coordinator
from chains.atomic.store import PlanRecord

log = logging.getLogger(__name__)


class Watchtower:
    """Sweeps the open plans of every coordinator every `interval` seconds."""

    def __init__(self, coordinators: Sequence[Coordinator], *, interval: float = 30) -> None:
        self.coordinators = list(coordinators)
        self.interval = interval
        self._resent = False

    async def sweep(self) -> list[PlanRecord]:
        """One pass over every open plan; returns the plans still open afterwards.

        Agents are swept concurrently, each agent's plans one after another: a drive can
        wait a minute for a transaction to become final, and one agent's slow chain must
        not push another agent's plans past their deadlines. An agent's own transactions
        queue behind each other by nonce anyway, so its plans gain nothing from running
        side by side, and its journal stays in a simple order.
        """
        if not self._resent:  # the first sweep after a start: a crash may have left some
            await asyncio.gather(*(c.resend_unsent() for c in self.coordinators))
            self._resent = True
        swept = await asyncio.gather(*(self._sweep(c) for c in self.coordinators))
        return [plan for plans in swept for plan in plans]

    @staticmethod
    async def _sweep(coordinator: Coordinator) -> list[PlanRecord]:
        still_open = []
        agent = coordinator.party.name
        for plan in coordinator.store.plans(agent=agent, open_only=True):
            driven = await Watchtower._drive(coordinator, plan)
            if not driven.terminal:
                still_open.append(driven)
        # Settled plans whose legs a counterparty may still claim or refund: followed
        # (read only) so their stored leg states match the chain.
        for plan in coordinator.store.unsettled(agent=agent):
            await Watchtower._drive(coordinator, plan)
        return still_open

    @staticmethod
    async def _drive(coordinator: Coordinator, plan: PlanRecord) -> PlanRecord:
        try:
            return await coordinator.drive(plan.plan_id)
        except Exception:  # one broken plan must not stall every other refund
            log.exception("watchtower: plan %s failed this sweep", plan.plan_id)
            return plan

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep now and every `interval` seconds until `stop` is set."""
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:  # the tower must outlive one bad sweep; the cause is logged
                log.exception("watchtower sweep failed; retrying in %ss", self.interval)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                continue

    async def settle(self, *, timeout: float, pause: float = 0.1) -> list[PlanRecord]:
        """Sweep until no plan is open or `timeout` seconds pass; the plans still open."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            still_open = await self.sweep()
            if not still_open or loop.time() > deadline:
                return still_open
            await asyncio.sleep(pause)
