"""The cluster's fence: a store write for an agent commits only under its live lease.

Installed on the store's engine (``config.fencing.install``), so every transaction that
writes for an agent asks :meth:`LeaseFence.held` on its own connection just before it
commits; see ``config/fencing.py`` for why there and how writes are attributed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from agents.cluster.lease import LeaseTable
from config.fencing import Fenced

log = logging.getLogger(__name__)

UNFENCED_ENV = "COVENANT_TEST_CLUSTER_UNFENCED"
"""Test-only: "1" switches fencing off (database check, local guard and signers' epoch
check), for the acceptance test's negative control. Never set it in production."""

RECORD_ENV = "COVENANT_TEST_CLUSTER_RECORD_WRITES"
"""Test-only: "1" records every fenced commit's (agent, epoch, owner, time) in
``cluster_writes`` for the acceptance test's checker."""

_HELD = sa.text(
    "SELECT agent, epoch FROM cluster_leases WHERE owner = :me AND expires_at > now() "
    "AND agent = ANY(:agents) FOR SHARE"
)
_RECORD = sa.text(
    "INSERT INTO cluster_writes (agent, epoch, owner, at) "
    "SELECT a.agent, a.epoch, :me, clock_timestamp() "
    "FROM unnest(CAST(:agents AS text[]), CAST(:epochs AS bigint[])) AS a(agent, epoch)"
)


class LeaseFence:
    """Answers, inside a store transaction, which agents daemon `me` still holds."""

    def __init__(self, me: str, leases: LeaseTable) -> None:
        self.me = me
        self.leases = leases
        self.enabled = os.environ.get(UNFENCED_ENV) != "1"
        self.record = os.environ.get(RECORD_ENV) == "1"
        self.rejections = 0
        """Writes refused so far (agents, counted once per refused transaction)."""
        if not self.enabled:
            leases.unguarded = True
            log.warning("cluster fencing is OFF (%s=1): a test-only setting", UNFENCED_ENV)

    def held(self, connection: Connection, agents: Collection[str]) -> dict[str, int]:
        """Of `agents`, those held by this daemon at the epoch it believes, by the
        database's clock, with that epoch; their lease rows stay share-locked until the
        transaction ends, so no claim can slip in between this check and the commit."""
        believed = {agent: self.leases.believed(agent) for agent in agents}
        kept: dict[str, int]
        if not self.enabled:
            kept = {agent: epoch for agent, epoch in believed.items() if epoch is not None}
        else:
            wanted = [agent for agent, epoch in believed.items() if epoch is not None]
            params = {"me": self.me, "agents": wanted}
            rows = connection.execute(_HELD, params).all() if wanted else []
            kept = {row.agent: row.epoch for row in rows if row.epoch == believed[row.agent]}
        if self.record and kept:
            ordered = sorted(kept)
            connection.execute(
                _RECORD,
                {"me": self.me, "agents": ordered, "epochs": [kept[a] for a in ordered]},
            )
        return kept

    def refusal(self, agents: Collection[str]) -> Fenced:
        """The error of a write for `agents` this daemon no longer holds."""
        self.rejections += 1
        names = ", ".join(sorted(agents))
        epochs = ", ".join(f"{a}: {self.leases.believed(a)}" for a in sorted(agents))
        log.warning("fenced: daemon %s wrote for %s without their leases", self.me, names)
        return Fenced(
            f"fenced: daemon {self.me} no longer holds the lease of agent(s) {names} at "
            f"the epoch it acted under ({epochs}); nothing of this write was stored. "
            "Another daemon ticks them now (`cluster status` shows who)",
            agents,
        )
