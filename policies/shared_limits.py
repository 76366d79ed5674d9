"""Deployment-wide spend limits across daemons (cluster mode), judged by the database.

A daemon's ledger knows in memory what its own engine reserved since it loaded the
store. With one daemon per store that is everything, and a SpendLimit of scope
deployment is judged from memory. In cluster mode other daemons spend at the same time
for the agents they hold, so memory cannot judge such a limit: two daemons could each
see room for the last unit of it.

So in cluster mode the limit is judged where every daemon's reservations meet, inside
the policy group commit's transaction (an admission, `config/group_commit.py`):

* a transaction that would reserve spending of an agent under such a limit first takes
  one transaction-scoped lock (`pg_advisory_xact_lock`; released at commit or rollback,
  so it never outlives a transaction, and a paused daemon's open transaction is ended by
  the server's `idle_in_transaction_session_timeout`). It decides no ownership: it only
  queues these transactions one after another across daemons;
* under it, the deployment's totals are read from `spend_ledger` itself (every daemon's
  committed reservations, settled or not, released ones excepted), exactly, in
  NUMERIC;
* the transaction's reservations are then admitted in order while they fit; an
  evaluation whose reservation does not fit fails with :class:`OverDeploymentLimit`,
  unwritten, and the engine denies it naming the limit.

Since each such transaction reads totals that include every one committed before it,
the ledger's sum never exceeds a limit, whatever the number of daemons. Spending of an
agent under no such limit is counted but takes no lock, as one daemon would count it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from policies._store import Row
from policies._tables import spend_ledger

USD = "$USD"
"""The key of a USD limit (an asset symbol never starts with `$`)."""

LOCK_KEY = 0x636F76_5350454E44  # "cov" "SPEND": one lock for the deployment's spending
_LOCK = sa.text("SELECT pg_advisory_xact_lock(:key)")


class OverDeploymentLimit(Exception):
    """An evaluation's reservation does not fit under a deployment-wide limit."""


@dataclass(frozen=True, slots=True)
class Cap:
    """One deployment-wide limit: at most `limit` of `key` (an asset symbol, or USD)
    spent by all agents together within `length`."""

    length: timedelta
    key: str
    limit: Decimal


class SharedLimits:
    """The deployment-wide limits of each agent, admitted in the store (see the module)."""

    def __init__(self, insert: object) -> None:
        self._insert = insert  # the ledger's staged INSERT: the rows that reserve spending
        self._caps: dict[str, tuple[Cap, ...]] = {}

    def cap(self, agent: str, caps: Sequence[Cap]) -> None:
        """Judge `agent`'s spending against `caps` too (a policy calls it on attach)."""
        self._caps[agent] = tuple(dict.fromkeys([*self._caps.get(agent, ()), *caps]))

    def forget(self, agent: str) -> None:
        """Drop `agent`'s caps, before its policies are attached afresh."""
        self._caps.pop(agent, None)

    def admit(self, connection: Connection, commits: Sequence[list[Row]]) -> list[Exception | None]:
        """For each commit, None if its reservations fit, else why not."""
        reserved = [
            [params for statement, params in rows if statement is self._insert] for rows in commits
        ]
        rows = [row for found in reserved for row in found]
        caps = {cap for row in rows for cap in self._caps.get(str(row["agent"]), ())}
        answers: list[Exception | None] = [None] * len(commits)
        if not caps:
            return answers
        connection.execute(_LOCK, {"key": LOCK_KEY})
        # One read per limit, over the window of the earliest reservation: later ones'
        # windows start a little later, so this counts slightly more, never less.
        earliest = min(int(str(row["at_us"])) for row in rows)
        totals = {cap: _stored_total(connection, cap, earliest) for cap in caps}
        for index, found in enumerate(reserved):
            added: dict[Cap, Decimal] = {}
            refusal = None
            for row in found:
                for cap in caps:
                    value = _value(row, cap.key)
                    if value is not None:
                        added[cap] = added.get(cap, Decimal(0)) + value
                mine = self._caps.get(str(row["agent"]), ())
                refusal = refusal or _over(row, mine, totals, added)
            if refusal is not None:
                answers[index] = refusal
                continue
            for cap, value in added.items():
                totals[cap] += value
        return answers


def _stored_total(connection: Connection, cap: Cap, since_at_us: int) -> Decimal:
    column = spend_ledger.c.usd if cap.key == USD else spend_ledger.c.amount
    query = sa.select(sa.func.coalesce(sa.func.sum(sa.cast(column, sa.Numeric)), 0)).where(
        spend_ledger.c.status != "released",
        spend_ledger.c.at_us > since_at_us - _us(cap.length),
    )
    if cap.key != USD:
        query = query.where(spend_ledger.c.asset == cap.key)
    return Decimal(connection.execute(query).scalar_one())


def _over(
    row: dict[str, object],
    caps: Sequence[Cap],
    totals: dict[Cap, Decimal],
    added: dict[Cap, Decimal],
) -> OverDeploymentLimit | None:
    for cap in caps:
        value = _value(row, cap.key)
        if value is None:  # a USD limit and no USD value: it cannot be shown to fit
            return OverDeploymentLimit(
                f"{row['amount']} {row['asset']} has no USD value, so it cannot be shown to "
                f"fit the deployment's limit ${cap.limit} in {cap.length}"
            )
        total = totals[cap] + added.get(cap, Decimal(0))
        if total > cap.limit:
            unit = "$" if cap.key == USD else ""
            asset = "" if cap.key == USD else f" {cap.key}"
            return OverDeploymentLimit(
                f"{row['amount']} {row['asset']} would bring the deployment's spending "
                f"(every daemon's agents) to {unit}{total}{asset} in {cap.length}, above "
                f"the limit {unit}{cap.limit}{asset}"
            )
    return None


def _value(row: dict[str, object], key: str) -> Decimal | None:
    if key == USD:
        return None if row["usd"] is None else Decimal(str(row["usd"]))
    return Decimal(str(row["amount"])) if row["asset"] == key else Decimal(0)


def _us(length: timedelta) -> int:
    return length // timedelta(microseconds=1)
