"""SPL-token legs of the HTLC program in LiteSVM: mints, token accounts, token escrows.

A development tool like :mod:`chains.htlc.solana.litesvm_harness` (its own test keys):
LiteSVM ships the SPL Token and associated-token-account programs, so the mints and
accounts here are made by real instructions, and the escrow's CPIs run the real token
program. :func:`measure_token_compute_units` runs one successful ``lock_token``,
``claim_token`` and ``refund_token``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from spl.token.constants import MINT_LEN, TOKEN_PROGRAM_ID
from spl.token.instructions import initialize_mint2, mint_to
from spl.token.models import InitializeMint2Params, MintToParams

from chains.families.solana import htlc_client as htlc
from chains.families.solana import htlc_token as tokens
from chains.htlc.solana.litesvm_harness import HtlcSvm, TxOutcome

DECIMALS = 6


@dataclass(frozen=True)
class Mint:
    """A mint made in the SVM and the keypair that may mint it."""

    address: Pubkey
    authority: Keypair


def create_mint(env: HtlcSvm, decimals: int = DECIMALS) -> Mint:
    """A fresh SPL mint (no freeze authority) whose authority is a funded keypair."""
    authority, mint = env.funded(10_000_000_000), Keypair()
    params = CreateAccountParams(
        from_pubkey=authority.pubkey(),
        to_pubkey=mint.pubkey(),
        lamports=env.svm.minimum_balance_for_rent_exemption(MINT_LEN),
        space=MINT_LEN,
        owner=TOKEN_PROGRAM_ID,
    )
    init = initialize_mint2(
        InitializeMint2Params(
            decimals=decimals,
            program_id=TOKEN_PROGRAM_ID,
            mint=mint.pubkey(),
            mint_authority=authority.pubkey(),
        )
    )
    outcome = env.send([create_account(params), init], [authority, mint])
    if not outcome.ok:
        raise RuntimeError(f"creating a mint failed: {outcome.raw_error}")
    return Mint(mint.pubkey(), authority)


def mint_to_owner(env: HtlcSvm, mint: Mint, owner: Pubkey, amount: int) -> Pubkey:
    """Create `owner`'s ATA (if missing) and mint `amount` base units to it."""
    ata = tokens.token_account(owner, mint.address)
    create = tokens.create_token_account(mint.authority.pubkey(), owner, mint.address)
    issue = mint_to(
        MintToParams(
            program_id=TOKEN_PROGRAM_ID,
            mint=mint.address,
            dest=ata,
            mint_authority=mint.authority.pubkey(),
            amount=amount,
        )
    )
    outcome = env.send([create, issue], [mint.authority])
    if not outcome.ok:
        raise RuntimeError(f"minting failed: {outcome.raw_error}")
    return ata


def token_balance(env: HtlcSvm, account: Pubkey) -> int | None:
    """The token amount of an SPL token account (None if it does not exist)."""
    found = env.svm.get_account(account)
    if found is None or len(found.data) < 72:
        return None
    return int(struct.unpack_from("<Q", bytes(found.data), 64)[0])


@dataclass(frozen=True)
class TokenSwap:
    """Keys and terms of a token escrow created by :func:`lock_token_swap`."""

    sender: Keypair
    escrow: Keypair
    recipient: Keypair
    mint: Mint
    preimage: bytes
    deadline: int
    amount: int
    outcome: TxOutcome

    @property
    def vault(self) -> Pubkey:
        return tokens.vault_address(htlc.LOCAL_PROGRAM_ID, self.escrow.pubkey(), self.mint.address)

    @property
    def authority(self) -> Pubkey:
        return tokens.vault_authority(htlc.LOCAL_PROGRAM_ID, self.escrow.pubkey())[0]


def lock_token_swap(
    env: HtlcSvm,
    *,
    amount: int = 250_000_000,
    deadline_in: int = 3600,
    mint: Mint | None = None,
    funded: int = 1_000_000_000,
) -> TokenSwap:
    """Lock `amount` tokens from a fresh sender (holding `funded`) to a fresh recipient."""
    mint = mint or create_mint(env)
    sender, escrow, recipient = env.funded(10_000_000_000), Keypair(), env.funded(10**9)
    mint_to_owner(env, mint, sender.pubkey(), funded)
    secret = bytes(range(1, 33))
    deadline = env.svm.get_clock().unix_timestamp + deadline_in
    instructions = tokens.lock_token_instructions(
        env.program_id,
        sender=sender.pubkey(),
        escrow=escrow.pubkey(),
        recipient=recipient.pubkey(),
        mint=mint.address,
        hashlock=htlc.hashlock_of(secret),
        deadline=deadline,
        amount=amount,
        rent_exempt_lamports=env.svm.minimum_balance_for_rent_exemption(tokens.TOKEN_ESCROW_LEN),
    )
    outcome = env.send(instructions, [sender, escrow])
    return TokenSwap(sender, escrow, recipient, mint, secret, deadline, amount, outcome)


def claim_token_ix(env: HtlcSvm, swap: TokenSwap, preimage: bytes | None = None) -> Instruction:
    """The client's claim_token for `swap` (recipient's ATA must exist)."""
    return tokens.claim_token_instruction(
        env.program_id,
        escrow=swap.escrow.pubkey(),
        mint=swap.mint.address,
        recipient=swap.recipient.pubkey(),
        sender=swap.sender.pubkey(),
        preimage=swap.preimage if preimage is None else preimage,
    )


def refund_token_ix(env: HtlcSvm, swap: TokenSwap) -> Instruction:
    """The client's refund_token for `swap`."""
    return tokens.refund_token_instruction(
        env.program_id,
        escrow=swap.escrow.pubkey(),
        mint=swap.mint.address,
        sender=swap.sender.pubkey(),
    )


def measure_token_compute_units(elf: bytes | None = None) -> dict[str, int]:
    """Compute units of one successful ``lock_token``, ``claim_token``, ``refund_token``
    (the HTLC program's own figure, which includes the token program's CPIs)."""
    return {name: total for name, (total, _) in _measure(elf).items()}


def measure_token_detail(elf: bytes | None = None) -> dict[str, tuple[int, int]]:
    """As :func:`measure_token_compute_units`, with the SPL Token CPIs' share beside."""
    return _measure(elf)


# sol_try_find_program_address charges this per bump it tries (agave's
# create_program_address_units), so lock_token's figure varies with the escrow key.
PDA_TRY_UNITS = 1_500


def bump_tries(swap: TokenSwap) -> int:
    """How many bumps lock_token's PDA search tried for `swap` (255 first, downwards)."""
    return 256 - tokens.vault_authority(htlc.LOCAL_PROGRAM_ID, swap.escrow.pubkey())[1]


def _measure(elf: bytes | None) -> dict[str, tuple[int, int]]:
    env = HtlcSvm(elf)
    claimed = lock_token_swap(env)
    # Report lock_token as if the first bump were canonical (half of all escrows): the
    # PDA search's extra tries are a fixed 1,500 CU each on top.
    extra = (bump_tries(claimed) - 1) * PDA_TRY_UNITS
    create = tokens.create_token_account(
        claimed.recipient.pubkey(), claimed.recipient.pubkey(), claimed.mint.address
    )
    # The recipient's token account is created in a transaction of its own, so the
    # claim's figure is the claim alone.
    assert env.send([create], [claimed.recipient]).ok
    claim = env.send([claim_token_ix(env, claimed)], [claimed.recipient])
    refunded = lock_token_swap(env, deadline_in=10, mint=claimed.mint)
    env.set_time(refunded.deadline)
    refund = env.send([refund_token_ix(env, refunded)], [refunded.sender])
    outcomes = {"lock_token": claimed.outcome, "claim_token": claim, "refund_token": refund}
    if not all(outcome.ok for outcome in outcomes.values()):
        raise RuntimeError(f"HTLC token benchmark transaction failed: {outcomes}")
    units = {
        name: (outcome.program_units(env.program_id)[0], _token_cpi_units(outcome, env))
        for name, outcome in outcomes.items()
    }
    total, cpi = units["lock_token"]
    units["lock_token"] = (total - extra, cpi)
    return units


def _token_cpi_units(outcome: TxOutcome, env: HtlcSvm) -> int:
    # The token program's lines that come after the HTLC program's invoke: its CPIs
    # (lock_token's transaction also runs the ATA program, which calls it too, first).
    logs = outcome.logs
    start = logs.index(f"Program {env.program_id} invoke [1]")
    return sum(
        int(line.split()[3])
        for line in logs[start:]
        if line.startswith(f"Program {TOKEN_PROGRAM_ID} consumed ")
    )
