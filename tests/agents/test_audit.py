"""The audit log: signed, hash-chained entries; verify catches every kind of tampering."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from nacl.signing import VerifyKey

from agents import audit
from agents.audit import AuditEntry, PolicyVerdict, append, entries, verify
from agents.planners.scripted import ScriptedPlanner
from config.errors import AuditError
from config.models import Deployment
from config.store import open_store
from tests.agents.conftest import deployment_data, make_observation, make_signer
from wallets.did import did_key_public_key
from wallets.jws import JwsSigner


@pytest.fixture
def engine(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield engine
    engine.dispose()


def entry(n: int) -> AuditEntry:
    return AuditEntry(
        observation_digest=f"{n:064x}",
        raw_outputs=(f"reply {n}",),
        verdicts=(PolicyVerdict(action=0, policy="SpendLimit", verdict="allow"),),
        transactions=({"chain": "arb", "tx_hash": f"0x{n:064x}"},),
    )


def write(engine, signer, count: int, agent: str = "alice") -> None:
    for n in range(count):
        append(engine, agent, signer, entry(n), at=datetime(2026, 1, 1, 0, n, tzinfo=UTC))


def kinds(report) -> list[tuple[int, str]]:
    return [(problem.seq, problem.kind) for problem in report.problems]


def test_an_untouched_log_verifies(engine, signer):
    write(engine, signer, 4)
    report = verify(engine, "alice", expected_did=signer.did)
    assert report.ok, report.problems
    assert report.entries == 4
    stored = entries(engine, "alice")
    assert [record.prev_hash for record in stored[1:]] == [r.hash for r in stored[:-1]]
    assert stored[0].prev_hash == audit.GENESIS


def test_signatures_verify_independently_with_pynacl(engine, signer):
    write(engine, signer, 1)
    record = entries(engine, "alice")[0]
    header, payload, signature = record.signature.split(".")
    key = VerifyKey(did_key_public_key(record.did))

    def unb64(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    key.verify(f"{header}.{payload}".encode(), unb64(signature))
    claims = json.loads(unb64(payload))
    assert claims == {"agent": "alice", "hash": record.hash, "kind": "entry", "seq": 0}


def test_an_edited_body_is_reported_at_its_entry(engine, signer):
    write(engine, signer, 4)
    with engine.begin() as connection:
        body = connection.execute(
            sa.text("SELECT body FROM audit_entries WHERE agent='alice' AND seq=2")
        ).scalar_one()
        connection.execute(
            sa.text("UPDATE audit_entries SET body=:b WHERE agent='alice' AND seq=2"),
            {"b": body.replace("reply 2", "reply X")},
        )
    report = verify(engine, "alice")
    assert kinds(report) == [(2, "edited")]
    assert "entry 2 was changed after it was signed" in report.problems[0].message


def test_an_edited_and_rehashed_entry_is_still_caught(engine, signer):
    write(engine, signer, 3)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE audit_entries SET hash=:h WHERE agent='alice' AND seq=1"),
            {"h": "f" * 64},
        )
    assert (1, "edited") in kinds(verify(engine, "alice"))


def test_a_deleted_middle_entry_is_reported(engine, signer):
    write(engine, signer, 4)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM audit_entries WHERE agent='alice' AND seq=1"))
    report = verify(engine, "alice")
    assert kinds(report) == [(2, "deleted"), (2, "deleted")]
    assert "entries 1..1 are missing before entry 2" in report.problems[0].message


def test_a_deleted_last_entry_is_caught_by_the_signed_head(engine, signer):
    write(engine, signer, 3)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM audit_entries WHERE agent='alice' AND seq=2"))
    report = verify(engine, "alice")
    assert kinds(report) == [(2, "truncated")]
    with pytest.raises(AuditError, match="does not end where its signed head says"):
        append(engine, "alice", signer, entry(9))


def test_reordered_entries_are_reported_with_their_original_positions(engine, signer):
    write(engine, signer, 4)
    with engine.begin() as connection:
        for old, new in ((1, 100), (2, 1), (100, 2)):  # swap positions 1 and 2
            connection.execute(
                sa.text("UPDATE audit_entries SET seq=:new WHERE agent='alice' AND seq=:old"),
                {"old": old, "new": new},
            )
    report = verify(engine, "alice")
    assert kinds(report) == [(1, "reordered"), (2, "reordered"), (3, "reordered")]
    assert "stored at position 1 was written as entry 2" in report.problems[0].message


def test_a_log_resigned_by_another_key_fails_against_the_agents_did(engine, signer):
    write(engine, make_signer(b"\x02" * 32), 2)
    report = verify(engine, "alice", expected_did=signer.did)
    assert [kind for _, kind in kinds(report)] == ["signature", "signature", "signature"]
    assert "expected" in report.problems[0].message


def test_one_foreign_signature_inside_a_log_is_caught(engine, signer):
    write(engine, signer, 2)
    other = make_signer(b"\x03" * 32)
    forged = append(engine, "bob", other, entry(7))
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE audit_entries SET signature=:s WHERE agent='alice' AND seq=1"),
            {"s": forged.signature},
        )
    assert (1, "signature") in kinds(verify(engine, "alice"))


@pytest.mark.parametrize("field", ["private_key", "seed", "Preimage", "mnemonic", "key"])
def test_the_writer_refuses_fields_named_like_secrets(engine, signer, field):
    bad = entry(0).model_copy(update={"transactions": ({"chain": "arb", field: "00" * 32},)})
    with pytest.raises(
        AuditError, match=f"refusing to write audit field 'transactions\\[0\\].{field}'"
    ) as caught:
        append(engine, "alice", signer, bad)
    assert "00" * 32 not in str(caught.value)
    assert entries(engine, "alice") == []


def test_floats_are_refused_and_public_keys_allowed(engine, signer):
    with pytest.raises(AuditError, match="is a float"):
        append(engine, "alice", signer, entry(0).model_copy(update={"outcomes": ({"fee": 0.1},)}))
    append(
        engine, "alice", signer, entry(0).model_copy(update={"outcomes": ({"public_key": "abc"},)})
    )


async def test_an_entry_for_a_tick_carries_digests_plan_and_evidence(engine, signer):
    data = deployment_data()
    data["planners"][0]["plans"] = [
        {
            "confidence": "0.8",
            "actions": [
                {
                    "kind": "transfer",
                    "chain": "arb",
                    "asset": "USDC",
                    "amount": "5",
                    "counterparty": "acme",
                }
            ],
        }
    ]
    deployment = Deployment.model_validate(data)
    planner = ScriptedPlanner(deployment.planners[0], deployment, "alice")  # type: ignore[arg-type]
    observation = make_observation()
    result = await planner.plan(observation)
    record = append(engine, "alice", signer, AuditEntry.for_tick(observation, result))
    body = entries(engine, "alice")[0].body
    assert body == record.body
    assert body["observation_digest"] == audit.digest(observation.model_dump(mode="json"))
    assert body["plan"]["actions"][0]["amount"] == "5"
    assert body["evidence"]["score"] == str(result.evidence.score)
    assert verify(engine, "alice").ok


# The daemon's writer: cached heads and group commit.


def signers_for(names: list[str]) -> dict[str, JwsSigner]:
    return {name: make_signer(bytes([index + 10]) * 32) for index, name in enumerate(names)}


def count_statements(engine: sa.engine.Engine) -> dict[str, int]:
    seen = {"select": 0, "commit": 0}

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _statement(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen["select"] += 1

    @sa.event.listens_for(engine, "commit")
    def _commit(conn):
        seen["commit"] += 1

    return seen


async def test_entries_of_many_agents_share_commits_and_every_chain_verifies(engine):
    names = [f"agent{n}" for n in range(20)]
    log = audit.AuditLog(engine, signers_for(names))
    seen = count_statements(engine)
    for round_ in range(3):
        records = await asyncio.gather(*(log.record(name, entry(round_)) for name in names))
        assert [record.seq for record in records] == [round_] * len(names)
    # 60 entries; the heads are read once per agent, and the entries of each round
    # went to the store in one or two transactions instead of 60.
    assert seen["commit"] <= 6, seen
    assert seen["select"] == 2 * len(names), seen
    for name in names:
        assert log.verify(name).ok, name
        assert [r.body["raw_outputs"] for r in entries(engine, name)] == [
            [f"reply {n}"] for n in range(3)
        ]


async def test_an_entry_is_committed_when_record_returns(engine, tmp_path):
    log = audit.AuditLog(engine, {"alice": make_signer()})
    record = await log.record("alice", entry(0))
    other = open_store(f"sqlite:///{tmp_path / 'state.db'}")  # a second process's view
    try:
        assert [r.hash for r in entries(other, "alice")] == [record.hash]
        assert verify(other, "alice").ok
    finally:
        other.dispose()


async def test_a_restarted_writer_continues_each_chain_from_the_store(engine, signer):
    write(engine, signer, 2)
    first = audit.AuditLog(engine, {"alice": signer})
    await first.record("alice", entry(2))
    again = audit.AuditLog(engine, {"alice": signer})
    assert (await again.record("alice", entry(3))).seq == 3
    assert verify(engine, "alice", expected_did=signer.did).ok


async def test_a_tail_removed_while_the_writer_runs_is_still_reported(engine, signer):
    log = audit.AuditLog(engine, {"alice": signer})
    for n in range(3):
        await log.record("alice", entry(n))
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM audit_entries WHERE agent='alice' AND seq=2"))
    # The cached head does not look at the store, so entry 3 still links to the removed
    # entry 2: what was the tail is now a gap that verify reports, not hidden by the head.
    await log.record("alice", entry(3))
    assert kinds(verify(engine, "alice")) == [(3, "deleted"), (3, "deleted")]
    assert "entries 2..2 are missing before entry 3" in verify(engine, "alice").problems[0].message


async def test_a_second_writer_fails_only_its_agent_which_then_resumes(engine):
    names = ["alice", "bob", "carol"]
    signers = signers_for(names)
    log = audit.AuditLog(engine, signers)
    await asyncio.gather(*(log.record(name, entry(0)) for name in names))
    # Another daemon (forbidden, but it happens) appends to bob's log behind our back.
    audit.AuditLog(engine, {"bob": signers["bob"]}).append("bob", entry(50))
    # Hold the store so that the first batch waits in the writer thread.
    with log._committer.write_lock:
        first = asyncio.gather(
            *(log.record(name, entry(1)) for name in names), return_exceptions=True
        )
        for _ in range(1000):  # until the writer has taken the batch
            await asyncio.sleep(0.001)
            if log._committer.writer is not None and not log._committer.waiting:
                break
        second = asyncio.ensure_future(log.record("bob", entry(2)))  # chained on bob's 1
        await asyncio.sleep(0.01)
    results = await first
    assert [r.seq for r in results if isinstance(r, audit.AuditRecord)] == [1, 1]
    assert isinstance(results[1], AuditError)
    assert "another writer appended to the audit log of bob" in str(results[1])
    with pytest.raises(AuditError, match="chained on an entry that could not be written"):
        await second
    # bob's writer reads his head from the store again and goes on from the other's entry.
    assert (await log.record("bob", entry(3))).seq == 2
    for name in names:
        assert log.verify(name).ok, (name, log.verify(name).problems)
    assert [r.body["raw_outputs"] for r in entries(engine, "bob")] == [
        ["reply 0"],
        ["reply 50"],
        ["reply 3"],
    ]


async def test_a_synchronous_append_keeps_the_order_of_waiting_entries(engine, signer):
    log = audit.AuditLog(engine, {"alice": signer})
    waiting = asyncio.ensure_future(log.record("alice", entry(0)))
    await asyncio.sleep(0)  # staged, maybe on its way to the store
    assert log.append("alice", entry(1)).seq == 1
    assert (await waiting).seq == 0
    assert [r.seq for r in entries(engine, "alice")] == [0, 1]
    assert log.verify("alice").ok


async def test_a_cancelled_tick_still_leaves_its_entry(engine, signer):
    log = audit.AuditLog(engine, {"alice": signer})
    waiting = asyncio.ensure_future(log.record("alice", entry(0)))
    await asyncio.sleep(0)
    waiting.cancel()
    assert (await log.record("alice", entry(1))).seq == 1
    assert [r.seq for r in entries(engine, "alice")] == [0, 1]
    assert log.verify("alice").ok


async def test_secrets_are_refused_before_anything_is_chained(engine, signer):
    log = audit.AuditLog(engine, {"alice": signer})
    with pytest.raises(AuditError, match="refusing to write audit field"):
        await log.record("alice", {"observation_digest": "ab", "seed": "00" * 32})
    assert (await log.record("alice", entry(0))).seq == 0
    assert log.verify("alice").ok
