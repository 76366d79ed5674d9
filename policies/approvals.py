"""Approval requests: queued by the engine, decided by a person with the CLI.

A request is bound to the action's fingerprint (a hash over every field, the transaction
digest included) and to an expiry. Only an *approved*, unexpired, unused request with
the same fingerprint lets the action through, and only once.
"""

from __future__ import annotations

import getpass
import secrets
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from config.errors import PolicyViolation, StoreError
from policies._store import PolicyStore, bump_control, from_us, to_us
from policies._tables import approvals
from policies.actions import ProposedAction

Status = Literal["pending", "approved", "rejected", "used"]

_INSERT = approvals.insert()
_MARK_USED = (
    approvals.update()
    .where(approvals.c.id == sa.bindparam("a_id"), approvals.c.status == "approved")
    .values(status="used")
)


class ApprovalError(PolicyViolation):
    """An approval cannot be decided (unknown id, already decided, expired)."""


class ApprovalRequest(BaseModel):
    """One request for a person's approval."""

    model_config = ConfigDict(frozen=True)

    id: str
    agent: str
    digest: str
    fingerprint: str
    summary: str
    reason: str
    status: Status
    requested_at: datetime
    expires_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None


class Approvals:
    """The engine's view of approval requests."""

    def __init__(self, store: PolicyStore) -> None:
        self._store = store
        self._used: set[str] = set()
        self.requests_made = 0
        """Requests this engine created (part of :meth:`Engine.approvals_version`)."""

    def usable(self, fingerprint: str, now: datetime) -> ApprovalRequest | None:
        """An approved, unexpired request for exactly this fingerprint not yet used."""
        for request in self._by_fingerprint(fingerprint):
            fresh = request.expires_at > now and request.id not in self._used
            if request.status == "approved" and fresh:
                return request
        return None

    def use(self, request: ApprovalRequest) -> None:
        """Consume `request`; the row changes only if the action is authorized."""
        self._used.add(request.id)
        self._store.stage(_MARK_USED, {"a_id": request.id}, always=False)

    def unuse(self, request: ApprovalRequest) -> None:
        """The action was not authorized after all; the approval stays usable."""
        self._used.discard(request.id)

    def request(
        self, action: ProposedAction, reason: str, now: datetime, expires_in: timedelta
    ) -> ApprovalRequest:
        """The pending request for this fingerprint, creating one if there is none."""
        for request in self._by_fingerprint(action.fingerprint):
            if request.status == "pending" and request.expires_at > now:
                return request
        request = ApprovalRequest(
            id=secrets.token_hex(4),
            agent=action.agent,
            digest=action.digest.hex(),
            fingerprint=action.fingerprint,
            summary=action.summary(),
            reason=reason,
            status="pending",
            requested_at=now,
            expires_at=now + expires_in,
        )
        self._store.stage(_INSERT, _row(request, action), always=True)
        self.requests_made += 1
        return request

    def _by_fingerprint(self, fingerprint: str) -> list[ApprovalRequest]:
        query = sa.select(approvals).where(approvals.c.fingerprint == fingerprint)
        return [_request(row) for row in self._store.read(query)]


def list_requests(engine: Engine, status: Status | None = None) -> list[ApprovalRequest]:
    """Every request, newest first, optionally only those with `status`."""
    query = sa.select(approvals).order_by(approvals.c.requested_at_us.desc())
    if status is not None:
        query = query.where(approvals.c.status == status)
    return [_request(row) for row in PolicyStore(engine).read(query)]


def decide(
    engine: Engine,
    request_id: str,
    *,
    approve: bool,
    now: datetime,
    digest: str | None = None,
    who: str | None = None,
) -> ApprovalRequest:
    """Approve or reject a pending, unexpired request.

    `digest`, when given, is the transaction digest the person was shown: the decision
    is refused unless the request is for exactly that transaction (checked in the same
    transaction as the update). `who` is recorded as the decider (default: the OS user).
    """
    try:
        with engine.begin() as connection:
            row = connection.execute(
                sa.select(approvals).where(approvals.c.id == request_id)
            ).first()
            request = _check_decidable(request_id, row, now)
            if digest is not None and digest != request.digest:
                raise ApprovalError(
                    f"approval request {request_id!r} is for transaction digest "
                    f"{request.digest}, not the {digest} shown; reload and decide again"
                )
            status: Status = "approved" if approve else "rejected"
            decider = who or _who()
            connection.execute(
                approvals.update()
                .where(approvals.c.id == request_id)
                .values(status=status, decided_at_us=to_us(now), decided_by=decider)
            )
            bump_control(connection)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot record the decision on approval {request_id!r}: {exc}") from exc
    return request.model_copy(update={"status": status, "decided_at": now, "decided_by": decider})


def _check_decidable(request_id: str, row: sa.Row[object] | None, now: datetime) -> ApprovalRequest:
    if row is None:
        raise ApprovalError(f"no approval request {request_id!r}; see `approvals list FILE`")
    request = _request(row)
    if request.status != "pending":
        raise ApprovalError(f"approval request {request_id!r} is already {request.status}")
    if request.expires_at <= now:
        raise ApprovalError(
            f"approval request {request_id!r} expired at {request.expires_at.isoformat()}; "
            "the agent will ask again if it still wants to act"
        )
    return request


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _row(request: ApprovalRequest, action: ProposedAction) -> dict[str, object]:
    return {
        "id": request.id,
        "agent": request.agent,
        "digest": request.digest,
        "fingerprint": request.fingerprint,
        "summary": request.summary,
        "reason": request.reason,
        "action_json": action.model_dump_json(),
        "status": request.status,
        "requested_at_us": to_us(request.requested_at),
        "expires_at_us": to_us(request.expires_at),
        "decided_at_us": None,
        "decided_by": None,
    }


def _request(row: sa.Row[object]) -> ApprovalRequest:
    return ApprovalRequest(
        id=row.id,
        agent=row.agent,
        digest=row.digest,
        fingerprint=row.fingerprint,
        summary=row.summary,
        reason=row.reason,
        status=row.status,
        requested_at=from_us(row.requested_at_us),
        expires_at=from_us(row.expires_at_us),
        decided_at=from_us(row.decided_at_us) if row.decided_at_us is not None else None,
        decided_by=row.decided_by,
    )
