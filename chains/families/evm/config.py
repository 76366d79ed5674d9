"""The configuration of an EVM chain (Arbitrum, Optimism, Base or any chain id)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, Tag, model_validator

from config.chain_model import ChainModel, LocalChain, Model, key_tag
from config.types import EvmAddress, Name, NonNegativeAmount, PositiveAmount


class ConfirmationsFinality(Model):
    """A transaction is final after this many blocks on top of it."""

    confirmations: int = Field(ge=0, le=10_000)


class BlockTagFinality(Model):
    """A transaction is final once included at or below the `safe`/`finalized` block."""

    block_tag: Literal["safe", "finalized"]


EvmFinality = Annotated[
    Annotated[ConfirmationsFinality, Tag("confirmations")]
    | Annotated[BlockTagFinality, Tag("block_tag")],
    key_tag("confirmations", "block_tag"),
]


class EvmFees(Model):
    """Caps on EIP-1559 fees, in gwei. Transactions above a cap are not sent."""

    max_fee_gwei: PositiveAmount = Decimal(100)
    max_priority_fee_gwei: NonNegativeAmount = Decimal(2)

    @model_validator(mode="after")
    def _priority_below_max(self) -> EvmFees:
        if self.max_priority_fee_gwei > self.max_fee_gwei:
            raise ValueError(
                f"max_priority_fee_gwei {self.max_priority_fee_gwei} exceeds max_fee_gwei "
                f"{self.max_fee_gwei}; the priority fee is part of the max fee"
            )
        return self


class EvmChain(ChainModel):
    """An EVM chain (Arbitrum, Optimism, Base or any chain id)."""

    name: Name
    family: Literal["evm"]
    chain_id: int = Field(gt=0, lt=2**63)
    rpc: str = Field(description="An http(s) URL, or `local` for a devnet chain.")
    finality: EvmFinality = ConfirmationsFinality(confirmations=1)
    fees: EvmFees = EvmFees()
    local: LocalChain = LocalChain()
    htlc: Literal["local"] | EvmAddress | None = Field(
        default=None,
        description="The HTLC contract for all-or-nothing actions on this chain; `local` on "
        "an `rpc: local` chain has the devnet install the project's own build.",
    )
