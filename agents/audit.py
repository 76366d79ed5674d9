"""The audit log: one signed, hash-chained entry per agent tick.

Each entry holds digests of the observation and the prompt, every raw model reply, the
parsed plan, the confidence evidence, each policy's verdict, the transactions and their
outcomes. Entries of one agent form a chain: an entry's hash covers its position, time,
signer DID, the previous entry's hash and its body, all as canonical JSON (sorted keys,
no spaces, no floats). The agent's DID key signs each entry as a compact JWS whose
payload names the agent, position and hash; a separately signed *head* row names the
last entry, so removing entries from the end is detected too.

:func:`verify` reports every problem and which entry has it: an edited body (hash no
longer matches what was signed), a reordered entry (the signature says it was written at
another position), deleted entries (a gap, a broken link, or a head beyond the end), a
forged or foreign signature. Limits: someone with the database and an *old copy* of it
can roll the whole log back to that copy; anchoring heads outside the store closes that.

The writer refuses any field whose name looks like key material (keys, seeds,
mnemonics, preimages, passphrases): secrets never enter the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from agents.planners.types import Observation, PlanResult
from config.canonical import NotCanonical, canonical, plain
from config.errors import AuditError, WalletError
from wallets.jws import JwsError, verify_jws

GENESIS = "0" * 64
ENTRY_TYP = "covenant-audit-entry"
HEAD_TYP = "covenant-audit-head"

_SECRET_NAME = re.compile(
    r"(private|secret|seed|mnemonic|preimage|passphrase|password|priv_?key|signing_?key"
    r"|api_?key|^key$|_key$)",
    re.IGNORECASE,
)

metadata = sa.MetaData()

audit_entries = sa.Table(
    "audit_entries",
    metadata,
    sa.Column("agent", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("did", sa.String(128), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
)
"""One row per entry; (agent, seq) is the position in that agent's chain."""

audit_heads = sa.Table(
    "audit_heads",
    metadata,
    sa.Column("agent", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
)
"""The signed position of each agent's last entry (detects a truncated tail)."""


class AuditSigner(Protocol):
    """Signs with the agent's DID key; :class:`wallets.jws.JwsSigner` is one."""

    @property
    def did(self) -> str:
        """The signer's did:key."""
        ...

    def sign(self, payload: bytes, *, typ: str = "JWT") -> str:
        """A compact EdDSA JWS over `payload`."""
        ...


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicyVerdict(_Model):
    """One policy's decision on one action of the plan."""

    action: int = Field(ge=0, description="Index of the action in the plan.")
    policy: str
    verdict: str = Field(description="allow, deny, needs_approval, or error.")
    reason: str = ""


class AuditEntry(_Model):
    """The body of one tick's entry. Plan, evidence, transactions and outcomes are JSON
    objects so that the log does not depend on other packages' model versions."""

    observation_digest: str
    prompt_digest: str = ""
    raw_outputs: tuple[str, ...] = ()
    plan: dict[str, Any] | None = None
    evidence: dict[str, Any] | None = None
    errors: tuple[str, ...] = ()
    verdicts: tuple[PolicyVerdict, ...] = ()
    transactions: tuple[dict[str, Any], ...] = ()
    outcomes: tuple[dict[str, Any], ...] = ()
    note: str = ""

    @classmethod
    def for_tick(
        cls, observation: Observation, result: PlanResult | None, **rest: Any
    ) -> AuditEntry:
        """An entry from this tick's observation and plan result, plus `rest`."""
        planned: dict[str, Any] = {}
        if result is not None:
            planned = {
                "prompt_digest": result.prompt_digest,
                "raw_outputs": result.raw_outputs,
                "plan": result.plan.model_dump(mode="json"),
                "evidence": result.evidence.model_dump(mode="json"),
                "errors": result.errors,
            }
        return cls(
            observation_digest=digest(observation.model_dump(mode="json")), **planned, **rest
        )


class AuditRecord(_Model):
    """A stored entry with its chain fields."""

    agent: str
    seq: int
    at: str
    did: str
    prev_hash: str
    hash: str
    body: dict[str, Any]
    signature: str


ProblemKind = Literal["edited", "reordered", "deleted", "signature", "truncated"]


class AuditProblem(_Model):
    """One finding of :func:`verify`: which entry, what kind, and what was seen."""

    seq: int
    kind: ProblemKind
    message: str


class AuditReport(_Model):
    """The outcome of verifying one agent's log."""

    agent: str
    entries: int
    did: str | None
    problems: tuple[AuditProblem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the log is intact."""
        return not self.problems


def canonical_json(value: Any) -> str:
    """The canonical JSON text of `value` (RFC 8785, see `config.canonical`)."""
    try:
        return canonical(value).decode()
    except NotCanonical as exc:
        raise AuditError(f"audit {exc}") from exc


def _plain(value: Any) -> Any:
    try:
        return plain(value)
    except NotCanonical as exc:
        raise AuditError(f"audit {exc}") from exc


def digest(value: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of `value`."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def refuse_secrets(value: Any, path: str = "") -> None:
    """Raise AuditError if any field name in `value` looks like key material."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if _SECRET_NAME.search(str(key)) and not str(key).lower().startswith("public"):
                raise AuditError(
                    f"refusing to write audit field {where!r}: its name looks like key "
                    "material, and secrets never enter the audit log; record a digest or "
                    "a public identifier under another name"
                )
            refuse_secrets(item, where)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            refuse_secrets(item, f"{path}[{index}]")


def _entry_hash(agent: str, seq: int, *, at: str, did: str, prev: str, body: str) -> str:
    material = {
        "v": 1,
        "agent": agent,
        "seq": seq,
        "at": at,
        "did": did,
        "prev": prev,
        "body": body,
    }
    return digest(material)


def _payload(kind: str, agent: str, seq: int, entry_hash: str) -> bytes:
    return canonical_json({"kind": kind, "agent": agent, "seq": seq, "hash": entry_hash}).encode()


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


def _body(entry: AuditEntry | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The entry as plain JSON data and as its canonical text; refuses secrets."""
    data = entry.model_dump(mode="json") if isinstance(entry, AuditEntry) else _plain(entry)
    refuse_secrets(data)
    return data, canonical_json(data)


def _stored_head(connection: Connection, agent: str) -> tuple[int, str]:
    """The next position and previous hash; AuditError if the tail was removed, so that
    writing on would not hide the removal behind a fresh head."""
    last = connection.execute(
        sa.select(audit_entries.c.seq, audit_entries.c.hash)
        .where(audit_entries.c.agent == agent)
        .order_by(audit_entries.c.seq.desc())
        .limit(1)
    ).first()
    head = connection.execute(
        sa.select(audit_heads.c.seq, audit_heads.c.hash).where(audit_heads.c.agent == agent)
    ).first()
    stored = None if last is None else (last.seq, last.hash)
    recorded = None if head is None else (head.seq, head.hash)
    if stored != recorded:
        raise AuditError(
            f"{agent}'s audit log does not end where its signed head says (head "
            f"{recorded and recorded[0]}, last entry {stored and stored[0]}); run "
            "`audit verify` and investigate before the agent runs again"
        )
    return (0, GENESIS) if last is None else (last.seq + 1, last.hash)


def entries(engine: Engine, agent: str) -> list[AuditRecord]:
    """`agent`'s stored entries in position order (not verified; see :func:`verify`)."""
    with engine.connect() as connection:
        rows = (
            connection.execute(
                sa.select(audit_entries)
                .where(audit_entries.c.agent == agent)
                .order_by(audit_entries.c.seq)
            )
            .mappings()
            .all()
        )
    return [AuditRecord(**{**row, "body": json.loads(row["body"])}) for row in rows]


def agents(engine: Engine) -> list[str]:
    """Agents that have an audit log (entries or a head)."""
    with engine.connect() as connection:
        names = connection.execute(
            sa.union(sa.select(audit_entries.c.agent), sa.select(audit_heads.c.agent))
        ).scalars()
        return sorted(set(names))


def verify(engine: Engine, agent: str, *, expected_did: str | None = None) -> AuditReport:
    """Check `agent`'s whole log; every problem names the entry it was found at.

    Without `expected_did` the DID of the first entry is expected throughout; pass the
    agent's DID (from the keystore) to also catch a log re-signed by another key.
    """
    with engine.connect() as connection:
        rows = (
            connection.execute(
                sa.select(audit_entries)
                .where(audit_entries.c.agent == agent)
                .order_by(audit_entries.c.seq)
            )
            .mappings()
            .all()
        )
        head = (
            connection.execute(sa.select(audit_heads).where(audit_heads.c.agent == agent))
            .mappings()
            .first()
        )
    did = expected_did or (rows[0]["did"] if rows else None)
    problems = _check_rows(agent, rows, did)
    problems += _check_head(agent, rows, head, did)
    return AuditReport(agent=agent, entries=len(rows), did=did, problems=tuple(problems))


def _check_rows(agent: str, rows: Sequence[Any], did: str | None) -> list[AuditProblem]:
    problems: list[AuditProblem] = []
    expected_seq, prev_hash = 0, GENESIS
    for row in rows:
        seq = row["seq"]
        if seq > expected_seq:
            problems.append(
                AuditProblem(
                    seq=seq,
                    kind="deleted",
                    message=f"entries {expected_seq}..{seq - 1} are missing before entry {seq}",
                )
            )
        found = _check_row(agent, row, did)
        if found is None and row["prev_hash"] != prev_hash:
            found = AuditProblem(
                seq=seq,
                kind="deleted" if seq > expected_seq else "reordered",
                message=f"entry {seq} does not follow the entry stored before it (its "
                f"previous hash is {row['prev_hash'][:12]}…, expected {prev_hash[:12]}…)",
            )
        if found is not None:
            problems.append(found)
        expected_seq, prev_hash = seq + 1, row["hash"]
    return problems


def _check_row(agent: str, row: Any, did: str | None) -> AuditProblem | None:
    seq = row["seq"]
    claims = _signed_claims(row["signature"], did, ENTRY_TYP)
    if isinstance(claims, str):
        return AuditProblem(seq=seq, kind="signature", message=f"entry {seq}: {claims}")
    if claims.get("kind") != "entry" or claims.get("agent") != agent:
        return AuditProblem(
            seq=seq, kind="signature", message=f"entry {seq}: the signature belongs to another log"
        )
    signed_seq = claims.get("seq")
    recomputed = (
        _entry_hash(
            agent,
            signed_seq,
            at=row["at"],
            did=row["did"],
            prev=row["prev_hash"],
            body=row["body"],
        )
        if isinstance(signed_seq, int)
        else ""
    )
    if recomputed != claims.get("hash") or row["hash"] != claims.get("hash"):
        return AuditProblem(
            seq=seq, kind="edited", message=f"entry {seq} was changed after it was signed"
        )
    if signed_seq != seq:
        return AuditProblem(
            seq=seq,
            kind="reordered",
            message=f"the entry stored at position {seq} was written as entry {signed_seq}",
        )
    return None


def _check_head(agent: str, rows: Sequence[Any], head: Any, did: str | None) -> list[AuditProblem]:
    last = rows[-1] if rows else None
    if head is None:
        if last is None:
            return []
        return [
            AuditProblem(
                seq=last["seq"], kind="truncated", message="the signed head of the log is missing"
            )
        ]
    claims = _signed_claims(head["signature"], did, HEAD_TYP)
    if isinstance(claims, str) or claims.get("kind") != "head" or claims.get("agent") != agent:
        reason = claims if isinstance(claims, str) else "it belongs to another log"
        return [
            AuditProblem(
                seq=head["seq"],
                kind="signature",
                message=f"the head of the log is not validly signed: {reason}",
            )
        ]
    if last is None or claims.get("seq") != last["seq"] or claims.get("hash") != last["hash"]:
        end = "nothing" if last is None else f"entry {last['seq']}"
        return [
            AuditProblem(
                seq=int(claims.get("seq", -1)),
                kind="truncated",
                message=f"the signed head names entry {claims.get('seq')} but the log ends at "
                f"{end}: entries were deleted from the end",
            )
        ]
    return []


def _signed_claims(token: str, did: str | None, typ: str) -> dict[str, Any] | str:
    """The verified JWS payload as a dict, or a sentence saying why it does not verify."""
    try:
        verified = verify_jws(token, expected_did=did)
        claims = verified.claims()
    except (JwsError, WalletError) as exc:
        return str(exc)
    if verified.header.get("typ") != typ or not isinstance(claims, dict):
        return f"the signature is not a {typ} signature"
    return claims


@dataclass(eq=False)
class _Staged:
    """An entry chained and signed in memory, waiting for the commit that stores it."""

    agent: str
    generation: int
    row: dict[str, Any]
    record: AuditRecord
    done: asyncio.Future[AuditRecord] | None
    error: AuditError | None = None


class AuditLog:
    """The audit sink the runtime writes to: each agent's entries signed by its own DID
    signer (from :meth:`wallets.operator.AgentWallet.jws_signer`).

    Each agent's head (next position, last hash) is read from the store once, with the
    tail check, and then kept here: this daemon is the only writer of its agents' logs.
    Entries are chained and signed at once, then stored in batches. :meth:`record`
    returns only when the transaction holding its entry has committed; entries of every
    agent that arrive while one commit is on disk go together into the next (group
    commit: one fsync for many ticks). The hash chains are what one-by-one appends
    would have written.
    """

    def __init__(self, engine: Engine, signers: Mapping[str, AuditSigner]) -> None:
        self.engine = engine
        self.signers = dict(signers)
        self._heads: dict[str, tuple[int, str]] = {}
        self._generations: dict[str, int] = {}
        self._staged: list[_Staged] = []
        self._writer: asyncio.Task[None] | None = None
        # Held while writing (by the writer thread or a synchronous append) so batches
        # reach the store in the order they were chained; guards _poisoned too.
        self._lock = threading.Lock()
        self._poisoned: dict[str, int] = {}

    def append(
        self, agent: str, entry: AuditEntry | Mapping[str, Any], *, at: datetime | None = None
    ) -> AuditRecord:
        """Sign and store `entry` as `agent`'s next entry, durable when this returns
        (with any entries :meth:`record` has waiting, in the same transaction)."""
        item = self._stage(agent, entry, at, None)
        batch, self._staged = self._staged, []
        self._settle(batch, self._write(batch))
        if item.error is not None:
            raise item.error
        return item.record

    async def record(self, agent: str, entry: AuditEntry | Mapping[str, Any]) -> AuditRecord:
        """Sign `entry` as `agent`'s next entry now; return once it is committed, in one
        transaction with the other agents' entries that were waiting for a commit."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[AuditRecord] = loop.create_future()
        self._stage(agent, entry, None, done)
        writer = self._writer
        if writer is None or writer.done() or writer.get_loop() is not loop:
            self._writer = loop.create_task(self._write_staged())
        # Shielded: a cancelled tick does not unmake its entry, which is already chained.
        return await asyncio.shield(done)

    async def drain(self) -> None:
        """Wait until every entry handed to :meth:`record` is written (shutdown calls it,
        so no writer task outlives the runtime that started it)."""
        writer = self._writer
        if writer is not None and writer.get_loop() is asyncio.get_running_loop():
            await asyncio.shield(writer)

    def verify(self, agent: str) -> AuditReport:
        """Verify `agent`'s log against its signer's DID."""
        signer = self.signers.get(agent)
        return verify(self.engine, agent, expected_did=signer.did if signer else None)

    def _stage(
        self,
        agent: str,
        entry: AuditEntry | Mapping[str, Any],
        at: datetime | None,
        done: asyncio.Future[AuditRecord] | None,
    ) -> _Staged:
        signer = self.signers.get(agent)
        if signer is None:
            raise AuditError(f"no DID signer for agent {agent!r}; cannot write its audit log")
        data, body = _body(entry)
        seq, prev = self._head(agent)
        when = (at or datetime.now(UTC)).isoformat()
        entry_hash = _entry_hash(agent, seq, at=when, did=signer.did, prev=prev, body=body)
        row = {
            "agent": agent,
            "seq": seq,
            "at": when,
            "did": signer.did,
            "prev_hash": prev,
            "hash": entry_hash,
            "body": body,
            "signature": signer.sign(_payload("entry", agent, seq, entry_hash), typ=ENTRY_TYP),
        }
        self._heads[agent] = (seq + 1, entry_hash)
        record = AuditRecord(**{**row, "body": data})
        item = _Staged(agent, self._generations.get(agent, 0), row, record, done)
        self._staged.append(item)
        return item

    def _head(self, agent: str) -> tuple[int, str]:
        head = self._heads.get(agent)
        if head is None:
            with self.engine.connect() as connection:
                head = _stored_head(connection, agent)
        return head

    async def _write_staged(self) -> None:
        # Whatever is staged while a batch is on disk forms the next batch.
        while self._staged:
            batch, self._staged = self._staged, []
            self._settle(batch, await asyncio.to_thread(self._write, batch))

    def _write(self, batch: list[_Staged]) -> list[tuple[str, int]]:
        """Store `batch` in one transaction or, if that fails, agent by agent, so that one
        agent's broken log fails no other. Returns the (agent, generation) that failed."""
        with self._lock:
            live = [item for item in batch if not self._follows_failure(item)]
            try:
                self._insert(live)
            except AuditError:
                return self._insert_each(live)
            return []

    def _follows_failure(self, item: _Staged) -> bool:
        if item.generation > self._poisoned.get(item.agent, -1):
            return False
        item.error = AuditError(
            f"{item.agent}'s audit entry {item.row['seq']} was chained on an entry that could "
            "not be written, so it was not written either; the next tick starts again from "
            "the stored head"
        )
        return True

    def _insert_each(self, items: list[_Staged]) -> list[tuple[str, int]]:
        groups: dict[str, list[_Staged]] = {}
        for item in items:
            groups.setdefault(item.agent, []).append(item)
        failed = []
        for agent, group in groups.items():
            try:
                self._insert(group)
            except AuditError as exc:
                for item in group:
                    item.error = exc
                self._poisoned[agent] = group[-1].generation
                failed.append((agent, group[-1].generation))
        return failed

    def _insert(self, items: list[_Staged]) -> None:
        if not items:
            return
        last = {item.agent: item for item in items}
        names = ", ".join(sorted(last)[:3]) + (
            f" and {len(last) - 3} more" if len(last) > 3 else ""
        )
        try:
            heads = [self._signed_head(item) for item in last.values()]
            with self.engine.begin() as connection:
                connection.execute(audit_entries.insert(), [item.row for item in items])
                connection.execute(
                    audit_heads.delete().where(audit_heads.c.agent == sa.bindparam("name")),
                    [{"name": name} for name in last],
                )
                connection.execute(audit_heads.insert(), heads)
        except IntegrityError as exc:
            raise AuditError(
                f"another writer appended to the audit log of {names} at the same time; only "
                "one daemon may run an agent"
            ) from exc
        except Exception as exc:
            raise AuditError(
                f"cannot store the audit entries of {names}: {type(exc).__name__}: "
                f"{getattr(exc, 'orig', None) or exc}; check that the store is reachable and "
                "writable"
            ) from exc

    def _signed_head(self, item: _Staged) -> dict[str, Any]:
        seq, entry_hash = item.row["seq"], item.row["hash"]
        payload = _payload("head", item.agent, seq, entry_hash)
        signature = self.signers[item.agent].sign(payload, typ=HEAD_TYP)
        return {"agent": item.agent, "seq": seq, "hash": entry_hash, "signature": signature}

    def _settle(self, batch: list[_Staged], failed: list[tuple[str, int]]) -> None:
        for agent, generation in failed:
            if self._generations.get(agent, 0) == generation:
                # The cached head names entries that never reached the store: read it
                # again, and let nothing already chained on them be written.
                self._heads.pop(agent, None)
                self._generations[agent] = generation + 1
        for item in batch:
            if item.done is None or item.done.done():
                continue
            if item.error is not None:
                item.done.set_exception(item.error)
            else:
                item.done.set_result(item.record)
