"""The audit log: signed, hash-chained entries; verify catches every kind of tampering."""

from __future__ import annotations

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
