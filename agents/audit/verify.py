"""Verifying a stored audit log: every problem, and the entry it was found at."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine

from agents.audit.entry import (
    ENTRY_TYP,
    GENESIS,
    HEAD_TYP,
    AuditProblem,
    AuditReport,
    entry_hash,
)
from agents.audit.tables import stored_head_row, stored_rows
from config.errors import WalletError
from wallets.jws import JwsError, verify_jws


def verify(engine: Engine, agent: str, *, expected_did: str | None = None) -> AuditReport:
    """Check `agent`'s whole log; every problem names the entry it was found at.

    Without `expected_did` the DID of the first entry is expected throughout; pass the
    agent's DID (from the keystore) to also catch a log re-signed by another key.
    """
    with engine.connect() as connection:
        rows = stored_rows(connection, agent)
        head = stored_head_row(connection, agent)
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
        entry_hash(
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
