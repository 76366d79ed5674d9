"""The audit log's writer: entries chained and signed at once, stored by group commit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from agents.audit.entry import (
    ENTRY_TYP,
    HEAD_TYP,
    AuditEntry,
    AuditRecord,
    AuditReport,
    entry_body,
    entry_hash,
    signed_payload,
)
from agents.audit.tables import store_rows, stored_head
from agents.audit.verify import verify
from config.clock import utc_now
from config.errors import AuditError
from config.group_commit import GroupCommitter


class AuditSigner(Protocol):
    """Signs with the agent's DID key; :class:`wallets.jws.JwsSigner` is one."""

    @property
    def did(self) -> str:
        """The signer's did:key."""
        ...

    def sign(self, payload: bytes, *, typ: str = "JWT") -> str:
        """A compact EdDSA JWS over `payload`."""
        ...


@dataclass(eq=False, frozen=True, slots=True)
class _Staged:
    """An entry chained and signed in memory, waiting for the commit that stores it."""

    agent: str
    row: dict[str, Any]
    record: AuditRecord


def append(
    engine: Engine,
    agent: str,
    signer: AuditSigner,
    entry: AuditEntry | Mapping[str, Any],
    *,
    at: datetime | None = None,
) -> AuditRecord:
    """Sign and store `entry` as `agent`'s next entry, in one transaction.

    `entry` is an :class:`AuditEntry` or any JSON-like mapping (the runtime's own record);
    either way no field may look like a secret and no number may be a float.
    """
    return AuditLog(engine, {agent: signer}).append(agent, entry, at=at)


class AuditLog:
    """The audit sink the runtime writes to: each agent's entries signed by its own DID
    signer (from :meth:`wallets.operator.AgentWallet.jws_signer`).

    Each agent's head (next position, last hash) is read from the store once, with the
    tail check, and then kept here: this daemon is the only writer of its agents' logs.
    Entries are chained and signed at once, then stored by one group committer
    (`config.group_commit`) keyed by agent: :meth:`record` returns only when the
    transaction holding its entry has committed; entries of every agent that arrive
    while one commit is on disk go together into the next (one fsync for many ticks).
    One agent's failed write fails only that agent's entries, and those chained on them.
    The hash chains are what one-by-one appends would have written.
    """

    def __init__(self, engine: Engine, signers: Mapping[str, AuditSigner]) -> None:
        self.engine = engine
        self.signers = dict(signers)
        self._heads: dict[str, tuple[int, str]] = {}
        self.commit_hooks: list[Callable[[float], None]] = []
        """Each told, per stored entry, the seconds from signing it to its commit (the
        console's metrics observe the group commit's latency here)."""
        self._committer: GroupCommitter[_Staged] = GroupCommitter(
            engine,
            self._insert,
            describe=_described,
            key=lambda item: item.agent,
            dependent_error=_unwritable_parent,
            failed=self._forget_heads,
        )

    def append(
        self, agent: str, entry: AuditEntry | Mapping[str, Any], *, at: datetime | None = None
    ) -> AuditRecord:
        """Sign and store `entry` as `agent`'s next entry, durable when this returns
        (with any entries :meth:`record` has waiting, in the same transaction)."""
        item, started = self._stage(agent, entry, at), time.perf_counter()
        self._committer.commit_now(item)
        self._committed(started)
        return item.record

    async def record(self, agent: str, entry: AuditEntry | Mapping[str, Any]) -> AuditRecord:
        """Sign `entry` as `agent`'s next entry now; return once it is committed, in one
        transaction with the other agents' entries that were waiting for a commit."""
        item, started = self._stage(agent, entry, None), time.perf_counter()
        written = self._committer.submit(item)
        # Timed by the future, not by this caller: a cancelled tick's entry still counts.
        written.add_done_callback(
            lambda done: None if done.cancelled() or done.exception() else self._committed(started)
        )
        # Shielded: a cancelled tick does not unmake its entry, which is already chained.
        await asyncio.shield(written)
        return item.record

    def _committed(self, started: float) -> None:
        seconds = time.perf_counter() - started
        for hook in self.commit_hooks:
            hook(seconds)

    async def drain(self) -> None:
        """Wait until every entry handed to :meth:`record` is written (shutdown calls it,
        so no writer task outlives the runtime that started it)."""
        await self._committer.aclose()

    def verify(self, agent: str) -> AuditReport:
        """Verify `agent`'s log against its signer's DID."""
        signer = self.signers.get(agent)
        return verify(self.engine, agent, expected_did=signer.did if signer else None)

    def _stage(
        self, agent: str, entry: AuditEntry | Mapping[str, Any], at: datetime | None
    ) -> _Staged:
        signer = self.signers.get(agent)
        if signer is None:
            raise AuditError(f"no DID signer for agent {agent!r}; cannot write its audit log")
        data, body = entry_body(entry)
        seq, prev = self._head(agent)
        when = (at or utc_now()).isoformat()
        hash_ = entry_hash(agent, seq, at=when, did=signer.did, prev=prev, body=body)
        row = {
            "agent": agent,
            "seq": seq,
            "at": when,
            "did": signer.did,
            "prev_hash": prev,
            "hash": hash_,
            "body": body,
            "signature": signer.sign(signed_payload("entry", agent, seq, hash_), typ=ENTRY_TYP),
        }
        self._heads[agent] = (seq + 1, hash_)
        return _Staged(agent, row, AuditRecord(**{**row, "body": data}))

    def _head(self, agent: str) -> tuple[int, str]:
        head = self._heads.get(agent)
        if head is None:
            with self.engine.connect() as connection:
                head = stored_head(connection, agent)
        return head

    def _insert(self, connection: Connection, items: Sequence[_Staged]) -> None:
        last = {item.agent: item for item in items}
        heads = [self._signed_head(item) for item in last.values()]
        store_rows(connection, [item.row for item in items], heads)

    def _signed_head(self, item: _Staged) -> dict[str, Any]:
        seq, hash_ = item.row["seq"], item.row["hash"]
        payload = signed_payload("head", item.agent, seq, hash_)
        signature = self.signers[item.agent].sign(payload, typ=HEAD_TYP)
        return {"agent": item.agent, "seq": seq, "hash": hash_, "signature": signature}

    def forget(self, agent: str) -> None:
        """Read `agent`'s head from the store again at its next entry (cluster mode: the
        agent was won from another daemon, which appended meanwhile)."""
        self._heads.pop(agent, None)

    def _forget_heads(self, failed: Sequence[_Staged]) -> None:
        # The cached heads name entries that never reached the store: the next entry of
        # these agents reads its head from the store again.
        for item in failed:
            self._heads.pop(item.agent, None)


def _described(error: Exception, items: Sequence[_Staged]) -> AuditError:
    agents = sorted({item.agent for item in items})
    names = ", ".join(agents[:3]) + (f" and {len(agents) - 3} more" if len(agents) > 3 else "")
    if isinstance(error, IntegrityError):
        return AuditError(
            f"another writer appended to the audit log of {names} at the same time; only "
            "one daemon may run an agent"
        )
    if isinstance(error, AuditError):
        return error
    return AuditError(
        f"cannot store the audit entries of {names}: {type(error).__name__}: "
        f"{getattr(error, 'orig', None) or error}; check that the store is reachable and "
        "writable"
    )


def _unwritable_parent(item: _Staged) -> AuditError:
    return AuditError(
        f"{item.agent}'s audit entry {item.row['seq']} was chained on an entry that could "
        "not be written, so it was not written either; the next tick starts again from "
        "the stored head"
    )
