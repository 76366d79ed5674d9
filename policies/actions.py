"""What policies see: the proposed action and the evidence behind the plan's confidence.

The agents layer turns each planned action into a :class:`ProposedAction` after it has
built the unsigned transaction, so the digest a policy approves is the digest a signer
will sign. Recipients are address-book *names*; the resolved address rides along only so
the allowlist can check it against the book.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from config.types import Name, NonNegativeAmount

ActionKind = Literal["transfer", "swap_leg", "contract_call", "program_call"]

_ONE = Decimal(1)


class ProposedAction(BaseModel):
    """One action of a plan, bound to the unsigned transaction that would carry it.

    In JSON the digest is hex (`ser_json_bytes`/`val_json_bytes`), so recorded actions
    round-trip through files such as the backtest's actions.jsonl.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_bytes="hex", val_json_bytes="hex"
    )

    agent: Name
    plan_id: str = Field(min_length=1, max_length=128)
    kind: ActionKind
    chain: Name
    asset: str = Field(pattern=r"^[A-Z][A-Z0-9.]{0,15}$")
    amount: NonNegativeAmount = Field(description="In asset units, e.g. Decimal('0.05').")
    amount_base_units: int = Field(ge=0, description="The same amount in base units (wei).")
    recipient: Name = Field(description="Address-book name of the recipient or contract.")
    recipient_address: str = Field(min_length=1, max_length=128)
    selector: str | None = Field(
        default=None, pattern=r"^0x[0-9a-f]{8}$", description="EVM function selector."
    )
    digest: bytes = Field(min_length=32, max_length=32, description="Unsigned tx digest.")

    @model_validator(mode="after")
    def _selector_only_for_calls(self) -> ProposedAction:
        if (self.kind == "contract_call") != (self.selector is not None):
            raise ValueError(
                f"selector {self.selector!r} with kind {self.kind!r}: a contract_call needs "
                "its 4-byte function selector and no other kind may carry one"
            )
        return self

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 over every field: two actions differing anywhere differ here."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    def summary(self) -> str:
        """One human-readable line, for approvals and logs."""
        target = f"{self.recipient} ({self.recipient_address})"
        call = f" {self.selector}" if self.selector else ""
        return (
            f"{self.agent}: {self.kind}{call} {self.amount} {self.asset} on {self.chain} "
            f"to {target}, digest {self.digest.hex()[:16]}…"
        )


_Unit = Decimal  # a value in [0, 1]


class ConfidenceEvidence(BaseModel):
    """Evidence a planner gathers for how sure it is of a plan.

    ``score`` is derived here and cannot be supplied: the model's own claim
    (``self_reported``) is one input of several, weighted low, so a model that says it
    is certain cannot open the breaker's gate by saying so.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    self_reported: _Unit = Field(ge=0, le=1)
    sample_agreement: _Unit = Field(
        ge=0, le=1, description="Share of samples that produced the same plan."
    )
    samples: int = Field(default=1, ge=1, description="How many samples were compared.")
    mean_token_logprob: Decimal | None = Field(
        default=None, le=0, description="Mean log-probability of the plan's tokens."
    )
    repair_count: int = Field(default=0, ge=0, description="Schema repairs needed.")

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def score(self) -> Decimal:
        """Derived confidence in [0, 1], rounded to 4 places."""
        # One sample agrees with itself trivially; treat it as no evidence either way.
        agreement = self.sample_agreement if self.samples > 1 else Decimal("0.5")
        if self.mean_token_logprob is None:
            combined = Decimal("0.7") * agreement + Decimal("0.3") * self.self_reported
        else:
            token = self.mean_token_logprob.exp()
            combined = (
                Decimal("0.4") * agreement
                + Decimal("0.4") * token
                + Decimal("0.2") * self.self_reported
            )
        penalty = max(Decimal(0), _ONE - Decimal("0.15") * self.repair_count)
        return min(_ONE, combined * penalty).quantize(Decimal("0.0001"))
