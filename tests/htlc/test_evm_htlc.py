"""The EVM HTLC contract on a real anvil: native coin and ERC-20, every revert, deadlines,
escrow keys per sender, tokens whose fee is switched on after the lock, and the fixed gas
budget of a claim."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, cast

import pytest
from eth_abi.abi import decode, encode
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.types import RPCEndpoint, TxParams

from chains.families.evm import htlc_client as htlc
from chains.htlc.evm import build
from config.errors import ChainError

pytestmark = pytest.mark.anvil

GAS = 1_000_000
PREIMAGE = bytes(range(100, 132))
HASHLOCK = hashlib.sha256(PREIMAGE).digest()


@dataclass(frozen=True)
class Sent:
    """A mined transaction: success flag, decoded custom error, receipt."""

    ok: bool
    error: str | None
    receipt: Any

    @property
    def gas_cost(self) -> int:
        return int(self.receipt["gasUsed"]) * int(self.receipt["effectiveGasPrice"])


class Chain:
    """Thin test driver over anvil's unlocked accounts; every tx is mined, even reverts."""

    def __init__(self, url: str) -> None:
        self.w3 = Web3(Web3.HTTPProvider(url))
        accounts: list[str] = [str(account) for account in self.w3.eth.accounts]
        self.deployer, self.sender, self.recipient, self.keeper = accounts[:4]
        self.htlc = self.deploy(htlc.bytecode())

    def deploy(self, code: bytes) -> str:
        sent = self.send(self.deployer, None, code)
        assert sent.ok, sent
        return str(sent.receipt["contractAddress"])

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def send(
        self,
        frm: str,
        to: str | None,
        data: bytes,
        value: int = 0,
        at: int | None = None,
        gas: int = GAS,
    ) -> Sent:
        if at is not None:
            self.w3.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"), [at])
        tx: dict[str, Any] = {"from": frm, "data": data, "value": value, "gas": gas}
        if to is not None:
            tx["to"] = to
        receipt = self.w3.eth.wait_for_transaction_receipt(
            self.w3.eth.send_transaction(cast(TxParams, tx))
        )
        if receipt["status"] == 1:
            return Sent(True, None, receipt)
        return Sent(False, self._revert_name(receipt["transactionHash"]), receipt)

    def _revert_name(self, tx_hash: bytes) -> str | None:
        trace = self.w3.provider.make_request(
            RPCEndpoint("debug_traceTransaction"),
            ["0x" + bytes(tx_hash).hex(), {"tracer": "callTracer"}],
        )
        output = bytes.fromhex(trace["result"].get("output", "0x")[2:])
        error = htlc.decode_revert(output)
        return error.error if error else None

    def call(self, to: str, data: bytes) -> bytes:
        return bytes(self.w3.eth.call({"to": self.address_of(to), "data": data}))

    def balance(self, who: str) -> int:
        return int(self.w3.eth.get_balance(self.address_of(who)))

    @staticmethod
    def address_of(who: str) -> ChecksumAddress:
        return to_checksum_address(who)

    def swap(self, swap_id: bytes, sender: str | None = None) -> htlc.Swap:
        data = htlc.swaps_calldata(swap_id, sender=sender or self.sender)
        return htlc.decode_swap(self.call(self.htlc, data))


def call_data(signature: str, types: list[str], values: list[Any]) -> bytes:
    return keccak(text=signature)[:4] + encode(types, values)


class Token:
    """A deployed TestToken."""

    def __init__(self, chain: Chain, *, returns_bool: bool = True, fee: int = 0) -> None:
        artifact = json.loads((build.HERE / "TestToken.json").read_text())
        code = bytes.fromhex(artifact["bytecode"][2:])
        args = encode(["string", "string", "bool"], ["Test", "TST", returns_bool])
        self.chain, self.address = chain, chain.deploy(code + args)
        if fee:
            self._tx(chain.deployer, "setFee(uint256)", ["uint256"], [fee])

    def set_fee(self, fee: int, *, from_payer: bool = False) -> None:
        """Switch the token's transfer fee (taken from what the recipient gets, or charged
        to the payer on top of the amount)."""
        args = ["uint256", "bool"]
        self._tx(self.chain.deployer, "setFee(uint256,bool)", args, [fee, from_payer])

    def transfer(self, frm: str, to: str, amount: int) -> None:
        self._tx(frm, "transfer(address,uint256)", ["address", "uint256"], [to, amount])

    def _tx(self, frm: str, signature: str, types: list[str], values: list[Any]) -> None:
        assert self.chain.send(frm, self.address, call_data(signature, types, values)).ok

    def mint_and_approve(self, owner: str, amount: int) -> None:
        self._tx(owner, "mint(address,uint256)", ["address", "uint256"], [owner, amount])
        args = [self.chain.htlc, amount]
        self._tx(owner, "approve(address,uint256)", ["address", "uint256"], args)

    def set_hook(self, target: str, data: bytes) -> None:
        self._tx(
            self.chain.deployer, "setHook(address,bytes)", ["address", "bytes"], [target, data]
        )

    def hook_outcome(self) -> tuple[bool, bytes]:
        ok = self.chain.call(self.address, call_data("hookOk()", [], []))
        result = self.chain.call(self.address, call_data("hookResult()", [], []))
        return ok[-1] == 1, bytes(decode(["bytes"], result)[0])

    def balance(self, who: str) -> int:
        data = call_data("balanceOf(address)", ["address"], [who])
        return int.from_bytes(self.chain.call(self.address, data), "big")


@pytest.fixture(scope="module")
def chain(anvil_url: str) -> Chain:
    return Chain(anvil_url)


def new_id() -> bytes:
    return os.urandom(32)


def lock(
    chain: Chain,
    *,
    amount: int = 10**18,
    deadline_in: int = 3600,
    token: str = htlc.NATIVE_COIN,
    recipient: str | None = None,
    value: int | None = None,
    swap_id: bytes | None = None,
    hashlock: bytes = HASHLOCK,
) -> tuple[bytes, int, Sent]:
    swap_id = swap_id or new_id()
    deadline = chain.now() + deadline_in
    recipient = recipient or chain.recipient
    data = htlc.lock_calldata(
        swap_id, recipient=recipient, hashlock=hashlock, deadline=deadline, token=token,
        amount=max(amount, 1),
    )  # fmt: skip
    if amount == 0:  # the client refuses zero; build the raw call to test the contract
        data = call_data(
            "lock(bytes32,address,bytes32,uint256,address,uint256)",
            ["bytes32", "address", "bytes32", "uint256", "address", "uint256"],
            [swap_id, recipient, hashlock, deadline, token, 0],
        )
    value = htlc.lock_value(token, amount) if value is None else value
    return swap_id, deadline, chain.send(chain.sender, chain.htlc, data, value)


def claim(
    chain: Chain,
    swap_id: bytes,
    preimage: bytes = PREIMAGE,
    at: int | None = None,
    min_payout: int = 0,
) -> Sent:
    """A keeper claims the sender's escrow `swap_id` (any preimage length)."""
    key = htlc.escrow_key(chain.sender, swap_id)
    data = htlc.raw_claim_calldata(key, preimage, min_payout)
    return chain.send(chain.keeper, chain.htlc, data, at=at)


def refund(chain: Chain, swap_id: bytes, at: int | None = None) -> Sent:
    data = htlc.refund_calldata(swap_id, sender=chain.sender)
    return chain.send(chain.keeper, chain.htlc, data, at=at)


# --- artifact ---------------------------------------------------------------------------------


@pytest.mark.skipif(not build.solc_available(), reason="node or npm solc missing: run `npm ci`")
def test_committed_artifact_matches_recompiled_source() -> None:
    artifacts = build.compile_contracts()
    for name, artifact in artifacts.items():
        committed = json.loads((build.HERE / f"{name}.json").read_text())
        assert committed["bytecode"] == artifact["bytecode"], f"{name}.json is stale"
        assert committed == artifact
    assert artifacts["HTLC"]["compiler"]["version"].startswith(build.SOLC_VERSION + "+")


# --- native coin ------------------------------------------------------------------------------


def test_native_lock_claim_by_third_party_pays_recipient(chain: Chain) -> None:
    sender_before, recipient_before = chain.balance(chain.sender), chain.balance(chain.recipient)
    swap_id, deadline, locked = lock(chain, amount=3 * 10**17)
    assert locked.ok, locked
    assert chain.balance(chain.sender) == sender_before - 3 * 10**17 - locked.gas_cost
    assert chain.swap(swap_id) == htlc.Swap(
        chain.sender, chain.recipient, htlc.NATIVE_COIN, 3 * 10**17, HASHLOCK, deadline,
        htlc.SwapState.LOCKED,
    )  # fmt: skip
    claimed = claim(chain, swap_id)
    assert claimed.ok, claimed
    assert chain.balance(chain.recipient) == recipient_before + 3 * 10**17
    assert chain.swap(swap_id).state == htlc.SwapState.CLAIMED
    events = [htlc.decode_event(log["topics"], log["data"]) for log in claimed.receipt["logs"]]
    assert events == [htlc.ClaimedEvent(htlc.escrow_key(chain.sender, swap_id), PREIMAGE)]
    assert "redacted" in repr(events[0])


def test_native_refund_returns_exact_amount_to_sender(chain: Chain) -> None:
    swap_id, deadline, locked = lock(chain, amount=12345)
    assert locked.ok
    before = chain.balance(chain.sender)
    refunded = refund(chain, swap_id, at=deadline)
    assert refunded.ok, refunded
    assert chain.balance(chain.sender) == before + 12345
    assert chain.swap(swap_id).state == htlc.SwapState.REFUNDED
    log = refunded.receipt["logs"][0]
    key = htlc.escrow_key(chain.sender, swap_id)
    assert htlc.decode_event(log["topics"], log["data"]) == htlc.RefundedEvent(key)


def test_locked_event_decodes(chain: Chain) -> None:
    swap_id, deadline, locked = lock(chain, amount=777)
    log = locked.receipt["logs"][0]
    assert htlc.decode_event(log["topics"], log["data"]) == htlc.LockedEvent(
        swap_id, chain.sender, chain.recipient, htlc.NATIVE_COIN, 777, HASHLOCK, deadline
    )


# --- ERC-20 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("returns_bool", [True, False], ids=["standard", "no-return-value"])
def test_erc20_claim_and_refund(chain: Chain, returns_bool: bool) -> None:
    token = Token(chain, returns_bool=returns_bool)
    token.mint_and_approve(chain.sender, 1000)
    claim_id, _, locked = lock(chain, amount=600, token=token.address)
    assert locked.ok, locked
    assert token.balance(chain.htlc) == 600
    assert claim(chain, claim_id).ok
    assert token.balance(chain.recipient) == 600
    refund_id, deadline, locked = lock(chain, amount=400, token=token.address)
    assert locked.ok, locked
    assert refund(chain, refund_id, at=deadline).ok
    assert token.balance(chain.sender) == 400
    assert token.balance(chain.htlc) == 0


# --- deadline boundaries -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "error"), [(-1, None), (0, "DeadlinePassed"), (1, "DeadlinePassed")]
)
def test_claim_deadline_boundary(chain: Chain, offset: int, error: str | None) -> None:
    swap_id, deadline, _ = lock(chain, deadline_in=100)
    sent = claim(chain, swap_id, at=deadline + offset)
    assert chain.now() == deadline + offset
    assert (sent.ok, sent.error) == (error is None, error)


@pytest.mark.parametrize(("offset", "error"), [(-1, "DeadlineNotReached"), (0, None), (1, None)])
def test_refund_deadline_boundary(chain: Chain, offset: int, error: str | None) -> None:
    swap_id, deadline, _ = lock(chain, deadline_in=100)
    sent = refund(chain, swap_id, at=deadline + offset)
    assert chain.now() == deadline + offset
    assert (sent.ok, sent.error) == (error is None, error)


# --- every revert -----------------------------------------------------------------------------


def _reuse_after_claim(chain: Chain) -> Sent:
    swap_id, _, _ = lock(chain)
    assert claim(chain, swap_id).ok
    return lock(chain, swap_id=swap_id)[2]


def _reuse_after_refund(chain: Chain) -> Sent:
    swap_id, deadline, _ = lock(chain)
    assert refund(chain, swap_id, at=deadline).ok
    return lock(chain, swap_id=swap_id)[2]


def _reuse_while_locked(chain: Chain) -> Sent:
    swap_id, _, _ = lock(chain)
    return lock(chain, swap_id=swap_id)[2]


def _claim_twice(chain: Chain) -> Sent:
    swap_id, _, _ = lock(chain)
    assert claim(chain, swap_id).ok
    return claim(chain, swap_id)


def _refund_after_claim(chain: Chain) -> Sent:
    swap_id, deadline, _ = lock(chain)
    assert claim(chain, swap_id).ok
    return refund(chain, swap_id, at=deadline)


def _native_to_rejecting_contract(chain: Chain) -> Sent:
    rejecting = Token(chain).address  # no receive(): native transfers to it revert
    swap_id, _, _ = lock(chain, recipient=rejecting)
    return claim(chain, swap_id)


def _unapproved_token(chain: Chain) -> Sent:
    token = Token(chain)
    return lock(chain, amount=5, token=token.address)[2]


def _fee_token(chain: Chain) -> Sent:
    token = Token(chain, fee=1)
    token.mint_and_approve(chain.sender, 100)
    return lock(chain, amount=100, token=token.address)[2]


def _reentrant_token_callback(chain: Chain) -> Sent:
    token = Token(chain)
    token.mint_and_approve(chain.sender, 100)
    token.set_hook(chain.htlc, htlc.refund_calldata(new_id(), sender=chain.sender))
    outer = lock(chain, amount=100, token=token.address)[2]
    assert outer.ok  # the lock itself completes; only the callback's re-entry is refused
    hook_ok, revert_data = token.hook_outcome()
    reverted = htlc.decode_revert(revert_data)
    return Sent(hook_ok, reverted.error if reverted else None, outer.receipt)


def _fee_switched_on_after_lock(chain: Chain) -> Sent:
    token = Token(chain)
    token.mint_and_approve(chain.sender, 100)
    swap_id, _, locked = lock(chain, amount=100, token=token.address)
    assert locked.ok, locked
    token.set_fee(1)
    return claim(chain, swap_id, min_payout=100)


def _payer_fee_switched_on_after_lock(chain: Chain) -> Sent:
    # Two escrows of the token: the fee could only be paid out of the other one.
    token = Token(chain)
    token.mint_and_approve(chain.sender, 200)
    swap_id, _, locked = lock(chain, amount=100, token=token.address)
    assert locked.ok, locked
    assert lock(chain, amount=100, token=token.address)[2].ok
    token.set_fee(1, from_payer=True)
    return claim(chain, swap_id)


def _preimage_of_length(length: int) -> Any:
    def scenario(chain: Chain) -> Sent:
        # The hashlock matches the short/long preimage, so only the length check rejects.
        preimage = bytes(range(length))
        swap_id, _, _ = lock(chain, hashlock=hashlib.sha256(preimage).digest())
        return claim(chain, swap_id, preimage)

    scenario.__name__ = f"_preimage_{length}_bytes"
    return scenario


REVERTS: list[tuple[str, Any]] = [
    ("SwapExists", _reuse_while_locked),
    ("SwapExists", _reuse_after_claim),
    ("SwapExists", _reuse_after_refund),
    ("SwapNotFound", lambda c: claim(c, new_id())),
    ("SwapNotFound", lambda c: refund(c, new_id())),
    ("SwapSettled", _claim_twice),
    ("SwapSettled", _refund_after_claim),
    ("InvalidRecipient", lambda c: lock(c, recipient=htlc.NATIVE_COIN)[2]),
    ("ZeroAmount", lambda c: lock(c, amount=0, value=0)[2]),
    ("InvalidDeadline", lambda c: lock(c, deadline_in=-10)[2]),
    ("InvalidDeadline", lambda c: lock(c, deadline_in=2**64)[2]),
    ("WrongValue", lambda c: lock(c, amount=100, value=99)[2]),
    ("WrongValue", lambda c: lock(c, token=Token(c).address, value=1)[2]),
    ("NotAContract", lambda c: lock(c, token=c.keeper)[2]),
    ("TokenAmountMismatch", _fee_token),
    ("TokenAmountMismatch", _payer_fee_switched_on_after_lock),
    ("ShortPayout", _fee_switched_on_after_lock),
    ("TokenTransferFailed", _unapproved_token),
    ("NativeTransferFailed", _native_to_rejecting_contract),
    ("DeadlinePassed", lambda c: claim(c, lock(c, deadline_in=5)[0], at=c.now() + 5)),
    ("DeadlineNotReached", lambda c: refund(c, lock(c)[0])),
    ("InvalidPreimageLength", _preimage_of_length(31)),
    ("InvalidPreimageLength", _preimage_of_length(33)),
    ("WrongPreimage", lambda c: claim(c, lock(c)[0], bytes(32))),
    ("Reentrancy", _reentrant_token_callback),
]


@pytest.mark.parametrize(("error", "scenario"), REVERTS, ids=[e for e, _ in REVERTS])
def test_revert(chain: Chain, error: str, scenario: Any) -> None:
    sent = scenario(chain)
    assert not sent.ok
    assert sent.error == error


def test_every_custom_error_has_a_revert_test() -> None:
    declared = {entry["name"] for entry in htlc.abi() if entry["type"] == "error"}
    assert {error for error, _ in REVERTS} == declared


def test_lock_at_exact_block_timestamp_is_rejected(chain: Chain) -> None:
    at = chain.now() + 50
    data = htlc.lock_calldata(
        new_id(), recipient=chain.recipient, hashlock=HASHLOCK, deadline=at,
        token=htlc.NATIVE_COIN, amount=1,
    )  # fmt: skip
    sent = chain.send(chain.sender, chain.htlc, data, value=1, at=at)
    assert (sent.ok, sent.error) == (False, "InvalidDeadline")


# --- client -------------------------------------------------------------------------------------


def test_client_refuses_bad_inputs() -> None:
    with pytest.raises(ChainError, match="preimage"):
        htlc.claim_calldata(bytes(32), bytes(31), sender=htlc.NATIVE_COIN, min_payout=1)
    with pytest.raises(ChainError, match="min_payout"):
        htlc.claim_calldata(bytes(32), bytes(32), sender=htlc.NATIVE_COIN, min_payout=-1)
    with pytest.raises(ChainError, match="positive"):
        htlc.lock_calldata(
            bytes(32), recipient=htlc.NATIVE_COIN, hashlock=HASHLOCK, deadline=1,
            token=htlc.NATIVE_COIN, amount=0,
        )  # fmt: skip
    assert htlc.lock_value(htlc.NATIVE_COIN, 5) == 5
    assert htlc.lock_value("0x" + "11" * 20, 5) == 0


def test_decode_revert_names_error() -> None:
    data = keccak(text="WrongPreimage()")[:4]
    reverted = htlc.decode_revert(data)
    assert reverted is not None
    assert reverted.reason == "WrongPreimage"
    assert htlc.decode_revert(b"\x08\xc3\x79\xa0") is None


# --- escrow keys: one id namespace per sender -------------------------------------------------


def test_escrow_key_matches_the_contract(chain: Chain) -> None:
    swap_id = new_id()
    data = call_data("escrowKey(address,bytes32)", ["address", "bytes32"], [chain.sender, swap_id])
    assert chain.call(chain.htlc, data) == htlc.escrow_key(chain.sender, swap_id)
    assert htlc.escrow_key(chain.sender, swap_id) != htlc.escrow_key(chain.keeper, swap_id)


def test_a_squatted_id_does_not_block_the_real_lock(chain: Chain) -> None:
    """Anyone may lock 1 wei under an id the real sender has published; the real lock
    still succeeds, under its own key, and each escrow pays only its own terms."""
    swap_id = new_id()
    squat = htlc.lock_calldata(
        swap_id, recipient=chain.keeper, hashlock=HASHLOCK, deadline=chain.now() + 3600,
        token=htlc.NATIVE_COIN, amount=1,
    )  # fmt: skip
    assert chain.send(chain.keeper, chain.htlc, squat, value=1).ok
    recipient_before = chain.balance(chain.recipient)
    _, deadline, locked = lock(chain, swap_id=swap_id, amount=5 * 10**17)
    assert locked.ok, locked
    assert chain.swap(swap_id) == htlc.Swap(
        chain.sender, chain.recipient, htlc.NATIVE_COIN, 5 * 10**17, HASHLOCK, deadline,
        htlc.SwapState.LOCKED,
    )  # fmt: skip
    assert chain.swap(swap_id, sender=chain.keeper).amount == 1
    assert claim(chain, swap_id).ok
    assert chain.balance(chain.recipient) == recipient_before + 5 * 10**17
    assert chain.swap(swap_id, sender=chain.keeper).state == htlc.SwapState.LOCKED
    # Negative control: within one sender's namespace an id is still used once.
    assert lock(chain, swap_id=swap_id)[2].error == "SwapExists"


# --- a token fee switched on after the lock ---------------------------------------------------


def test_fee_switched_on_after_lock_never_short_pays_a_full_claim(chain: Chain) -> None:
    """A claim asking for the whole amount reverts (nothing moves, the escrow stays
    locked); a claimer whose preimage is already public accepts less and is paid."""
    token = Token(chain)
    token.mint_and_approve(chain.sender, 600)
    swap_id, _, locked = lock(chain, amount=600, token=token.address)
    assert locked.ok, locked
    token.set_fee(7)
    full = claim(chain, swap_id, min_payout=600)
    assert (full.ok, full.error) == (False, "ShortPayout")
    assert token.balance(chain.recipient) == 0
    assert chain.swap(swap_id).state == htlc.SwapState.LOCKED
    assert token.balance(chain.htlc) == 600
    accepted = claim(chain, swap_id, min_payout=593)
    assert accepted.ok, accepted
    assert token.balance(chain.recipient) == 593
    assert token.balance(chain.htlc) == 0


def test_refund_of_a_fee_switched_token_pays_what_the_token_delivers(chain: Chain) -> None:
    token = Token(chain)
    token.mint_and_approve(chain.sender, 400)
    swap_id, deadline, locked = lock(chain, amount=400, token=token.address)
    assert locked.ok, locked
    token.set_fee(3)
    assert refund(chain, swap_id, at=deadline).ok
    assert token.balance(chain.sender) == 397
    assert token.balance(chain.htlc) == 0


def test_fee_charged_to_the_contract_never_comes_out_of_other_escrows(chain: Chain) -> None:
    """A token that would take amount + fee from the contract is refused on claim and on
    refund, so the fee never spends another escrow's tokens; once the fee is off, both
    escrows settle in full."""
    token = Token(chain)
    token.mint_and_approve(chain.sender, 200)
    first, deadline, _ = lock(chain, amount=100, token=token.address)
    second, _, _ = lock(chain, amount=100, token=token.address, deadline_in=7200)
    token.set_fee(5, from_payer=True)
    # Negative control: the token really takes amount + fee from a payer.
    token.mint_and_approve(chain.keeper, 50)
    token.transfer(chain.keeper, chain.deployer, 10)
    assert (token.balance(chain.keeper), token.balance(chain.deployer)) == (35, 10)
    assert claim(chain, first).error == "TokenAmountMismatch"
    assert refund(chain, first, at=deadline).error == "TokenAmountMismatch"
    assert token.balance(chain.htlc) == 200
    token.set_fee(0)
    assert refund(chain, first).ok
    assert claim(chain, second, min_payout=100).ok
    assert (token.balance(chain.sender), token.balance(chain.recipient)) == (100, 100)
    assert token.balance(chain.htlc) == 0


# --- the fixed gas budget of a claim ----------------------------------------------------------


def _intrinsic(data: bytes) -> int:
    """Gas a transaction with `data` pays before executing (EIP-2028 calldata pricing)."""
    return 21_000 + sum(16 if byte else 4 for byte in data)


def _claim_paying_an_empty_account(chain: Chain, kind: str, gas: int) -> tuple[Sent, bytes, str]:
    recipient = to_checksum_address("0x" + os.urandom(20).hex())
    token = htlc.NATIVE_COIN
    if kind != "native":
        erc20 = Token(chain, returns_bool=kind == "token")
        erc20.mint_and_approve(chain.sender, 10**18)
        token = erc20.address
    swap_id, _, locked = lock(chain, amount=10**18, token=token, recipient=recipient)
    assert locked.ok, locked
    data = htlc.claim_calldata(swap_id, PREIMAGE, sender=chain.sender, min_payout=10**18)
    return chain.send(chain.keeper, chain.htlc, data, gas=gas), data, token


@pytest.mark.parametrize("kind", ["native", "token", "token-no-return-value"])
def test_claim_gas_budget_covers_a_measured_claim_with_half_again_to_spare(
    chain: Chain, kind: str
) -> None:
    """The execution budget a claim is built with (it is not estimated: its calldata
    holds the preimage) against what a claim paying an empty account uses on anvil.
    Negative control: the same claim with one gas less than it used runs out of gas."""
    sent, data, token = _claim_paying_an_empty_account(chain, kind, GAS)
    assert sent.ok, sent
    used = int(sent.receipt["gasUsed"])
    executed = used - _intrinsic(data)
    assert executed * 3 // 2 <= htlc.claim_gas(token), (kind, executed)
    starved, _, _ = _claim_paying_an_empty_account(chain, kind, used - 1)
    assert not starved.ok
