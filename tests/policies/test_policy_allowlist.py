"""Allowlist: default deny, names only, exact addresses, selectors."""

from __future__ import annotations

import random

import pytest

from policies import PolicyContext
from policies.builtin.allowlist import Allowlist, AllowlistParams
from policies.registry import validate_deployment_policies
from policies.testing import (
    SUPPLIER_EVM,
    SUPPLIER_SOLANA,
    assert_allows,
    assert_denies,
    attach,
    make_action,
    make_context,
    make_deployment,
)

HEX = "0123456789abcdefABCDEF"
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _lookalikes(real: str, alphabet: str, keep: int, count: int, seed: int) -> set[str]:
    """Addresses with the same first and last `keep` characters and a mangled middle:
    different digits, or (for hex) the same digits in the wrong checksum case."""
    rng = random.Random(seed)
    head, middle, tail = real[:keep], real[keep:-keep], real[-keep:]
    found: set[str] = set()
    while len(found) < count:
        if alphabet is HEX and rng.random() < 0.5:
            mangled = "".join(c.swapcase() if rng.random() < 0.3 else c for c in middle)
        else:
            chars = list(middle)
            for _ in range(rng.randint(1, 4)):
                chars[rng.randrange(len(chars))] = rng.choice(alphabet)
            mangled = "".join(chars)
        candidate = head + mangled + tail
        if candidate != real:
            found.add(candidate)
    return found


def _policy(**params: object) -> tuple[Allowlist, PolicyContext]:
    ctx = make_context()
    policy = Allowlist(AllowlistParams.model_validate({"recipients": ["acme-supplier"], **params}))
    attach(policy, ctx)
    return policy, ctx


async def test_the_address_book_address_passes() -> None:
    policy, ctx = _policy()
    await assert_allows(policy, make_action(), ctx)
    await assert_allows(policy, make_action(chain="solana-local", asset="SOL", amount="1"), ctx)


async def test_a_thousand_lookalike_addresses_are_all_rejected() -> None:
    policy, ctx = _policy()
    evm = _lookalikes(SUPPLIER_EVM, HEX, keep=6, count=800, seed=1)
    solana = _lookalikes(SUPPLIER_SOLANA, BASE58, keep=4, count=200, seed=2)
    assert len(evm) + len(solana) == 1000
    assert SUPPLIER_EVM.lower()[2:] in {a.lower()[2:] for a in evm}  # case-only mangling
    for address in evm:
        decision = await policy.evaluate(make_action(recipient_address=address), ctx)
        assert decision.verdict == "deny", address
    for address in solana:
        action = make_action(
            chain="solana-local", asset="SOL", amount="1", recipient_address=address
        )
        decision = await policy.evaluate(action, ctx)
        assert decision.verdict == "deny", address


async def test_default_deny_for_unlisted_names_and_kinds() -> None:
    policy, ctx = _policy()
    await assert_denies(policy, make_action(recipient="maker"), ctx, "not in the allowlist")
    await assert_denies(policy, make_action(kind="program_call"), ctx, "program")
    await assert_denies(
        policy,
        make_action(kind="contract_call", selector="0xa9059cbb"),
        ctx,
        "contract",
    )


async def test_contract_calls_need_a_listed_selector() -> None:
    policy, ctx = _policy(contracts={"acme-supplier": ["0xa9059cbb"]})
    call = make_action(kind="contract_call", selector="0xa9059cbb", amount="0")
    await assert_allows(policy, call, ctx)
    other = make_action(kind="contract_call", selector="0x095ea7b3", amount="0")
    await assert_denies(policy, other, ctx, "selector 0x095ea7b3 is not allowed")


async def test_agent_counterparties_resolve_through_the_resolver() -> None:
    from policies.base import PolicyEnv
    from policies.ledger import SpendLedger
    from policies.testing import FakeClock

    deployment = make_deployment(
        agents=("payer", "taker"), address_book=[{"name": "taker", "agent": "taker"}]
    )
    ctx = make_context(deployment=deployment)
    policy = Allowlist(AllowlistParams(recipients=["taker"]))
    taker = "0x" + "ab" * 20
    policy.attach(
        PolicyEnv(
            deployment=deployment,
            agent=deployment.agent("payer"),
            clock=FakeClock(),
            prices=ctx.prices,
            ledger=SpendLedger(),
            resolve_agent_address=lambda agent, chain: taker,
        )
    )
    await assert_allows(policy, make_action(recipient="taker", recipient_address=taker), ctx)
    await assert_denies(
        policy, make_action(recipient="taker", recipient_address=SUPPLIER_EVM), ctx, "lookalike"
    )


@pytest.mark.parametrize("field", ["recipients", "programs"])
def test_unknown_names_are_reported_with_their_field_path(field: str) -> None:
    deployment = make_deployment([{"KillSwitch": {}}, {"Allowlist": {field: ["acme-suplier"]}}])
    problems = validate_deployment_policies(deployment)
    assert problems == [
        "agents[0].policies[1] (agent 'payer', policy 'Allowlist'): 'acme-suplier' is not in "
        "the address book"
    ]
