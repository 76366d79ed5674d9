"""What an audit entry is: its body model, the canonical bytes and digests that chain it,
the payloads its signatures cover, and the refusal of fields that look like secrets."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.planners.types import Observation, PlanResult
from config.canonical import NotCanonical, canonical, plain
from config.errors import AuditError

GENESIS = "0" * 64
ENTRY_TYP = "covenant-audit-entry"
HEAD_TYP = "covenant-audit-head"

_SECRET_NAME = re.compile(
    r"(private|secret|seed|mnemonic|preimage|passphrase|password|priv_?key|signing_?key"
    r"|api_?key|^key$|_key$)",
    re.IGNORECASE,
)


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
    """One finding of :func:`agents.audit.verify`: which entry, what kind, what was seen."""

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


def entry_hash(agent: str, seq: int, *, at: str, did: str, prev: str, body: str) -> str:
    """The hash an entry is chained and signed under (version 1 of its material)."""
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


def signed_payload(kind: str, agent: str, seq: int, hash_: str) -> bytes:
    """What an entry's (`kind` "entry") or a head's ("head") signature covers."""
    return canonical_json({"kind": kind, "agent": agent, "seq": seq, "hash": hash_}).encode()


def entry_body(entry: AuditEntry | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The entry as plain JSON data and as its canonical text; refuses secrets."""
    if isinstance(entry, AuditEntry):
        data = entry.model_dump(mode="json")
    else:
        try:
            data = plain(entry)
        except NotCanonical as exc:
            raise AuditError(f"audit {exc}") from exc
    refuse_secrets(data)
    return data, canonical_json(data)
