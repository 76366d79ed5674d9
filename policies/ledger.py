"""The spend ledger: every authorized action, as a reservation, then settled or released.

The engine reserves an action's amount *before* running the policies, so every limit
check sees every concurrent evaluation's reservation (two evaluations cannot both pass a
limit that only one fits under). Reservations of actions that end up not authorized are
dropped; authorized ones are written through before the authorization is returned.

Rolling-window totals are kept as running sums per tracked window length, so a limit
check costs the same with ten or ten million entries in the window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa

from policies._store import from_us, new_id, to_us
from policies._tables import spend_ledger
from policies.shared_limits import USD, SharedLimits

if TYPE_CHECKING:
    from policies._store import PolicyStore
    from policies.actions import ProposedAction

_ZERO = Decimal(0)
_INSERT = spend_ledger.insert()
_SET_STATUS = (
    spend_ledger.update()
    .where(spend_ledger.c.id == sa.bindparam("entry_id"))
    .values(status=sa.bindparam("status"))
)


@dataclass(slots=True)
class Entry:
    """One reservation."""

    id: str
    seq: int
    agent: str
    chain: str
    asset: str
    amount: Decimal
    usd: Decimal | None
    at: datetime
    status: str = "reserved"


@dataclass(slots=True)
class _Window:
    length: timedelta
    entries: deque[Entry] = field(default_factory=deque)
    total: Decimal = _ZERO


class SpendLedger:
    """Reservations and rolling totals per agent and per deployment, in memory.

    With `shared` (cluster mode: other daemons' engines reserve in the same store at the
    same time) the deployment's totals in memory are not the deployment's: deployment-
    wide limits are then judged by :attr:`shared_limits` in the store's transactions.
    """

    def __init__(
        self, store: PolicyStore | None = None, history: int = 50, *, shared: bool = False
    ) -> None:
        self._store = store
        self.shared_limits: SharedLimits | None = None
        """Cluster mode: where a SpendLimit of scope deployment puts its limits."""
        if shared and store is not None:
            self.shared_limits = SharedLimits(_INSERT)
            store.admit_with(self.shared_limits.admit)
        self._lengths: set[timedelta] = {timedelta(days=1)}
        self._windows: dict[tuple[str | None, str], dict[timedelta, _Window]] = {}
        self._by_digest: dict[bytes, list[Entry]] = {}
        self._settled: dict[tuple[str, str], deque[Decimal]] = {}
        self._history = history
        self._seq = 0

    def track(self, length: timedelta) -> None:
        """Keep a running total for windows of `length` (call before :meth:`load`)."""
        if length in self._lengths:
            return
        if self._windows:
            # A new window would start empty and undercount what is already reserved.
            raise RuntimeError(f"track({length}) after entries exist; attach policies first")
        self._lengths.add(length)

    def load(self, now: datetime) -> None:
        """Rebuild memory from the store: live entries within the longest window."""
        for entry, digest in self._stored(now):
            self._add(entry, digest)
            if entry.status == "settled":
                self._remember(entry)

    def reload_agents(self, agents: Collection[str], now: datetime) -> None:
        """Replace what memory holds of `agents` by what the store holds (cluster mode:
        they were won from another daemon, which spent meanwhile). The other agents'
        entries stay as they are, reservations in flight included; every window is
        rebuilt in time order so expiry and release keep working."""
        if self._store is None:
            return
        gone = set(agents)
        since = now - max(self._lengths)
        seen: dict[int, Entry] = {}
        for windows in self._windows.values():
            for window in windows.values():
                for entry in window.entries:
                    if entry.agent not in gone and entry.at > since:
                        seen[id(entry)] = entry
        stored = self._stored(now, agents=sorted(gone))
        entries = sorted([*seen.values(), *(entry for entry, _ in stored)], key=_order)
        self._windows = {}
        self._by_digest = {
            digest: kept
            for digest, live in self._by_digest.items()
            if (kept := [entry for entry in live if entry.agent not in gone])
        }
        self._settled = {
            key: amounts for key, amounts in self._settled.items() if key[0] not in gone
        }
        digests = {id(entry): digest for entry, digest in stored}
        for entry in entries:
            entry.seq = self._next_seq()
            if id(entry) in digests:
                self._add(entry, digests[id(entry)])
                if entry.status == "settled":
                    self._remember(entry)
            else:
                self._count(entry)

    def _stored(
        self, now: datetime, *, agents: list[str] | None = None
    ) -> list[tuple[Entry, bytes]]:
        if self._store is None:
            return []
        since = to_us(now - max(self._lengths))
        query = (
            sa.select(spend_ledger)
            .where(spend_ledger.c.at_us >= since, spend_ledger.c.status != "released")
            .order_by(spend_ledger.c.at_us)
        )
        if agents is not None:
            query = query.where(spend_ledger.c.agent.in_(agents))
        found = []
        for row in self._store.read(query):
            usd = Decimal(row.usd) if row.usd is not None else None
            entry = Entry(
                id=row.id,
                seq=self._next_seq(),
                agent=row.agent,
                chain=row.chain,
                asset=row.asset,
                amount=Decimal(row.amount),
                usd=usd,
                at=from_us(row.at_us),
                status=row.status,
            )
            found.append((entry, bytes.fromhex(row.digest)))
        return found

    def reserve(self, action: ProposedAction, usd: Decimal | None, now: datetime) -> Entry:
        """Count `action` against every window; the row is staged for the engine's commit."""
        entry = Entry(
            id=new_id(),
            seq=self._next_seq(),
            agent=action.agent,
            chain=action.chain,
            asset=action.asset,
            amount=action.amount,
            usd=usd,
            at=now,
        )
        self._add(entry, action.digest)
        if self._store is not None:
            self._store.stage(_INSERT, self._row(entry, action.digest), always=False)
        return entry

    def release(self, digest: bytes, *, persist: bool, entry: Entry | None = None) -> None:
        """Stop counting `entry`, or else the oldest live reservation of `digest`."""
        entry = self._pop(digest, entry)
        if entry is None:
            return
        entry.status = "released"
        for key in self._keys(entry):
            for window in self._windows[key].values():
                if window.entries and entry.seq >= window.entries[0].seq:
                    window.total -= self._value(entry, key)
        if persist and self._store is not None:
            self._store.stage(
                _SET_STATUS, {"entry_id": entry.id, "status": "released"}, always=True
            )

    def settle(self, digest: bytes) -> None:
        """Mark the oldest live reservation of `digest` as spent."""
        entry = self._pop(digest)
        if entry is None:
            return
        entry.status = "settled"
        self._remember(entry)
        if self._store is not None:
            self._store.stage(_SET_STATUS, {"entry_id": entry.id, "status": "settled"}, always=True)

    def window_total(
        self, agent: str | None, asset: str, now: datetime, length: timedelta
    ) -> Decimal:
        """Units of `asset` reserved or spent within `length` before `now`."""
        return self._total((agent, asset), now, length)

    def window_total_usd(self, agent: str | None, now: datetime, length: timedelta) -> Decimal:
        """USD value reserved or spent within `length` before `now`."""
        return self._total((agent, USD), now, length)

    def recent_amounts(self, agent: str, asset: str, count: int) -> list[Decimal]:
        """The last `count` settled amounts, oldest first."""
        amounts = self._settled.get((agent, asset))
        return list(amounts)[-count:] if amounts else []

    def _total(self, key: tuple[str | None, str], now: datetime, length: timedelta) -> Decimal:
        windows = self._windows.get(key)
        if windows is None:
            return _ZERO
        window = windows[length]
        cutoff = now - length
        entries = window.entries
        while entries and entries[0].at <= cutoff:
            gone = entries.popleft()
            if gone.status != "released":
                window.total -= self._value(gone, key)
        return window.total

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _add(self, entry: Entry, digest: bytes) -> None:
        self._count(entry)
        if entry.status == "reserved":
            live = self._by_digest.get(digest)
            if live is None:
                self._by_digest[digest] = [entry]
            else:
                live.append(entry)

    def _count(self, entry: Entry) -> None:
        # On every evaluation's path: one pass, no helper calls per key.
        counts = [((entry.agent, entry.asset), entry.amount), ((None, entry.asset), entry.amount)]
        if entry.usd is not None:
            counts += [((entry.agent, USD), entry.usd), ((None, USD), entry.usd)]
        released = entry.status == "released"
        for key, value in counts:
            windows = self._windows.get(key)
            if windows is None:
                windows = self._windows[key] = {n: _Window(n) for n in self._lengths}
            for window in windows.values():
                window.entries.append(entry)
                if not released:
                    window.total += value

    def _pop(self, digest: bytes, entry: Entry | None = None) -> Entry | None:
        live = self._by_digest.get(digest)
        if not live or (entry is not None and entry not in live):
            return None
        if entry is None:
            entry = live.pop(0)
        else:
            live.remove(entry)
        if not live:
            del self._by_digest[digest]
        return entry

    def _remember(self, entry: Entry) -> None:
        key = (entry.agent, entry.asset)
        if key not in self._settled:
            self._settled[key] = deque(maxlen=self._history)
        self._settled[key].append(entry.amount)

    @staticmethod
    def _keys(entry: Entry) -> list[tuple[str | None, str]]:
        keys: list[tuple[str | None, str]] = [(entry.agent, entry.asset), (None, entry.asset)]
        if entry.usd is not None:
            keys += [(entry.agent, USD), (None, USD)]
        return keys

    @staticmethod
    def _value(entry: Entry, key: tuple[str | None, str]) -> Decimal:
        if key[1] == USD:
            return entry.usd if entry.usd is not None else _ZERO
        return entry.amount

    @staticmethod
    def _row(entry: Entry, digest: bytes) -> dict[str, object]:
        return {
            "id": entry.id,
            "agent": entry.agent,
            "chain": entry.chain,
            "asset": entry.asset,
            "amount": str(entry.amount),
            "usd": None if entry.usd is None else str(entry.usd),
            "digest": digest.hex(),
            "at_us": to_us(entry.at),
            "status": entry.status,
        }


def _order(entry: Entry) -> tuple[datetime, int]:
    return entry.at, entry.seq
