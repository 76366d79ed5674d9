"""All-or-nothing across chains: the HTLC coordinator, swaps between agents, and the
watchtower that finishes or refunds every open plan after a restart."""

from chains.atomic.base import HtlcChain, Leg, LockState, OnChainLock, Party, PlanRefused
from chains.atomic.coordinator import Coordinator, Payment
from chains.atomic.store import PlanRecord, PlanStore
from chains.atomic.swap import Counterparty, SwapOffer, SwapSide
from config.margins import ChainMargin, Margins

__all__ = [
    "ChainMargin",
    "Coordinator",
    "Counterparty",
    "HtlcChain",
    "Leg",
    "LockState",
    "Margins",
    "OnChainLock",
    "Party",
    "Payment",
    "PlanRecord",
    "PlanRefused",
    "PlanStore",
    "SwapOffer",
    "SwapSide",
]
