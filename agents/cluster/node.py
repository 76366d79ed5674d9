"""One daemon's membership of the cluster: the lease loop and what it tells the runtime.

:class:`ClusterNode` owns the cluster's own engine (with its timeouts), the lease table
the fence, the mint and the scheduler read, and the loop that runs a lease cycle every
third of the TTL. When a cycle wins agents it hands them to the runtime's take-over
(``on_gained``, awaited in a task of its own so renewals go on meanwhile); only when
that has reconciled the agent's journal and plans is the agent *ready*, and only ready
agents tick. Lost agents stop at once, locally, before anything else runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from agents.cluster.fence import LeaseFence
from agents.cluster.lease import (
    CycleResult,
    LeaseStore,
    LeaseTable,
    cluster_engine,
    default_daemon_id,
    local_deadline,
    timeouts,
)
from config import fencing
from config.models import Deployment

log = logging.getLogger(__name__)

Gained = Callable[[dict[str, int], set[str]], Awaitable[None]]
"""The runtime's take-over of agents (with their epochs), of which some were held by
another daemon before (their state must be read again)."""

DAEMON_ID_ENV = "COVENANT_CLUSTER_DAEMON_ID"
"""Overrides `cluster.daemon_id` for one process."""


@dataclass
class ClusterStats:
    """Counters for logs, `cluster status` and the benchmark."""

    cycles: int = 0
    cycle_seconds: float = 0.0
    failed_cycles: int = 0
    gained: int = 0
    lost: int = 0
    takeover_seconds: list[float] = field(default_factory=list)


class ClusterNode:
    """This daemon in the cluster of `deployment` (which must have `cluster:`)."""

    def __init__(self, deployment: Deployment) -> None:
        config = deployment.cluster
        if config is None:
            raise ValueError("ClusterNode needs a deployment with `cluster:`")
        # The variable names one daemon of many started from the same file.
        self.me = os.environ.get(DAEMON_ID_ENV) or config.daemon_id or default_daemon_id()
        self.ttl = float(config.lease_ttl)
        self.table = LeaseTable()
        self.fence = LeaseFence(self.me, self.table)
        self.engine = cluster_engine(deployment.store.url or "", self.ttl)
        self.store = LeaseStore(self.engine, self.me, [a.name for a in deployment.agents], self.ttl)
        self.settings = timeouts(self.ttl)
        """Server settings for the store's own connections too (config/store.py)."""
        self.stats = ClusterStats()
        self.on_gained: Gained | None = None
        self.on_lost: Callable[[set[str]], None] | None = None
        self.on_ready: Callable[[set[str]], None] | None = None
        self.busy: Callable[[str], bool] = lambda _agent: False
        self._ready: set[str] = set()
        self._recovering: dict[str, asyncio.Task[None]] = {}
        self._inherited: set[str] = set()
        self._releasing: set[str] = set()

    def epoch(self, agent: str) -> int | None:
        """The lease epoch of `agent` if this daemon may act for it now (for the mint and
        the signers): held, within its local deadline, and the epoch the running work
        pinned (:meth:`writing_for`), if it pinned one."""
        epoch = self.table.epoch(agent)
        pinned = fencing.current().get(agent)
        return None if pinned is not None and pinned != epoch else epoch

    def writing_for(self, *agents: str) -> contextlib.AbstractContextManager[None]:
        """Fence the block's writes for `agents` under the epochs held now, so work that
        outlives its lease cannot finish under a later one (``config/fencing.py``)."""
        held = {a: epoch for a in agents if (epoch := self.table.believed(a)) is not None}
        return fencing.writing_for(*agents, epochs=held)

    def ready(self, agent: str) -> bool:
        """Whether `agent` is held, within its local deadline, and taken over."""
        return agent in self._ready and self.table.holds(agent)

    def ready_agents(self) -> list[str]:
        """Every agent that may tick here now."""
        return [agent for agent in self.table.agents() if agent in self._ready]

    def register(self) -> None:
        """Create the lease rows and announce this daemon (before the first cycle)."""
        self.store.register()

    async def run(self, stop: asyncio.Event) -> None:
        """Run lease cycles every TTL/3 until `stop`; then hand back what is held."""
        try:
            while not stop.is_set():
                await self.cycle()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.ttl / 3)
        finally:
            tasks = set(self._recovering.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def cycle(self) -> CycleResult | None:
        """One lease cycle; None if the database could not be reached (the leases then
        lapse by themselves, locally at their deadline, at the database at expiry)."""
        started = time.monotonic()
        before = set(self.table.agents())
        releasing, self._releasing = self._releasing, set()
        try:
            result = await asyncio.to_thread(self.store.cycle, self._idle, before, releasing)
        except SQLAlchemyError as exc:
            self._releasing |= releasing  # still ours in the store: release them next time
            self.stats.failed_cycles += 1
            log.warning("cluster: lease cycle of %s failed: %s", self.me, exc)
            return None
        self.stats.cycles += 1
        self.stats.cycle_seconds += time.monotonic() - started
        self.table.set(result.held, local_deadline(started, self.ttl))
        # Surplus still idle now (no tick can start while this runs) stops here at once
        # and is released in the store by the next cycle.
        self._releasing = {agent for agent in result.surplus if self._idle(agent)}
        self.table.drop(self._releasing)
        lost = result.lost | self._releasing | {a for a in self._ready if a not in result.held}
        if lost:
            self._lose(lost)
        self.stats.gained += len(result.gained)
        self._inherited |= result.inherited
        # Won now, or won earlier by a take-over that failed: taken over (again), all of
        # this cycle's in one batch (one reconciliation per chain, not one per agent),
        # before they tick here.
        batch = {
            agent: epoch
            for agent, epoch in result.held.items()
            if agent not in self._ready
            and agent not in self._recovering
            and agent not in self._releasing
        }
        if batch:
            task = asyncio.create_task(self._take_over(batch))
            self._recovering.update(dict.fromkeys(batch, task))
        return result

    def _idle(self, agent: str) -> bool:
        return not self.busy(agent) and agent not in self._recovering

    def _lose(self, agents: set[str]) -> None:
        self.stats.lost += len(agents)
        self._ready -= agents
        # A take-over in flight goes on for its other agents; writes for these are
        # fenced, which fails it, and the next cycle takes over what is still held.
        log.warning("cluster: daemon %s lost agent(s) %s", self.me, ", ".join(sorted(agents)))
        if self.on_lost is not None:
            self.on_lost(agents)

    async def _take_over(self, agents: dict[str, int]) -> None:
        started = time.monotonic()
        # A retried agent may have been another daemon's meanwhile: read it again too.
        inherited = {agent for agent in agents if agent in self._inherited}
        try:
            if self.on_gained is not None:
                await self.on_gained(agents, inherited)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Not ready: these agents do not tick here; the next cycle tries again.
            log.exception("cluster: take-over of %d agent(s) failed", len(agents))
            return
        finally:
            for agent in agents:
                self._recovering.pop(agent, None)
        ready = {agent for agent, epoch in agents.items() if self.table.believed(agent) == epoch}
        self._ready |= ready
        self._inherited -= ready
        self.stats.takeover_seconds.append(time.monotonic() - started)
        if ready and self.on_ready is not None:
            self.on_ready(ready)

    def leave(self) -> None:
        """Hand every held agent back and deregister (a graceful stop)."""
        held = [*self.table.agents(), *self._releasing]
        self.table.drop(held)
        self._ready.clear()
        try:
            self.store.leave(held)
        except SQLAlchemyError as exc:  # they expire by themselves within a TTL
            log.warning("cluster: could not hand back the leases of %s: %s", self.me, exc)

    def close(self) -> None:
        """Dispose of the cluster's engine."""
        self.engine.dispose()
