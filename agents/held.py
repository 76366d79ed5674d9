"""Actions held for a person's approval, stored so the same bytes can be signed later.

The policy engine binds an approval to the exact action (digest included). When the
operator approves, the next tick re-submits the stored unsigned transaction unchanged;
if it can no longer land (its nonce was used, its Solana blockhash expired) the send
fails and the agent plans afresh.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine as SqlEngine

from chains.base import UnsignedTx
from chains.families import family, family_of_unsigned
from config.errors import StoreError
from policies.actions import ConfidenceEvidence, ProposedAction

metadata = sa.MetaData()
held_actions = sa.Table(
    "held_actions",
    metadata,
    sa.Column("approval_id", sa.String(64), primary_key=True),
    sa.Column("agent", sa.String(64), nullable=False),
    sa.Column("chain", sa.String(64), nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("unsigned", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


def _encode(unsigned: UnsignedTx) -> str:
    common: dict[str, Any] = {
        "chain": unsigned.chain,
        "sender": unsigned.sender,
        "intent": unsigned.intent.model_dump(mode="json"),
        "digest": unsigned.digest.hex(),
    }
    owner = family_of_unsigned(unsigned)
    if owner is None:
        raise StoreError(f"cannot hold a {type(unsigned).__name__}")
    return json.dumps({**common, "family": owner.name, **owner.encode_unsigned(unsigned)})


def _decode(text: str) -> UnsignedTx:
    data = json.loads(text)
    common = {
        "chain": data["chain"],
        "sender": data["sender"],
        "intent": data["intent"],
        "digest": bytes.fromhex(data["digest"]),
    }
    return family(data["family"]).decode_unsigned(common, data)


@dataclass(frozen=True)
class HeldAction:
    """An action waiting for approval, exactly as the policies saw it."""

    approval_id: str
    action: ProposedAction
    unsigned: UnsignedTx
    evidence: ConfidenceEvidence | None


class HeldActions:
    """The store of actions waiting for approval.

    Every tick asks for its agent's held actions, which change only when this daemon
    holds or closes one or when an operator decides an approval. So the held actions of
    all agents are read in one query and reused until `version` (the engine's
    :meth:`~policies.engine.Engine.approvals_version`) or this object's own writes move.
    """

    def __init__(self, engine: SqlEngine, version: Callable[[], object] = lambda: None) -> None:
        self._engine = engine
        self._version = version
        self._writes = 0
        self._cache: tuple[object, dict[str, list[HeldAction]]] | None = None

    def hold(
        self,
        approval_id: str,
        action: ProposedAction,
        unsigned: UnsignedTx,
        evidence: ConfidenceEvidence | None,
    ) -> None:
        """Keep `unsigned` (and the plan's evidence, which the policies will judge again)
        until the approval `approval_id` is decided; idempotent."""
        self._writes += 1
        with self._engine.begin() as connection:
            exists = connection.execute(
                sa.select(held_actions.c.approval_id).where(
                    held_actions.c.approval_id == approval_id
                )
            ).first()
            if exists is None:
                connection.execute(
                    held_actions.insert().values(
                        approval_id=approval_id,
                        agent=action.agent,
                        chain=action.chain,
                        action=action.model_dump_json(),
                        unsigned=_encode(unsigned),
                        evidence=evidence.model_dump_json(exclude={"score"}) if evidence else None,
                        state="held",
                        created_at=datetime.now(UTC),
                    )
                )

    @property
    def generation(self) -> int:
        """Counts this object's writes (holds and closes)."""
        return self._writes

    def waiting(self, agent: str) -> list[HeldAction]:
        """Held actions of `agent`, oldest first."""
        key = (self._version(), self._writes)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._read_all())
        return list(self._cache[1].get(agent, ()))

    def _read_all(self) -> dict[str, list[HeldAction]]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(held_actions)
                .where(held_actions.c.state == "held")
                .order_by(held_actions.c.created_at)
            ).all()
        by_agent: dict[str, list[HeldAction]] = {}
        for row in rows:
            by_agent.setdefault(row.agent, []).append(
                HeldAction(
                    row.approval_id,
                    ProposedAction.model_validate_json(row.action),
                    _decode(row.unsigned),
                    ConfidenceEvidence.model_validate_json(row.evidence) if row.evidence else None,
                )
            )
        return by_agent

    def close(self, approval_id: str, state: str) -> None:
        """Mark a held action done ('sent', 'rejected', 'expired', 'failed')."""
        self._writes += 1
        with self._engine.begin() as connection:
            connection.execute(
                held_actions.update()
                .where(held_actions.c.approval_id == approval_id)
                .values(state=state)
            )
