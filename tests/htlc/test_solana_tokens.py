"""SPL-token legs of the Solana HTLC program in LiteSVM, with the real SPL Token and
associated-token-account programs: exact token and lamport accounting, every new
rejection with its own code, and a negative control."""

from __future__ import annotations

import re
import struct
from collections.abc import Callable

import pytest
from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import CreateAccountParams, create_account
from spl.token.constants import ACCOUNT_LEN, ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_PROGRAM_ID
from spl.token.instructions import initialize_account3
from spl.token.models import InitializeAccount3Params

from chains.families.solana import htlc_client as htlc
from chains.families.solana import htlc_token as tokens
from chains.htlc.solana import build
from chains.htlc.solana.litesvm_harness import HtlcSvm, TxOutcome
from chains.htlc.solana.sbpf_asm import assemble, link_elf
from chains.htlc.solana.token_harness import (
    TokenSwap,
    claim_token_ix,
    create_mint,
    lock_token_swap,
    measure_token_detail,
    mint_to_owner,
    refund_token_ix,
    token_balance,
)
from config.errors import ChainError

E = htlc.HtlcProgramError
SIG_FEE = 5_000
FUNDED = 1_000_000_000
AMOUNT = 250_000_000


def rent(env: HtlcSvm, size: int) -> int:
    return env.svm.minimum_balance_for_rent_exemption(size)


def with_accounts(ix: Instruction, **replace: AccountMeta) -> Instruction:
    """`ix` with some of its accounts replaced, by position name."""
    names = {
        "lock": ["sender", "escrow", "recipient", "mint", "source", "vault", "token"],
        "settle": ["escrow", "vault", "party", "authority", "sender", "token"],
    }
    order = names["lock"] if len(ix.accounts) == 7 else names["settle"]
    metas = [replace.get(name, meta) for name, meta in zip(order, ix.accounts, strict=True)]
    return Instruction(ix.program_id, bytes(ix.data), metas)


def writable(key: Pubkey) -> AccountMeta:
    return AccountMeta(key, is_signer=False, is_writable=True)


def ensure_ata(env: HtlcSvm, payer: Keypair, owner: Pubkey, mint: Pubkey) -> Pubkey:
    assert env.send([tokens.create_token_account(payer.pubkey(), owner, mint)], [payer]).ok
    return tokens.token_account(owner, mint)


def lock_parts(env: HtlcSvm, **overrides: object) -> tuple[TokenSwap, list[Instruction]]:
    """A sender funded with tokens and the lock instructions, not yet sent; `overrides`
    replace lock_token's accounts by name."""
    mint = create_mint(env)
    sender, escrow, recipient = env.funded(10**10), Keypair(), env.funded(10**9)
    mint_to_owner(env, mint, sender.pubkey(), FUNDED)
    deadline = env.svm.get_clock().unix_timestamp + 3600
    secret = bytes(range(1, 33))
    ixs = tokens.lock_token_instructions(
        env.program_id, sender=sender.pubkey(), escrow=escrow.pubkey(),
        recipient=recipient.pubkey(), mint=mint.address, hashlock=htlc.hashlock_of(secret),
        deadline=deadline, amount=AMOUNT,
        rent_exempt_lamports=rent(env, tokens.TOKEN_ESCROW_LEN),
    )  # fmt: skip
    swap = TokenSwap(sender, escrow, recipient, mint, secret, deadline, AMOUNT, None)  # type: ignore[arg-type]
    ixs[-1] = with_accounts(ixs[-1], **overrides)  # type: ignore[arg-type]
    return swap, ixs


# --- happy paths and accounting -------------------------------------------------------------


def test_lock_token_moves_tokens_into_the_pda_vault(svm_env: HtlcSvm) -> None:
    env = svm_env
    swap = lock_token_swap(env, amount=AMOUNT)
    assert swap.outcome.ok, swap.outcome.logs
    source = tokens.token_account(swap.sender.pubkey(), swap.mint.address)
    assert token_balance(env, source) == FUNDED - AMOUNT
    assert token_balance(env, swap.vault) == AMOUNT
    # The sender paid the escrow's rent, the vault's rent and two signatures, no more.
    escrow_rent, vault_rent = rent(env, tokens.TOKEN_ESCROW_LEN), rent(env, ACCOUNT_LEN)
    assert (escrow_rent, vault_rent) == (2_227_200, 2_039_280)
    assert env.balance(swap.sender.pubkey()) == 10**10 - escrow_rent - vault_rent - 2 * SIG_FEE
    account = env.svm.get_account(swap.escrow.pubkey())
    assert account is not None
    assert account.owner == env.program_id
    assert env.balance(swap.escrow.pubkey()) == escrow_rent
    escrow = tokens.TokenEscrow.decode(bytes(account.data))
    authority, bump = tokens.vault_authority(env.program_id, swap.escrow.pubkey())
    assert escrow == tokens.TokenEscrow(
        htlc.EscrowState.LOCKED, swap.sender.pubkey(), swap.recipient.pubkey(),
        htlc.hashlock_of(swap.preimage), swap.deadline, AMOUNT, swap.mint.address,
        swap.vault, bump,
    )  # fmt: skip
    # The vault is an SPL token account whose owner is the PDA.
    tokens.check_vault(
        str(swap.escrow.pubkey()), escrow, program_id=env.program_id,
        vault_owner=TOKEN_PROGRAM_ID, vault_data=bytes(env.svm.get_account(swap.vault).data),  # type: ignore[union-attr]
    )  # fmt: skip
    assert swap.authority == authority


def test_claim_token_pays_the_recipient_and_returns_both_rents_to_the_sender(
    svm_env: HtlcSvm,
) -> None:
    env = svm_env
    swap = lock_token_swap(env)
    sender_before = env.balance(swap.sender.pubkey())
    recipient = swap.recipient.pubkey()
    # The recipient has no token account yet: its claim creates it, as the client does.
    create = tokens.create_token_account(recipient, recipient, swap.mint.address)
    outcome = env.send([create, claim_token_ix(env, swap)], [swap.recipient])
    assert outcome.ok, outcome.logs
    ata = tokens.token_account(recipient, swap.mint.address)
    assert token_balance(env, ata) == AMOUNT
    assert env.svm.get_account(swap.vault) is None
    assert env.svm.get_account(swap.escrow.pubkey()) is None
    escrow_rent, vault_rent = rent(env, tokens.TOKEN_ESCROW_LEN), rent(env, ACCOUNT_LEN)
    assert env.balance(swap.sender.pubkey()) == sender_before + escrow_rent + vault_rent
    assert env.balance(recipient) == 10**9 - SIG_FEE - vault_rent  # its own new ATA
    events = htlc.decode_claimed_events(outcome.logs)
    assert events == [htlc.ClaimedEvent(swap.escrow.pubkey(), swap.preimage)]


def test_claim_token_reveals_the_preimage_in_its_instruction_data(svm_env: HtlcSvm) -> None:
    swap = lock_token_swap(svm_env)
    assert htlc.claim_preimage(bytes(claim_token_ix(svm_env, swap).data)) == swap.preimage


def test_refund_token_returns_tokens_and_rents(svm_env: HtlcSvm) -> None:
    env = svm_env
    swap = lock_token_swap(env)
    sender_before = env.balance(swap.sender.pubkey())
    env.set_time(swap.deadline)
    keeper = env.funded(10**9)
    outcome = env.send([refund_token_ix(env, swap)], [keeper])
    assert outcome.ok, outcome.logs
    source = tokens.token_account(swap.sender.pubkey(), swap.mint.address)
    assert token_balance(env, source) == FUNDED
    escrow_rent, vault_rent = rent(env, tokens.TOKEN_ESCROW_LEN), rent(env, ACCOUNT_LEN)
    assert env.balance(swap.sender.pubkey()) == sender_before + escrow_rent + vault_rent
    assert env.balance(keeper.pubkey()) == 10**9 - SIG_FEE
    assert env.svm.get_account(swap.vault) is None
    assert env.svm.get_account(swap.escrow.pubkey()) is None


def test_tokens_sent_to_the_vault_after_the_lock_go_out_with_the_claim(
    svm_env: HtlcSvm,
) -> None:
    env = svm_env
    swap = lock_token_swap(env)
    donor = env.funded(10**9)
    mint_to_owner(env, swap.mint, donor.pubkey(), 7)
    gift = Instruction(
        TOKEN_PROGRAM_ID,
        bytes([3]) + struct.pack("<Q", 7),
        [
            writable(tokens.token_account(donor.pubkey(), swap.mint.address)),
            writable(swap.vault),
            AccountMeta(donor.pubkey(), is_signer=True, is_writable=False),
        ],
    )
    assert env.send([gift], [donor]).ok
    ata = ensure_ata(env, swap.recipient, swap.recipient.pubkey(), swap.mint.address)
    assert env.send([claim_token_ix(env, swap)], [swap.recipient]).ok
    assert token_balance(env, ata) == AMOUNT + 7
    assert env.svm.get_account(swap.vault) is None


def test_lock_token_without_enough_tokens_fails_in_the_token_program(svm_env: HtlcSvm) -> None:
    swap = lock_token_swap(svm_env, amount=FUNDED + 1)
    assert swap.outcome.error_code == 1  # SPL Token InsufficientFunds, through the CPI
    assert svm_env.svm.get_account(swap.escrow.pubkey()) is None


def test_sol_and_token_instructions_refuse_each_others_escrows(svm_env: HtlcSvm) -> None:
    env = svm_env
    swap = lock_token_swap(env)
    sol_claim = htlc.claim_instruction(
        env.program_id, escrow=swap.escrow.pubkey(), recipient=swap.recipient.pubkey(),
        preimage=swap.preimage,
    )  # fmt: skip
    assert env.send([sol_claim], [swap.recipient]).error_code == E.ESCROW_SIZE
    env.set_time(swap.deadline)
    sol_refund = htlc.refund_instruction(
        env.program_id, escrow=swap.escrow.pubkey(), sender=swap.sender.pubkey()
    )
    assert env.send([sol_refund], [swap.sender]).error_code == E.ESCROW_SIZE
    assert env.balance(swap.escrow.pubkey()) == rent(env, tokens.TOKEN_ESCROW_LEN)


# --- every new rejection ------------------------------------------------------------------------

Scenario = Callable[[HtlcSvm], TxOutcome]


def _locked(env: HtlcSvm) -> tuple[TokenSwap, Pubkey]:
    swap = lock_token_swap(env)
    assert swap.outcome.ok, swap.outcome.logs
    return swap, ensure_ata(env, swap.recipient, swap.recipient.pubkey(), swap.mint.address)


def _lock_wrong_token_program(env: HtlcSvm) -> TxOutcome:
    # The associated-token program is executable and real, but not SPL Token.
    swap, ixs = lock_parts(env, token=AccountMeta(ASSOCIATED_TOKEN_PROGRAM_ID, False, False))
    return env.send(ixs, [swap.sender, swap.escrow])


def _claim_wrong_token_program(env: HtlcSvm) -> TxOutcome:
    swap, _ = _locked(env)
    ix = with_accounts(
        claim_token_ix(env, swap), token=AccountMeta(SYSTEM_PROGRAM_ID, False, False)
    )
    return env.send([ix], [swap.recipient])


def _forged_vault_owned_by_another_program(env: HtlcSvm) -> TxOutcome:
    swap, ixs = lock_parts(env)
    authority = tokens.vault_authority(env.program_id, swap.escrow.pubkey())[0]
    forged = Keypair().pubkey()
    # Token-account bytes (right mint, the PDA as owner, a balance) in an account the
    # HTLC program owns: layout alone must not pass for a vault.
    data = bytes(swap.mint.address) + bytes(authority) + struct.pack("<Q", AMOUNT)
    data += bytes([0] * 36) + bytes([1]) + bytes(ACCOUNT_LEN - 109)
    env.svm.set_account(forged, Account(rent(env, ACCOUNT_LEN), data, env.program_id))
    ixs[-1] = with_accounts(ixs[-1], vault=writable(forged))
    return env.send(ixs, [swap.sender, swap.escrow])


def _vault_of_another_mint(env: HtlcSvm) -> TxOutcome:
    swap, ixs = lock_parts(env)
    other = create_mint(env)
    authority = tokens.vault_authority(env.program_id, swap.escrow.pubkey())[0]
    vault = ensure_ata(env, swap.sender, authority, other.address)
    ixs[-1] = with_accounts(ixs[-1], vault=writable(vault))
    return env.send(ixs, [swap.sender, swap.escrow])


def _vault_not_owned_by_the_pda(env: HtlcSvm) -> TxOutcome:
    swap, ixs = lock_parts(env)
    thief = Keypair().pubkey()
    vault = ensure_ata(env, swap.sender, thief, swap.mint.address)
    ixs[-1] = with_accounts(ixs[-1], vault=writable(vault))
    return env.send(ixs, [swap.sender, swap.escrow])


def _claim_to_a_system_account(env: HtlcSvm) -> TxOutcome:
    swap, _ = _locked(env)
    ix = with_accounts(claim_token_ix(env, swap), party=writable(swap.recipient.pubkey()))
    return env.send([ix], [swap.recipient])


def _claim_to_an_account_of_another_mint(env: HtlcSvm) -> TxOutcome:
    swap, _ = _locked(env)
    other = create_mint(env)
    wrong = ensure_ata(env, swap.recipient, swap.recipient.pubkey(), other.address)
    ix = with_accounts(claim_token_ix(env, swap), party=writable(wrong))
    return env.send([ix], [swap.recipient])


def _lock_from_an_account_of_another_mint(env: HtlcSvm) -> TxOutcome:
    swap, ixs = lock_parts(env)
    other = create_mint(env)
    source = mint_to_owner(env, other, swap.sender.pubkey(), FUNDED)
    ixs[-1] = with_accounts(ixs[-1], source=writable(source))
    return env.send(ixs, [swap.sender, swap.escrow])


def _claim_to_someone_elses_account(env: HtlcSvm) -> TxOutcome:
    swap, _ = _locked(env)
    thief = env.funded(10**9)
    stolen = ensure_ata(env, thief, thief.pubkey(), swap.mint.address)
    ix = with_accounts(claim_token_ix(env, swap), party=writable(stolen))
    return env.send([ix], [thief])


def _refund_to_someone_elses_account(env: HtlcSvm) -> TxOutcome:
    swap, _ = _locked(env)
    env.set_time(swap.deadline)
    thief = env.funded(10**9)
    stolen = ensure_ata(env, thief, thief.pubkey(), swap.mint.address)
    ix = with_accounts(refund_token_ix(env, swap), party=writable(stolen))
    return env.send([ix], [thief])


def _claim_from_a_decoy_vault(env: HtlcSvm) -> TxOutcome:
    # A second token account of the same mint owned by the same PDA (anyone can
    # initialize one): empty, so "claiming" from it would strand the real vault.
    swap, _ = _locked(env)
    payer, decoy = env.funded(10**9), Keypair()
    params = CreateAccountParams(
        from_pubkey=payer.pubkey(), to_pubkey=decoy.pubkey(),
        lamports=rent(env, ACCOUNT_LEN), space=ACCOUNT_LEN, owner=TOKEN_PROGRAM_ID,
    )  # fmt: skip
    init = initialize_account3(
        InitializeAccount3Params(
            program_id=TOKEN_PROGRAM_ID, account=decoy.pubkey(), mint=swap.mint.address,
            owner=swap.authority,
        )
    )  # fmt: skip
    assert env.send([create_account(params), init], [payer, decoy]).ok
    ix = with_accounts(claim_token_ix(env, swap), vault=writable(decoy.pubkey()))
    return env.send([ix], [swap.recipient])


def _claim_with_another_authority(env: HtlcSvm) -> TxOutcome:
    swap, _ = _locked(env)
    ix = with_accounts(
        claim_token_ix(env, swap), authority=AccountMeta(Keypair().pubkey(), False, False)
    )
    return env.send([ix], [swap.recipient])


def _claim_rent_to_someone_else(env: HtlcSvm) -> TxOutcome:
    swap, _ = _locked(env)
    ix = with_accounts(claim_token_ix(env, swap), sender=writable(Keypair().pubkey()))
    return env.send([ix], [swap.recipient])


def _claim_token_late(env: HtlcSvm) -> TxOutcome:
    swap, _ = _locked(env)
    env.set_time(swap.deadline)
    return env.send([claim_token_ix(env, swap)], [swap.recipient])


def _refund_token_early(env: HtlcSvm) -> TxOutcome:
    swap, _ = _locked(env)
    env.set_time(swap.deadline - 1)
    return env.send([refund_token_ix(env, swap)], [swap.sender])


def _claim_token_twice_in_one_tx(env: HtlcSvm) -> TxOutcome:
    swap, _ = _locked(env)
    return env.send([claim_token_ix(env, swap), claim_token_ix(env, swap)], [swap.recipient])


def _claim_token_after_claim(env: HtlcSvm) -> TxOutcome:
    swap, _ = _locked(env)
    assert env.send([claim_token_ix(env, swap)], [swap.recipient]).ok
    return env.send([claim_token_ix(env, swap)], [swap.recipient])  # the escrow is gone


def _claim_token_wrong_preimage(env: HtlcSvm) -> TxOutcome:
    swap, _ = _locked(env)
    return env.send([claim_token_ix(env, swap, preimage=bytes(32))], [swap.recipient])


def _claim_token_on_a_sol_escrow(env: HtlcSvm) -> TxOutcome:
    from chains.htlc.solana.litesvm_harness import lock_swap

    sol = lock_swap(env)
    swap, _ = _locked(env)
    ix = with_accounts(claim_token_ix(env, swap), escrow=writable(sol.escrow.pubkey()))
    return env.send([ix], [swap.recipient])


def _lock_token_twice(env: HtlcSvm) -> TxOutcome:
    swap, _ = _locked(env)
    again = tokens.lock_token_instruction(
        env.program_id, sender=swap.sender.pubkey(), escrow=swap.escrow.pubkey(),
        recipient=swap.recipient.pubkey(), mint=swap.mint.address, hashlock=bytes(32),
        deadline=swap.deadline, amount=1,
    )  # fmt: skip
    return env.send([again], [swap.sender, swap.escrow])


def _lock_token_missing_accounts(env: HtlcSvm) -> TxOutcome:
    swap, ixs = lock_parts(env)
    lock = ixs[-1]
    ixs[-1] = Instruction(lock.program_id, bytes(lock.data), list(lock.accounts[:6]))
    return env.send(ixs, [swap.sender, swap.escrow])


def _claim_token_read_only_vault(env: HtlcSvm) -> TxOutcome:
    swap, _ = _locked(env)
    ix = with_accounts(claim_token_ix(env, swap), vault=AccountMeta(swap.vault, False, False))
    return env.send([ix], [swap.recipient])


TOKEN_REJECTIONS: list[tuple[E, Scenario]] = [
    (E.WRONG_TOKEN_PROGRAM, _lock_wrong_token_program),
    (E.WRONG_TOKEN_PROGRAM, _claim_wrong_token_program),
    (E.VAULT_NOT_TOKEN_ACCOUNT, _forged_vault_owned_by_another_program),
    (E.VAULT_WRONG_MINT, _vault_of_another_mint),
    (E.VAULT_WRONG_OWNER, _vault_not_owned_by_the_pda),
    (E.NOT_TOKEN_ACCOUNT, _claim_to_a_system_account),
    (E.TOKEN_ACCOUNT_WRONG_MINT, _claim_to_an_account_of_another_mint),
    (E.TOKEN_ACCOUNT_WRONG_MINT, _lock_from_an_account_of_another_mint),
    (E.TOKEN_ACCOUNT_WRONG_OWNER, _claim_to_someone_elses_account),
    (E.TOKEN_ACCOUNT_WRONG_OWNER, _refund_to_someone_elses_account),
    (E.WRONG_VAULT, _claim_from_a_decoy_vault),
    (E.WRONG_VAULT_AUTHORITY, _claim_with_another_authority),
    (E.WRONG_SENDER, _claim_rent_to_someone_else),
    (E.CLAIM_AFTER_DEADLINE, _claim_token_late),
    (E.REFUND_BEFORE_DEADLINE, _refund_token_early),
    (E.ALREADY_SETTLED, _claim_token_twice_in_one_tx),
    (E.WRONG_OWNER, _claim_token_after_claim),
    (E.WRONG_PREIMAGE, _claim_token_wrong_preimage),
    (E.ESCROW_SIZE, _claim_token_on_a_sol_escrow),
    (E.ALREADY_INITIALIZED, _lock_token_twice),
    (E.MISSING_ACCOUNTS, _lock_token_missing_accounts),
    (E.NOT_WRITABLE, _claim_token_read_only_vault),
]
TOKEN_ERRORS = {
    E.WRONG_TOKEN_PROGRAM, E.VAULT_NOT_TOKEN_ACCOUNT, E.VAULT_WRONG_MINT,
    E.VAULT_WRONG_OWNER, E.NOT_TOKEN_ACCOUNT, E.TOKEN_ACCOUNT_WRONG_MINT,
    E.TOKEN_ACCOUNT_WRONG_OWNER, E.WRONG_VAULT, E.WRONG_VAULT_AUTHORITY,
}  # fmt: skip


@pytest.mark.parametrize(
    ("error", "scenario"),
    TOKEN_REJECTIONS,
    ids=[fn.__name__.strip("_") for _, fn in TOKEN_REJECTIONS],
)
def test_token_rejection(svm_env: HtlcSvm, error: E, scenario: Scenario) -> None:
    outcome = scenario(svm_env)
    assert not outcome.ok
    assert outcome.error_code == error, (error, outcome.raw_error, outcome.logs)


def test_every_token_error_code_has_a_rejection_test() -> None:
    assert {error for error, _ in TOKEN_REJECTIONS} >= TOKEN_ERRORS
    assert {int(error) for error in TOKEN_ERRORS} == set(range(6019, 6028))


def test_a_rejected_claim_leaves_the_tokens_in_the_vault(svm_env: HtlcSvm) -> None:
    swap, ata = _locked(svm_env)
    assert _claim_to_someone_elses_account(svm_env).error_code == E.TOKEN_ACCOUNT_WRONG_OWNER
    assert token_balance(svm_env, swap.vault) == AMOUNT
    assert token_balance(svm_env, ata) == 0


def test_negative_control_without_the_owner_check_a_thief_takes_the_tokens() -> None:
    """The same claim to a thief's token account, against the program assembled with
    the token-account owner check taken out: the tokens leave. So the rejection above
    is that check's doing, and the tests would notice if it went missing."""
    source = build.SOURCE.read_text()
    check = "    jne r0, 0, check_token_account_owner\n"
    assert source.count(check) == 1
    # eq32's "differs" (r0 = 1) is overwritten instead of acted upon.
    weakened = link_elf(assemble(source.replace(check, "    mov64 r0, 0\n")))
    env = HtlcSvm(weakened)
    swap, _ = _locked(env)
    thief = env.funded(10**9)
    stolen = ensure_ata(env, thief, thief.pubkey(), swap.mint.address)
    ix = with_accounts(claim_token_ix(env, swap), party=writable(stolen))
    assert env.send([ix], [thief]).ok
    assert token_balance(env, stolen) == AMOUNT


# --- client-side reads --------------------------------------------------------------------------


def test_client_refuses_a_token_escrow_another_program_owns(svm_env: HtlcSvm) -> None:
    swap, _ = _locked(svm_env)
    data = bytes(svm_env.svm.get_account(swap.escrow.pubkey()).data)  # type: ignore[union-attr]
    with pytest.raises(htlc.InvalidEscrow, match="owned by"):
        tokens.check_token_escrow(
            "x", owner=SYSTEM_PROGRAM_ID, data=data, program_id=svm_env.program_id
        )
    escrow = tokens.check_token_escrow(
        str(swap.escrow.pubkey()), owner=svm_env.program_id, data=data,
        program_id=svm_env.program_id,
    )  # fmt: skip
    assert escrow.mint == swap.mint.address


def test_client_refuses_a_vault_that_does_not_cover_the_amount(svm_env: HtlcSvm) -> None:
    swap, _ = _locked(svm_env)
    address = str(swap.escrow.pubkey())
    data = bytes(svm_env.svm.get_account(swap.escrow.pubkey()).data)  # type: ignore[union-attr]
    escrow = tokens.TokenEscrow.decode(data)
    vault = bytearray(svm_env.svm.get_account(swap.vault).data)  # type: ignore[union-attr]
    struct.pack_into("<Q", vault, 64, AMOUNT - 1)
    with pytest.raises(htlc.InvalidEscrow, match="less than"):
        tokens.check_vault(
            address, escrow, program_id=svm_env.program_id, vault_owner=TOKEN_PROGRAM_ID,
            vault_data=bytes(vault),
        )  # fmt: skip
    for owner, why in ((None, "does not exist"), (SYSTEM_PROGRAM_ID, "not an SPL token")):
        with pytest.raises(htlc.InvalidEscrow, match=why):
            tokens.check_vault(
                address, escrow, program_id=svm_env.program_id, vault_owner=owner,
                vault_data=bytes(vault),
            )  # fmt: skip


def test_client_refuses_bad_mints_and_preimages() -> None:
    with pytest.raises(ChainError, match="base58 mint"):
        tokens.parse_mint("USDC")
    with pytest.raises(ChainError, match="32 bytes"):
        tokens.claim_token_instruction(
            htlc.LOCAL_PROGRAM_ID, escrow=Keypair().pubkey(), mint=Keypair().pubkey(),
            recipient=Keypair().pubkey(), sender=Keypair().pubkey(), preimage=bytes(31),
        )  # fmt: skip


def test_idl_describes_the_token_instructions_and_pda() -> None:
    idl = build.build_idl(str(htlc.LOCAL_PROGRAM_ID))
    by_name = {ix["name"]: ix for ix in idl["instructions"]}
    assert [a["name"] for a in by_name["lock_token"]["accounts"]] == [
        "sender", "escrow", "recipient", "mint", "sender_token", "vault", "token_program",
    ]  # fmt: skip
    authority = by_name["claim_token"]["accounts"][3]
    assert authority["pda"]["seeds"][0] == {"kind": "const", "value": list(b"vault")}
    assert re.fullmatch(r"\w+", by_name["refund_token"]["accounts"][2]["name"])
    assert {"Escrow", "TokenEscrow"} == {a["name"] for a in idl["accounts"]}


def test_token_compute_units_are_measured_per_instruction() -> None:
    units = measure_token_detail()
    assert set(units) == {"lock_token", "claim_token", "refund_token"}
    # Budget guard: two CPIs and a PDA search are a few thousand CU, not tens of thousands.
    assert all(0 < cpi < total < 10_000 for total, cpi in units.values()), units
