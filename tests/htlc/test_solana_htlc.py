"""The Solana HTLC program in LiteSVM: happy paths, every rejection, deadline boundaries."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account

from chains.families.solana import htlc_client as htlc
from chains.htlc.solana import build
from chains.htlc.solana.litesvm_harness import HtlcSvm, LockedSwap, TxOutcome, lock_swap
from chains.htlc.solana.sbpf_asm import murmur3_32
from config.errors import ChainError

E = htlc.HtlcProgramError
SIG_FEE = 5_000


def claim_ix(env: HtlcSvm, swap: LockedSwap, preimage: bytes | None = None) -> Instruction:
    return htlc.claim_instruction(
        env.program_id,
        escrow=swap.escrow.pubkey(),
        recipient=swap.recipient,
        preimage=swap.preimage if preimage is None else preimage,
    )


def refund_ix(env: HtlcSvm, swap: LockedSwap) -> Instruction:
    return htlc.refund_instruction(
        env.program_id, escrow=swap.escrow.pubkey(), sender=swap.sender.pubkey()
    )


def raw_ix(env: HtlcSvm, data: bytes, metas: list[AccountMeta]) -> Instruction:
    return Instruction(env.program_id, data, metas)


def meta(
    keypair_or_key: Keypair | Pubkey, *, signer: bool = False, writable: bool = True
) -> AccountMeta:
    key = keypair_or_key.pubkey() if isinstance(keypair_or_key, Keypair) else keypair_or_key
    return AccountMeta(key, is_signer=signer, is_writable=writable)


def create_escrow(env: HtlcSvm, payer: Keypair, space: int = htlc.ESCROW_LEN) -> Keypair:
    """A program-owned, zeroed account created in its own transaction (never locked)."""
    escrow = Keypair()
    params = CreateAccountParams(
        from_pubkey=payer.pubkey(),
        to_pubkey=escrow.pubkey(),
        lamports=env.svm.minimum_balance_for_rent_exemption(space) + 1_000_000,
        space=space,
        owner=env.program_id,
    )
    assert env.send([create_account(params)], [payer, escrow]).ok
    return escrow


def lock_data(hashlock: bytes, deadline: int, amount: int) -> bytes:
    return htlc.LOCK_DISCRIMINATOR + hashlock + struct.pack("<qQ", deadline, amount)


# --- build -------------------------------------------------------------------------------


def test_build_is_deterministic_and_matches_committed_elf() -> None:
    assert build.build_elf() == build.build_elf() == build.ELF_PATH.read_bytes()


def test_committed_idl_matches_generator() -> None:
    expected = build.render_idl(str(htlc.LOCAL_PROGRAM_ID))
    assert build.IDL_PATH.read_text() == expected
    idl = json.loads(expected)
    assert [ix["name"] for ix in idl["instructions"]] == [
        "lock", "claim", "refund", "lock_token", "claim_token", "refund_token",
    ]  # fmt: skip
    assert {err["code"] for err in idl["errors"]} == {int(err) for err in E}


def test_elf_header_is_sbpf_v3_with_one_executable_segment() -> None:
    elf = build.ELF_PATH.read_bytes()
    e_machine, e_flags = struct.unpack_from("<H", elf, 18)[0], struct.unpack_from("<I", elf, 48)[0]
    p_type, p_flags, _, p_vaddr = struct.unpack_from("<IIQQ", elf, 64)
    assert (e_machine, e_flags, p_type, p_flags, p_vaddr) == (247, 3, 1, 1, 1 << 32)


def test_murmur3_syscall_hashes() -> None:
    # Values the Solana runtime registers its syscalls under.
    assert murmur3_32(b"sol_log_") == 0x207559BD
    assert murmur3_32(b"sol_sha256") == 0x11F49D86
    assert murmur3_32(b"sol_get_clock_sysvar") == 0xD56B5FE9


def test_discriminators_are_anchor_style() -> None:
    assert hashlib.sha256(b"global:lock").digest()[:8] == htlc.LOCK_DISCRIMINATOR
    assert hashlib.sha256(b"account:Escrow").digest()[:8] == htlc.ESCROW_DISCRIMINATOR


# --- happy paths and accounting -------------------------------------------------------------


def test_lock_records_escrow_and_charges_sender_exactly(svm_env: HtlcSvm) -> None:
    env = svm_env
    swap = lock_swap(env, amount=123_456_789)
    assert swap.outcome.ok, swap.outcome
    spent = 10_000_000_000 - env.balance(swap.sender.pubkey())
    # Two signatures (sender and escrow) pay the fee; the rest is rent deposit + amount.
    assert swap.outcome.fee == 2 * SIG_FEE
    assert spent == env.rent_exempt() + 123_456_789 + 2 * SIG_FEE
    escrow = env.escrow(swap.escrow.pubkey())
    assert escrow == htlc.Escrow(
        htlc.EscrowState.LOCKED,
        swap.sender.pubkey(),
        swap.recipient,
        hashlib.sha256(swap.preimage).digest(),
        swap.deadline,
        123_456_789,
    )
    assert env.balance(swap.escrow.pubkey()) == env.rent_exempt() + 123_456_789


def test_claim_by_third_party_pays_recipient_everything_and_closes_escrow(
    svm_env: HtlcSvm,
) -> None:
    env = svm_env
    swap = lock_swap(env, amount=5_000_000)
    locked = env.balance(swap.escrow.pubkey())
    submitter = env.funded(1_000_000_000)
    outcome = env.send([claim_ix(env, swap)], [submitter])
    assert outcome.ok, outcome
    assert env.balance(swap.recipient) == locked == env.rent_exempt() + 5_000_000
    assert env.svm.get_account(swap.escrow.pubkey()) is None
    assert env.balance(submitter.pubkey()) == 1_000_000_000 - SIG_FEE
    events = htlc.decode_claimed_events(outcome.logs)
    assert events == [htlc.ClaimedEvent(swap.escrow.pubkey(), swap.preimage)]
    assert "redacted" in repr(events[0])


def test_refund_returns_everything_to_sender(svm_env: HtlcSvm) -> None:
    env = svm_env
    swap = lock_swap(env, amount=7_000_000)
    after_lock = env.balance(swap.sender.pubkey())
    env.set_time(swap.deadline)
    keeper = env.funded(1_000_000_000)
    outcome = env.send([refund_ix(env, swap)], [keeper])
    assert outcome.ok, outcome
    assert env.balance(swap.sender.pubkey()) == after_lock + env.rent_exempt() + 7_000_000
    assert env.svm.get_account(swap.escrow.pubkey()) is None


# --- deadline boundaries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "error"), [(-1, None), (0, E.CLAIM_AFTER_DEADLINE), (1, E.CLAIM_AFTER_DEADLINE)]
)
def test_claim_deadline_boundary(svm_env: HtlcSvm, offset: int, error: E | None) -> None:
    swap = lock_swap(svm_env)
    svm_env.set_time(swap.deadline + offset)
    outcome = svm_env.send([claim_ix(svm_env, swap)], [swap.sender])
    assert outcome.error_code == error, outcome
    assert outcome.ok is (error is None)


@pytest.mark.parametrize(
    ("offset", "error"), [(-1, E.REFUND_BEFORE_DEADLINE), (0, None), (1, None)]
)
def test_refund_deadline_boundary(svm_env: HtlcSvm, offset: int, error: E | None) -> None:
    swap = lock_swap(svm_env)
    svm_env.set_time(swap.deadline + offset)
    outcome = svm_env.send([refund_ix(svm_env, swap)], [swap.sender])
    assert outcome.error_code == error, outcome
    assert outcome.ok is (error is None)


@pytest.mark.parametrize(("deadline_in", "error"), [(0, E.DEADLINE_PASSED), (1, None)])
def test_lock_deadline_must_be_in_the_future(
    svm_env: HtlcSvm, deadline_in: int, error: E | None
) -> None:
    swap = lock_swap(svm_env, deadline_in=deadline_in)
    assert swap.outcome.error_code == error
    assert swap.outcome.ok is (error is None)


# --- every rejection code ---------------------------------------------------------------------

Scenario = Callable[[HtlcSvm], TxOutcome]


def _unknown_discriminator(env: HtlcSvm) -> TxOutcome:
    swap = lock_swap(env)
    return env.send([raw_ix(env, b"\x00" * 8, [meta(swap.escrow)])], [swap.sender])


def _short_data(env: HtlcSvm) -> TxOutcome:
    payer = env.funded(10**9)
    return env.send([raw_ix(env, b"\x01\x02", [])], [payer])


def _vec_length_mismatch(env: HtlcSvm) -> TxOutcome:
    swap = lock_swap(env)
    data = htlc.CLAIM_DISCRIMINATOR + struct.pack("<I", 32) + swap.preimage + b"\x00"
    return env.send([raw_ix(env, data, claim_ix(env, swap).accounts)], [swap.sender])


def _missing_accounts(env: HtlcSvm) -> TxOutcome:
    swap = lock_swap(env)
    return env.send([raw_ix(env, claim_ix(env, swap).data, [meta(swap.escrow)])], [swap.sender])


def _duplicate_account(env: HtlcSvm) -> TxOutcome:
    swap = lock_swap(env)
    metas = [meta(swap.escrow), meta(swap.escrow)]
    return env.send([raw_ix(env, claim_ix(env, swap).data, metas)], [swap.sender])


def _wrong_owner(env: HtlcSvm) -> TxOutcome:
    swap = lock_swap(env)
    impostor = env.funded(10**9)  # system-owned account posing as the escrow
    metas = [meta(impostor), meta(swap.recipient)]
    return env.send([raw_ix(env, claim_ix(env, swap).data, metas)], [swap.sender])


def _claim_after_close(env: HtlcSvm) -> TxOutcome:
    swap = lock_swap(env)
    assert env.send([claim_ix(env, swap)], [swap.sender]).ok
    return env.send([claim_ix(env, swap)], [swap.sender])  # the escrow no longer exists


def _sender_not_signer(env: HtlcSvm) -> TxOutcome:
    payer, escrow, sender = env.funded(10**10), Keypair(), Keypair()
    ixs = htlc.lock_instructions(
        env.program_id, sender=payer.pubkey(), escrow=escrow.pubkey(),
        recipient=Keypair().pubkey(), hashlock=bytes(32), deadline=2_000_000_000,
        amount=1, rent_exempt_lamports=env.rent_exempt(),
    )  # fmt: skip
    lock = ixs[1]
    metas = [meta(sender.pubkey()), *lock.accounts[1:]]
    return env.send([ixs[0], raw_ix(env, lock.data, metas)], [payer, escrow])


def _escrow_not_signer(env: HtlcSvm) -> TxOutcome:
    payer = env.funded(10**10)
    escrow = create_escrow(env, payer)
    metas = [meta(payer, signer=True), meta(escrow), meta(Keypair().pubkey(), writable=False)]
    data = lock_data(bytes(32), 2_000_000_000, 1)
    return env.send([raw_ix(env, data, metas)], [payer])


def _recipient_read_only(env: HtlcSvm) -> TxOutcome:
    swap = lock_swap(env)
    metas = [meta(swap.escrow), meta(swap.recipient, writable=False)]
    return env.send([raw_ix(env, claim_ix(env, swap).data, metas)], [swap.sender])


def _escrow_wrong_size(env: HtlcSvm) -> TxOutcome:
    payer = env.funded(10**10)
    escrow = create_escrow(env, payer, space=htlc.ESCROW_LEN + 8)
    metas = [meta(payer, signer=True), meta(escrow, signer=True), meta(Keypair().pubkey())]
    return env.send([raw_ix(env, lock_data(bytes(32), 2_000_000_000, 1), metas)], [payer, escrow])


def _lock_twice(env: HtlcSvm) -> TxOutcome:
    swap = lock_swap(env)
    again = htlc.lock_instruction(
        env.program_id, sender=swap.sender.pubkey(), escrow=swap.escrow.pubkey(),
        recipient=swap.recipient, hashlock=bytes(32), deadline=swap.deadline, amount=1,
    )  # fmt: skip
    return env.send([again], [swap.sender, swap.escrow])


def _claim_never_locked(env: HtlcSvm) -> TxOutcome:
    payer = env.funded(10**10)
    escrow = create_escrow(env, payer)
    metas = [meta(escrow), meta(Keypair().pubkey())]
    data = htlc.encode_claim_data(bytes(32))
    return env.send([raw_ix(env, data, metas)], [payer])


def _claim_twice_in_one_tx(env: HtlcSvm) -> TxOutcome:
    swap = lock_swap(env)
    return env.send([claim_ix(env, swap), claim_ix(env, swap)], [swap.sender])


def _zero_amount(env: HtlcSvm) -> TxOutcome:
    payer = env.funded(10**10)
    escrow = create_escrow(env, payer)
    metas = [meta(payer, signer=True), meta(escrow, signer=True), meta(Keypair().pubkey())]
    return env.send([raw_ix(env, lock_data(bytes(32), 2_000_000_000, 0), metas)], [payer, escrow])


def _underfunded_escrow(env: HtlcSvm) -> TxOutcome:
    sender, escrow = env.funded(10**10), Keypair()
    ixs = htlc.lock_instructions(
        env.program_id, sender=sender.pubkey(), escrow=escrow.pubkey(),
        recipient=Keypair().pubkey(), hashlock=bytes(32), deadline=2_000_000_000,
        amount=5_000_000, rent_exempt_lamports=env.rent_exempt(),
    )  # fmt: skip
    # The escrow holds rent + 5_000_000 lamports; ask it to lock one lamport more.
    data = lock_data(bytes(32), 2_000_000_000, env.rent_exempt() + 5_000_001)
    return env.send([ixs[0], raw_ix(env, data, ixs[1].accounts)], [sender, escrow])


def _wrong_preimage(env: HtlcSvm) -> TxOutcome:
    swap = lock_swap(env)
    return env.send([claim_ix(env, swap, preimage=bytes(32))], [swap.sender])


def _preimage_31(env: HtlcSvm) -> TxOutcome:
    swap = lock_swap(env)
    data = htlc.encode_claim_data(swap.preimage[:31])
    return env.send([raw_ix(env, data, claim_ix(env, swap).accounts)], [swap.sender])


def _preimage_33(env: HtlcSvm) -> TxOutcome:
    swap = lock_swap(env)
    data = htlc.encode_claim_data(swap.preimage + b"\x00")
    return env.send([raw_ix(env, data, claim_ix(env, swap).accounts)], [swap.sender])


def _wrong_recipient(env: HtlcSvm) -> TxOutcome:
    swap = lock_swap(env)
    metas = [meta(swap.escrow), meta(Keypair().pubkey())]
    return env.send([raw_ix(env, claim_ix(env, swap).data, metas)], [swap.sender])


def _wrong_sender(env: HtlcSvm) -> TxOutcome:
    swap = lock_swap(env)
    env.set_time(swap.deadline)
    metas = [meta(swap.escrow), meta(Keypair().pubkey())]
    return env.send([raw_ix(env, refund_ix(env, swap).data, metas)], [swap.sender])


def _refund_early(env: HtlcSvm) -> TxOutcome:
    swap = lock_swap(env)
    return env.send([refund_ix(env, swap)], [swap.sender])


def _claim_late(env: HtlcSvm) -> TxOutcome:
    swap = lock_swap(env)
    env.set_time(swap.deadline)
    return env.send([claim_ix(env, swap)], [swap.sender])


def _lock_in_past(env: HtlcSvm) -> TxOutcome:
    return lock_swap(env, deadline_in=-5).outcome


REJECTIONS: list[tuple[E, Scenario]] = [
    (E.INVALID_INSTRUCTION, _unknown_discriminator),
    (E.INVALID_INSTRUCTION, _short_data),
    (E.INVALID_INSTRUCTION, _vec_length_mismatch),
    (E.MISSING_ACCOUNTS, _missing_accounts),
    (E.DUPLICATE_ACCOUNT, _duplicate_account),
    (E.WRONG_OWNER, _wrong_owner),
    (E.WRONG_OWNER, _claim_after_close),
    (E.NOT_SIGNER, _sender_not_signer),
    (E.NOT_SIGNER, _escrow_not_signer),
    (E.NOT_WRITABLE, _recipient_read_only),
    (E.ESCROW_SIZE, _escrow_wrong_size),
    (E.ALREADY_INITIALIZED, _lock_twice),
    (E.NOT_LOCKED, _claim_never_locked),
    (E.ALREADY_SETTLED, _claim_twice_in_one_tx),
    (E.ZERO_AMOUNT, _zero_amount),
    (E.INSUFFICIENT_LAMPORTS, _underfunded_escrow),
    (E.DEADLINE_PASSED, _lock_in_past),
    (E.CLAIM_AFTER_DEADLINE, _claim_late),
    (E.REFUND_BEFORE_DEADLINE, _refund_early),
    (E.WRONG_PREIMAGE, _wrong_preimage),
    (E.PREIMAGE_LENGTH, _preimage_31),
    (E.PREIMAGE_LENGTH, _preimage_33),
    (E.WRONG_RECIPIENT, _wrong_recipient),
    (E.WRONG_SENDER, _wrong_sender),
]


@pytest.mark.parametrize(
    ("error", "scenario"), REJECTIONS, ids=[fn.__name__.strip("_") for _, fn in REJECTIONS]
)
def test_rejection(svm_env: HtlcSvm, error: E, scenario: Scenario) -> None:
    outcome = scenario(svm_env)
    assert not outcome.ok
    assert outcome.error_code == error, (error, outcome.raw_error, outcome.logs)


def test_every_error_code_has_a_rejection_test() -> None:
    from tests.htlc.test_solana_tokens import TOKEN_REJECTIONS

    assert {error for error, _ in REJECTIONS} | {error for error, _ in TOKEN_REJECTIONS} == set(E)


def test_rejected_claim_leaves_funds_locked(svm_env: HtlcSvm) -> None:
    swap = lock_swap(svm_env)
    locked = svm_env.balance(swap.escrow.pubkey())
    assert not svm_env.send([claim_ix(svm_env, swap, bytes(32))], [swap.sender]).ok
    assert svm_env.balance(swap.escrow.pubkey()) == locked
    assert svm_env.escrow(swap.escrow.pubkey()).state == htlc.EscrowState.LOCKED  # type: ignore[union-attr]


# --- client-side checks ----------------------------------------------------------------------


def test_client_refuses_wrong_preimage_length_before_sending() -> None:
    with pytest.raises(ChainError, match="32 bytes"):
        htlc.claim_instruction(
            htlc.LOCAL_PROGRAM_ID,
            escrow=Keypair().pubkey(),
            recipient=Keypair().pubkey(),
            preimage=bytes(31),
        )


def test_client_refuses_zero_amount_and_bad_hashlock() -> None:
    with pytest.raises(ChainError, match="positive"):
        htlc.encode_lock_data(bytes(32), 1, 0)
    with pytest.raises(ChainError, match="hashlock"):
        htlc.encode_lock_data(bytes(31), 1, 1)


def test_escrow_decode_rejects_foreign_data() -> None:
    with pytest.raises(ChainError):
        htlc.Escrow.decode(bytes(127))
    with pytest.raises(ChainError):
        htlc.Escrow.decode(b"\xff" * 8 + b"\x01" + bytes(119))


def test_error_mapping() -> None:
    assert htlc.error_from_code(6015) is E.WRONG_PREIMAGE
    assert htlc.error_from_code(1) is None
    reverted = htlc.HtlcReverted(E.WRONG_PREIMAGE)
    assert reverted.reason == "WRONG_PREIMAGE"
    assert "6015" in str(reverted)
