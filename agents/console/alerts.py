"""Alerts: events read from the store and the chains, put in the outbox, POSTed signed.

Each second the producer reads what the console reads (pending approvals, breakers,
cross-chain plans); every `RPC_EVERY` seconds it asks each chain for its height and every
`AUDIT_EVERY` seconds it verifies every agent's audit log; each
new event goes to the outbox for every receiver subscribed to it. The deliverer POSTs
what is due. Every POST carries:

- `X-Covenant-Event` and `X-Covenant-Event-Id` (stable across resends),
- `X-Covenant-Timestamp` (Unix seconds) and `X-Covenant-Signature`:
  `sha256=` + hex HMAC-SHA256 of `timestamp + "." + body` under the receiver's secret,
  which is read from the environment variable the YAML names, never from YAML.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from agents.audit import AuditReport
from agents.console import outbox
from chains.atomic.base import Leg
from chains.atomic.store import PlanStore
from config.clock import utc_now
from config.errors import ConfigError
from config.models import Webhook
from policies import control
from policies.approvals import list_requests

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Covenant-Signature"
RPC_EVERY = 30.0
AUDIT_EVERY = 300.0
"""Seconds between verifications of every agent's audit log (a full read of each)."""
POST_TIMEOUT = 10.0

Event = tuple[str, str, dict[str, Any]]
"""(event type, stable event id, data)."""


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The `X-Covenant-Signature` value of `body` sent at `timestamp`."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_ok(secret: bytes, timestamp: str, body: bytes, header: str) -> bool:
    """Whether `header` is the signature of `body` at `timestamp` (receivers' check)."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def secrets_of(hooks: list[Webhook]) -> dict[str, bytes]:
    """Each receiver's secret from the environment; a missing one is a config error."""
    found = {}
    for hook in hooks:
        value = os.environ.get(hook.secret_env)
        if not value:
            raise ConfigError(
                f"webhook {hook.url}: environment variable {hook.secret_env} (its secret_env) "
                "is not set; export the receiver's shared secret before `run`"
            )
        found[hook.url] = value.encode()
    return found


class Alerts:
    """The producer and the deliverer over one store and one set of receivers."""

    def __init__(
        self,
        hooks: list[Webhook],
        store: Engine,
        chains: Mapping[str, Callable[[], Awaitable[object]]],
        audits: Callable[[], Iterable[AuditReport]] = tuple,
    ) -> None:
        self.hooks, self.store, self.chains, self.audits = hooks, store, chains, audits
        self._secrets = secrets_of(hooks)
        self._known = outbox.known(store)
        self._down: dict[str, datetime] = {}
        self._rpc_checked: datetime | None = None
        self._audit_checked: datetime | None = None
        self._broken: list[AuditReport] = []

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Produce and deliver until `stop` is set (a delivery in flight finishes)."""
        async with httpx.AsyncClient(timeout=POST_TIMEOUT) as client:
            while not stop.is_set():
                try:
                    now = utc_now()
                    await self._check_rpc(now)
                    self._check_audit(now)
                    self.produce(now)
                    await self.deliver(client, now)
                except Exception:  # an alert problem must never stop the daemon
                    log.exception("alerts: a round failed; trying again")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)

    def produce(self, now: datetime) -> int:
        """Enqueue every new event; returns how many rows were added."""
        added = 0
        for event, event_id, data in self._events(now):
            for hook in self.hooks:
                key = (event_id, hook.url)
                if event in hook.events and key not in self._known and _due(hook, event, data, now):
                    added += outbox.enqueue(self.store, [hook.url], event, event_id, data, now=now)
                    self._known.add(key)
        return added

    async def deliver(self, client: httpx.AsyncClient, now: datetime) -> None:
        """POST every due row once."""
        for row in outbox.due(self.store, now):
            timestamp = str(int(now.timestamp()))
            headers = {
                "content-type": "application/json",
                "X-Covenant-Event": row.event,
                "X-Covenant-Event-Id": row.event_id,
                "X-Covenant-Timestamp": timestamp,
                SIGNATURE_HEADER: signature(self._secrets[row.url], timestamp, row.body),
            }
            try:
                reply = await client.post(row.url, content=row.body, headers=headers)
                ok, error = reply.is_success, f"HTTP {reply.status_code}"
            except httpx.HTTPError as exc:
                ok, error = False, f"{type(exc).__name__}: {exc}"
            if ok:
                outbox.delivered(self.store, row, utc_now())
            else:
                outbox.failed(self.store, row, utc_now(), error)

    def _events(self, now: datetime) -> Iterator[Event]:
        data: dict[str, Any]
        for request in list_requests(self.store, "pending"):
            data = {
                "approval": request.id,
                "agent": request.agent,
                "summary": request.summary,
                "digest": request.digest,
                "expires_at": request.expires_at.isoformat(),
            }
            yield "approval_waiting", f"approval_waiting:{request.id}", data
            yield "approval_expiring", f"approval_expiring:{request.id}", data
        for row in control.breakers(self.store):
            if row.state == "open" and row.opened_at is not None:
                data = {"agent": row.agent, "reason": row.reason}
                opened = int(row.opened_at.timestamp())
                yield "breaker_opened", f"breaker_opened:{row.agent}:{opened}", data
        for plan in PlanStore(self.store).plans():
            data = {"plan": plan.plan_id, "agent": plan.agent, "reason": plan.reason or ""}
            if plan.state in ("refunded", "failed"):
                yield f"plan_{plan.state}", f"plan_{plan.state}:{plan.plan_id}", data
            elif not plan.terminal and _past_deadline(plan.legs, now):
                # Wall clock, not chain time: an alert to look, not a judgement of the plan.
                yield "plan_stuck", f"plan_stuck:{plan.plan_id}", {**data, "state": plan.state}
        for report in self._broken:
            first = report.problems[0]
            data = {"agent": report.agent, "entry": first.seq, "problem": first.message}
            yield "audit_broken", f"audit_broken:{report.agent}:{first.seq}:{first.kind}", data
        for chain, since in self._down.items():
            data = {"chain": chain, "since": since.isoformat()}
            yield "rpc_unreachable", f"rpc_unreachable:{chain}:{int(since.timestamp())}", data

    async def _check_rpc(self, now: datetime) -> None:
        if self._rpc_checked and now - self._rpc_checked < timedelta(seconds=RPC_EVERY):
            return
        self._rpc_checked = now
        for name, check in self.chains.items():
            try:
                await asyncio.wait_for(check(), POST_TIMEOUT)
                self._down.pop(name, None)
            except Exception:  # unreachable, whatever the library raised
                self._down.setdefault(name, now)

    def _check_audit(self, now: datetime) -> None:
        if self._audit_checked and now - self._audit_checked < timedelta(seconds=AUDIT_EVERY):
            return
        self._audit_checked = now
        self._broken = [report for report in self.audits() if not report.ok]


def _past_deadline(legs: Iterable[Leg], now: datetime) -> bool:
    """Whether every leg's deadline has passed and the plan is still open."""
    deadlines = [leg.deadline for leg in legs]
    return bool(deadlines) and max(deadlines) < now.timestamp()


def _due(hook: Webhook, event: str, data: Mapping[str, Any], now: datetime) -> bool:
    """approval_expiring waits until the request has less than `expiring_within` left."""
    if event != "approval_expiring":
        return True
    left = datetime.fromisoformat(str(data["expires_at"])) - now
    return left < timedelta(seconds=float(hook.expiring_within))
