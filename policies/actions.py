"""What policies see: the proposed action and the evidence behind the plan's confidence.

The agents layer turns each planned action into a :class:`ProposedAction` after it has
built the unsigned transaction, so the digest a policy approves is the digest a signer
will sign. Recipients are address-book *names*; the resolved address rides along only so
the allowlist can check it against the book.
"""

from __future__ import annotations

import hashlib
from decimal import ROUND_FLOOR, Decimal
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from config.types import Name, NonNegativeAmount

ActionKind = Literal["transfer", "swap_leg", "contract_call", "program_call"]
"""The kinds of transaction the policies judge, the one vocabulary from plan to audit log.

Each plan kind (``agents/actions/``) declares which of these its execution proposes: a
``transfer`` proposes a ``transfer``; a ``swap`` and a ``pay_many`` propose one
``swap_leg`` per escrow lock. ``contract_call`` and ``program_call`` are produced by no
planner yet: the Allowlist already judges them (by selector and by program), and an
action kind that calls a contract or program proposes them, so they stay
(``tests/agents/test_action_kinds.py`` checks the registry and this list agree)."""


class Receives(BaseModel):
    """What a swap leg gets the agent in return: the counterparty's leg."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chain: Name
    asset: str = Field(pattern=r"^[A-Z][A-Z0-9.]{0,15}$")
    amount: NonNegativeAmount


class Intent(BaseModel):
    """What a planned action would do, before any transaction is built: what
    :meth:`~policies.base.Policy.screen` judges, so a task no policy could allow is set
    aside before the model is asked to choose (``agents/screen.py``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: Name
    kind: ActionKind
    chain: Name
    asset: str = Field(pattern=r"^[A-Z][A-Z0-9.]{0,15}$")
    amount: NonNegativeAmount
    recipient: Name
    task: str | None = Field(default=None, description="The task it would settle, `source/id`.")
    receives: Receives | None = Field(default=None, description="A swap leg: in return.")


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
    task: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}/[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="The task it settles, as `source/id` (a pay_invoice); DuplicateGuard "
        "pays a task once, whatever its amount.",
    )
    receives: Receives | None = Field(
        default=None,
        description="A swap leg: what the agent gets in return (SwapRate judges the price).",
    )

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
        settles = f" for {self.task}" if self.task else ""
        return (
            f"{self.agent}: {self.kind}{call} {self.amount} {self.asset} on {self.chain} "
            f"to {target}{settles}, digest {self.digest.hex()[:16]}…"
        )


_Unit = Decimal  # a value in [0, 1]


# Weights of the derived confidence score; see ConfidenceEvidence.
W_AGREEMENT = Decimal("0.45")
W_TOKENS = Decimal("0.35")
W_SELF = Decimal("0.20")
UNKNOWN = Decimal("0.25")
REPAIR_FACTOR = Decimal("0.7")


class ConfidenceEvidence(BaseModel):
    """Evidence a planner gathers for how sure it is of a plan, and the derived score.

    ``score = (0.45*A + 0.35*T + 0.20*S) * 0.7**R``, rounded down to 4 places, where

    - A is ``sample_agreement``, the share of the k samples whose actions equal the
      chosen plan's; with one sample it is unknown (one sample agrees with itself);
    - T is ``exp(mean_token_logprob)``, the geometric-mean probability of the sampled
      tokens; unknown when the backend returns no log-probabilities. Each token's value
      is the model's plain log-softmax of it (temperature 1, over the whole vocabulary,
      before penalties, grammar and truncation; none for the end-of-sequence token):
      what Ollama returns, and what the embedded backend records to match, so a score
      means the same whichever backend planned. Tokens the schema grammar forces count
      with what the unconstrained model gave them, so T is lower than a
      grammar-renormalised measure would be;
    - S is ``self_reported``, the model's own claim;
    - R is ``repair_count``, how many outputs needed a repair re-ask.

    Unknown evidence counts as 0.25, not as a neutral 0.5: missing evidence is no
    reason for confidence. So self-report moves the score by at most 0.2, and a model
    claiming 1.0 with no other evidence scores at most 0.4 (invariant 8 of docs/architecture.md: the
    model's own number never authorizes anything). ``score`` is computed, never
    supplied, so it cannot be forged.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    self_reported: _Unit = Field(ge=0, le=1)
    sample_agreement: _Unit = Field(
        ge=0, le=1, description="Share of samples that produced the same plan."
    )
    samples: int = Field(default=1, ge=1, description="How many samples were compared.")
    mean_token_logprob: Decimal | None = Field(
        default=None,
        le=0,
        description="Mean plain log-softmax (before the grammar) of the plan's tokens.",
    )
    repair_count: int = Field(default=0, ge=0, description="Schema repairs needed.")

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def score(self) -> Decimal:
        """Derived confidence in [0, 1], rounded down to 4 places."""
        agreement = self.sample_agreement if self.samples > 1 else UNKNOWN
        tokens = UNKNOWN if self.mean_token_logprob is None else self.mean_token_logprob.exp()
        combined = W_AGREEMENT * agreement + W_TOKENS * tokens + W_SELF * self.self_reported
        scaled = combined * REPAIR_FACTOR**self.repair_count
        return min(_ONE, scaled).quantize(Decimal("0.0001"), rounding=ROUND_FLOOR)
