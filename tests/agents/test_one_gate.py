"""There is no path to a signer around the policy engine: the product reaches a signer
only through ``agents/gate.py``, and through it a denied or queued action is never
signed."""

from __future__ import annotations

import ast
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from agents.gate import Signed, authorize_and_sign, authorize_lock, escrow_signer
from chains.base import NativeTransfer
from chains.families import FAMILIES
from chains.families.evm.tx import EvmUnsignedTx
from config.errors import PolicyViolation, SignerError
from policies import Denied, PolicyEngine, Queued
from policies.testing import FakeClock, make_action, make_deployment, make_evidence
from wallets.authorization import AuthorizationMint, evm_tx_digest
from wallets.evm import EvmSigner
from wallets.hd import derive_agent_keys, seed_from_mnemonic
from wallets.operator import AgentWallet

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("agents", "chains", "policies", "wallets", "config", "main.py")
GATE = "agents/gate.py"
MAY_SIGN = {GATE, "chains/signing.py"} | {
    f"chains/families/{family.name}/signing.py" for family in FAMILIES
}
"""The gate, the one dispatch it calls, and each chain family's signing behind it."""
SIGNER_FACTORIES = {"evm_signer", "solana_signer", "EvmSigner", "SolanaSigner"}


def signer_calls(source: str) -> list[str]:
    """Every call in `source` that reaches a transaction signer: the one dispatch
    (``chains.signing.sign``), a wallet's signer factories, the signer classes, and
    ``.sign(tx, authorization, ...)`` (a transaction signer's two-argument call; the
    DID signers of the audit log and JWS take one payload)."""
    tree = ast.parse(source)
    dispatch = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "chains.signing"
        for alias in node.names
        if alias.name == "sign"
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if (isinstance(func, ast.Name) and name in dispatch) or (
            isinstance(func, ast.Attribute) and ast.unparse(func) == "chains.signing.sign"
        ):
            found.append(f"line {node.lineno}: chains.signing.sign")
        elif name in SIGNER_FACTORIES:
            found.append(f"line {node.lineno}: {name}(")
        elif isinstance(func, ast.Attribute) and name == "sign" and _signs_a_transaction(node):
            found.append(f"line {node.lineno}: {ast.unparse(func)}(")
    return sorted(found, key=lambda line: int(line.split()[1].rstrip(":")))


def _signs_a_transaction(call: ast.Call) -> bool:
    return len(call.args) >= 2 or any(kw.arg == "authorization" for kw in call.keywords)


def product_modules() -> list[Path]:
    paths: list[Path] = []
    for top in PRODUCT:
        path = ROOT / top
        paths.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return [p for p in paths if "migrations" not in p.parts]


def test_the_scan_finds_every_way_to_a_signer_in_synthetic_source():
    source = """
from chains.signing import sign
from chains.signing import sign as s2
import chains.signing

def bypass(wallet, verifier, unsigned, auth, tx, signer):
    sign(wallet, verifier, unsigned, auth)
    s2(wallet, verifier, unsigned, auth)
    chains.signing.sign(wallet, verifier, unsigned, auth)
    wallet.evm_signer(verifier).sign(tx, auth)
    wallet.solana_signer(verifier)
    EvmSigner("a", b"k", verifier)
    SolanaSigner("a", b"k", verifier)
    signer.sign(tx, authorization=auth)

def harmless(jws, payload):
    jws.sign(payload, typ="x")
    jws.sign_json({"a": 1})
"""
    assert sorted(line.split(": ", 1)[1] for line in signer_calls(source)) == sorted(
        [
            "chains.signing.sign",
            "chains.signing.sign",
            "chains.signing.sign",
            "wallet.evm_signer(verifier).sign(",
            "evm_signer(",
            "solana_signer(",
            "EvmSigner(",
            "SolanaSigner(",
            "signer.sign(",
        ]
    )
    assert all("jws" not in line for line in signer_calls(source))


def test_the_scan_covers_the_product():
    relative = {p.relative_to(ROOT).as_posix() for p in product_modules()}
    assert {GATE, "agents/payments.py", "agents/cross_chain.py", "main.py"} <= relative
    assert any(path.startswith("wallets/") for path in relative)
    assert signer_calls((ROOT / GATE).read_text(encoding="utf-8"))


def test_nothing_outside_the_gate_reaches_a_signer():
    bypasses = {}
    for path in product_modules():
        relative = path.relative_to(ROOT).as_posix()
        if relative in MAY_SIGN or relative.startswith("wallets/"):
            continue
        calls = signer_calls(path.read_text(encoding="utf-8"))
        if calls:
            bypasses[relative] = calls
    assert bypasses == {}


def test_only_the_gate_calls_the_signing_dispatch():
    callers = set()
    for path in product_modules():
        relative = path.relative_to(ROOT).as_posix()
        if any(call.endswith("chains.signing.sign") for call in signer_calls(path.read_text())):
            callers.add(relative)
    assert callers == {GATE}


# -- behaviour: a denied or queued action never reaches the signer ----------------------


def _wallet() -> AgentWallet:
    mnemonic = "test test test test test test test test test test test junk"
    return AgentWallet("payer", derive_agent_keys(seed_from_mnemonic(mnemonic), 0))


def _unsigned(wallet: AgentWallet, value: int) -> EvmUnsignedTx:
    tx = {
        "type": 2,
        "chainId": 31337,
        "nonce": 0,
        "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "value": value,
        "gas": 21000,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "data": b"",
    }
    return EvmUnsignedTx(
        chain="evm-local",
        sender=wallet.evm_address,
        intent=NativeTransfer(to=str(tx["to"]), amount=value),
        digest=evm_tx_digest(tx),
        tx=tx,
    )


@pytest.fixture
def signed_by(monkeypatch) -> list[Any]:
    """Every transaction the real EVM signer signs (the spy still signs)."""
    calls: list[Any] = []
    real = EvmSigner.sign

    def spy(self: EvmSigner, tx: Any, authorization: Any) -> Any:
        calls.append(tx)
        return real(self, tx, authorization)

    monkeypatch.setattr(EvmSigner, "sign", spy)
    return calls


POLICIES: list[dict[str, Any]] = [
    {"SpendLimit": {"per_transaction": {"ETH": "1"}}},
    {"HumanApproval": {"above_usd": "500", "expires": "1h"}},
]


async def _through_gate(engine: PolicyEngine, amount: str):
    wallet = _wallet()
    value = int(Decimal(amount).scaleb(18))
    unsigned = _unsigned(wallet, value)
    action = make_action(amount=amount, digest=unsigned.digest)
    ctx = engine.context("payer", plan_id=action.plan_id, evidence=make_evidence())
    return await authorize_and_sign(engine, wallet, action, unsigned, ctx), wallet


async def test_an_authorized_action_is_signed_by_the_real_signer(signed_by):
    engine = PolicyEngine(make_deployment(POLICIES), None, clock=FakeClock())
    outcome, wallet = await _through_gate(engine, "0.05")
    assert isinstance(outcome, Signed)
    assert Account.recover_transaction(outcome.raw) == wallet.evm_address
    assert len(signed_by) == 1


async def test_a_denied_action_never_reaches_the_signer(signed_by):
    engine = PolicyEngine(make_deployment(POLICIES), None, clock=FakeClock())
    outcome, _ = await _through_gate(engine, "2")  # over the 1 ETH per-transaction limit
    assert isinstance(outcome, Denied)
    assert outcome.policy == "SpendLimit"
    assert signed_by == []


async def test_a_queued_action_never_reaches_the_signer(signed_by):
    engine = PolicyEngine(make_deployment(POLICIES), None, clock=FakeClock())
    outcome, _ = await _through_gate(engine, "0.5")  # $1500: waits for a person
    assert isinstance(outcome, Queued)
    assert signed_by == []


async def test_a_denied_or_queued_escrow_lock_gets_no_authorization(signed_by):
    engine = PolicyEngine(make_deployment(POLICIES), None, clock=FakeClock())
    for amount, reason in (("2", "denied by SpendLimit"), ("0.5", "needs approval")):
        action = make_action(kind="swap_leg", amount=amount)
        ctx = engine.context("payer", plan_id=action.plan_id, evidence=make_evidence())
        with pytest.raises(PolicyViolation, match=reason):
            await authorize_lock(engine, action, ctx)
    assert signed_by == []


def test_the_escrow_signer_refuses_an_authorization_the_engine_did_not_mint():
    engine = PolicyEngine(make_deployment(POLICIES), None, clock=FakeClock())
    wallet = _wallet()
    unsigned = _unsigned(wallet, 10**15)
    forged = AuthorizationMint().mint("payer", unsigned.digest, timedelta(minutes=1))
    with pytest.raises(SignerError):
        escrow_signer(engine, wallet)(unsigned, forged, ())
