"""What every chain family's configuration model shares.

The family models themselves (EVM chain ids and fee caps, Solana clusters and compute
budgets) live in their family's folder under ``chains/families/``;
:mod:`config.models` builds the deployment's chain union from the family registry. This
module imports nothing of ``config.models`` so a family's model can import it while
``config.models`` is still being built.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, field_validator, model_validator

from config.types import NonNegativeAmount


class Model(BaseModel):
    """Base of every configuration model: frozen, strict about unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def key_tag(*keys: str) -> Any:
    """Pick a union member by which key a mapping has, so errors name one model."""

    def tag(value: Any) -> str | None:
        for key in keys:
            if (isinstance(value, dict) and key in value) or hasattr(value, key):
                return key
        return None

    return Discriminator(
        tag,
        custom_error_type="missing_key",
        custom_error_message=f"expected a mapping with one of the keys {', '.join(keys)}",
    )


class LocalChain(Model):
    """Settings used only when `rpc: local` (devnet or in-process chains)."""

    fund_agents: NonNegativeAmount = Field(
        default=Decimal(100), description="Native coins given to each agent at start."
    )
    fund_tokens: NonNegativeAmount = Field(
        default=Decimal(10_000),
        description="Whole tokens of each `local` token (erc20/spl_mint `local`) each agent "
        "holds at start: topped up to this, never taken away.",
    )
    block_time: float | None = Field(
        default=None,
        gt=0,
        le=60,
        description="Seconds between the local node's blocks. Unset: anvil mines each "
        "transaction at once and the Solana server makes a slot every 0.4 s. Set it to see "
        "a public chain's pace (for example 2 for an OP-stack L2).",
    )


class ChainModel(Model):
    """Base of a chain family's model: one configured chain.

    A family's model declares the fields itself, in the order its reference lists them;
    the annotations below only tell the type checker what every family's model has.
    """

    if TYPE_CHECKING:
        name: str
        family: str
        rpc: str
        local: LocalChain
        htlc: str | None

    @field_validator("rpc", check_fields=False)
    @classmethod
    def _rpc_url(cls, value: str) -> str:
        if value == "local" or value.startswith(("http://", "https://")):
            return value
        raise ValueError(f"rpc {value!r} must be an http(s):// URL or the word 'local'")

    @model_validator(mode="after")
    def _local_htlc(self) -> ChainModel:
        if self.htlc == "local" and self.rpc != "local":
            raise ValueError(
                f"htlc `local` needs `rpc: local` (chain rpc is {self.rpc}); give the address "
                "of the HTLC deployed on that network"
            )
        return self
