"""Helpers for swap tests: two agents, each with its own store (two daemons)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from chains.atomic import Coordinator, Counterparty, HtlcChain, PlanRecord
from chains.atomic.store import PlanRecord as Record
from chains.atomic.swap import accept_offer, make_offer, on_acceptance
from config.store import open_store
from tests.atomic._env import (
    TEST_MARGINS,
    Authorizer,
    EvmNode,
    SolanaNode,
    evm_htlc,
    make_wallet,
    party,
    solana_htlc,
)

ETH = 10**18
SOL = 10**9


@dataclass
class Side:
    """One agent in its own daemon: wallet, store, coordinator."""

    wallet: Any
    coordinator: Coordinator
    authorizer: Authorizer

    @property
    def purposes(self) -> list[str]:
        """What this side's policy engine authorized, in order."""
        return [purpose for _, purpose, _ in self.authorizer.seen]

    def counterparty(self) -> Counterparty:
        return Counterparty(
            did=self.wallet.did,
            addresses={"evm": self.wallet.evm_address, "solana": self.wallet.solana_address},
        )


async def make_side(
    name: str,
    tmp_path: Any,
    evms: list[EvmNode],
    sol: SolanaNode | None,
    *,
    verify: Any = None,
    margins: Any = TEST_MARGINS,
    store: str | None = None,
    sol_commitment: str = "confirmed",
) -> Side:
    wallet = make_wallet(name)
    authorizer = Authorizer()
    engine = open_store(f"sqlite:///{tmp_path / (store or f'{name}.db')}")
    chains: dict[str, HtlcChain] = {evm.name: await evm_htlc(evm, margins) for evm in evms}
    if sol is not None:
        chains["sol"] = await solana_htlc(sol, margins, sol_commitment)
    coordinator = Coordinator(
        engine,
        party(wallet, authorizer),
        chains,
        authorizer,
        margins=margins,
        verify_authority=verify,
        tx_timeout=20,
        poll=0.05,
    )
    return Side(wallet, coordinator, authorizer)


async def trusting(did: str, plan: Record) -> bool:
    """A verify_authority stand-in that accepts the DID the offer was checked against."""
    return plan.counterparty == did


async def run_both(
    maker: Side, taker: Side, plan_id: str, timeout: float = 60
) -> tuple[PlanRecord, PlanRecord]:
    """Drive both sides, as two watchtowers would, until both are terminal."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        made = await maker.coordinator.drive(plan_id)
        taken = await taker.coordinator.drive(plan_id)
        if (made.terminal and taken.terminal) or loop.time() > deadline:
            return made, taken
        await asyncio.sleep(0.05)


async def run_concurrently(
    maker: Side, taker: Side, plan_id: str, timeout: float = 60
) -> tuple[PlanRecord, PlanRecord]:
    """Drive both sides at once, as two daemons' watchtowers do: neither waits for the
    other's pass to end (a taker tracking its lock does not hold the maker back)."""

    async def drive(side: Side) -> PlanRecord:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (plan := await side.coordinator.drive(plan_id)).terminal:
            if loop.time() > deadline:
                break
            await asyncio.sleep(0.05)
        return plan

    made, taken = await asyncio.gather(drive(maker), drive(taker))
    return made, taken


async def open_swap(maker: Side, taker: Side, plan_id: str, **sides: Any) -> None:
    """Offer, accept, and hand the acceptance back: the messages two daemons exchange."""
    offer = await make_offer(maker.coordinator, plan_id, taker=taker.counterparty(), **sides)
    acceptance = await accept_offer(taker.coordinator, offer, maker_did=maker.wallet.did)
    on_acceptance(maker.coordinator, plan_id, acceptance)


async def close(*sides: Side) -> None:
    for side in sides:
        for chain in side.coordinator.chains.values():
            await chain.close()
            await chain.adapter.close()


async def cheat_lock(side: Side, plan_id: str, index: int, **changes: Any) -> None:
    """Lock leg `index` as `side`, but with `changes` to the terms (amount, hashlock,
    deadline): what a misbehaving counterparty would do, signed with its own keys."""
    coordinator = side.coordinator
    plan = coordinator.store.get(plan_id)
    hashlock = changes.pop("hashlock", plan.hashlock)
    leg = plan.leg(index).model_copy(update=changes)
    chain = coordinator.chain(leg.chain)
    unsigned = await chain.build(
        "lock", leg, hashlock=hashlock, payer=coordinator.party.address(chain.family)
    )
    authorization = await side.authorizer(side.wallet.name, unsigned, "lock", plan_id)
    raw = coordinator.party.sign_tx(chain.family, unsigned, authorization)
    tx_id = await chain.adapter.broadcast(raw)
    # A counterparty's lock is on chain before anyone judges it: the send returning is
    # not the transaction being included (a loaded machine showed the difference).
    for _ in range(200):
        if (await chain.adapter.status(tx_id)).state in ("included", "final"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the cheating lock {tx_id} was not included within 10 s")


@dataclass
class Operator:
    """The operator that issues agent-authority credentials (its DID key from a mnemonic)."""

    signer: Any

    @classmethod
    def new(cls) -> Operator:
        from wallets.hd import derive_operator_did_key, generate_mnemonic, seed_from_mnemonic
        from wallets.jws import JwsSigner

        return cls(JwsSigner(derive_operator_did_key(seed_from_mnemonic(generate_mnemonic(12)))))

    def credential(self, side: Side, chains: tuple[str, ...]) -> str:
        from datetime import UTC, datetime, timedelta

        from wallets.credentials import AgentAuthority, issue_credential

        now = datetime.now(UTC)
        authority = AgentAuthority(agent=side.wallet.name, chains=chains, assets=("ETH", "SOL"))
        return issue_credential(
            self.signer,
            side.wallet.did,
            authority,
            valid_from=now,
            valid_until=now + timedelta(hours=1),
        )

    def verifier(self) -> Any:
        from chains.atomic.swap import credential_verifier
        from wallets.credentials import RevocationList

        return credential_verifier(issuer=self.signer.did, revocations=RevocationList())
