"""SPL-token legs of the Covenant Solana HTLC program: instructions and escrow reads.

The program's ``lock_token``, ``claim_token`` and ``refund_token`` (``htlc.s``) keep the
tokens of a leg in a *vault*: the associated token account, for the leg's mint, of the
*vault authority*, the program-derived address ``[b"vault", escrow pubkey]`` of the HTLC
program. Only the program can sign for that address, and it signs only the claim's or
the refund's transfer out of the vault and the vault's closing.

Funds: the lock creates the 192-byte ``TokenEscrow`` account (its rent-exempt minimum,
no amount) and the vault (the token account's rent), both paid by the sender, and moves
`amount` tokens from the sender's token account into the vault. A claim moves the whole
vault balance to the recipient's token account; a refund to the sender's. Either way the
vault is closed and the escrow emptied to the sender, so the sender gets both rent
deposits back and the recipient receives tokens only. A claim or refund paid by someone
whose counterpart token account does not exist yet creates it first (idempotently, at
the payer's expense).

A counterparty's token escrow counts only if the program owns it, it has the
``TokenEscrow`` layout and, while locked, its recorded vault is an SPL token account of
the recorded mint, owned by the escrow's vault authority and holding at least the
amount (:func:`check_token_escrow`, :func:`check_vault`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import CreateAccountParams, create_account
from spl.token.constants import ACCOUNT_LEN, TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
)

from chains.families.solana import htlc_client as program
from chains.families.solana.htlc_client import EscrowState, InvalidEscrow
from config.errors import ChainError

VAULT_SEED = b"vault"
TOKEN_ESCROW_LEN = program.TOKEN_ESCROW_LEN
# Escrow's first 128 bytes, except byte 9 (the vault authority's bump), then mint, vault.
_LAYOUT = struct.Struct("<8sBB6x32s32s32sqQ32s32s")
# SPL token account: mint, owner, amount (the rest is not read here).
_TOKEN_ACCOUNT = struct.Struct("<32s32sQ")


def vault_authority(program_id: Pubkey, escrow: Pubkey) -> tuple[Pubkey, int]:
    """The PDA that owns a token escrow's vault, and its bump seed."""
    return Pubkey.find_program_address([VAULT_SEED, bytes(escrow)], program_id)


def vault_address(program_id: Pubkey, escrow: Pubkey, mint: Pubkey) -> Pubkey:
    """The vault: the vault authority's associated token account for `mint`."""
    return get_associated_token_address(vault_authority(program_id, escrow)[0], mint)


def token_account(owner: Pubkey, mint: Pubkey) -> Pubkey:
    """A party's token account the client uses: its associated token account."""
    return get_associated_token_address(owner, mint)


@dataclass(frozen=True)
class TokenEscrow:
    """Decoded ``TokenEscrow`` account data."""

    state: EscrowState
    sender: Pubkey
    recipient: Pubkey
    hashlock: bytes
    deadline: int
    amount: int
    mint: Pubkey
    vault: Pubkey
    bump: int

    @classmethod
    def decode(cls, data: bytes) -> TokenEscrow:
        """Decode the 192-byte account data; :class:`ChainError` if it is not one."""
        if len(data) != TOKEN_ESCROW_LEN:
            raise ChainError(f"token escrow data is {len(data)} bytes, not {TOKEN_ESCROW_LEN}")
        disc, state, bump, sender, recipient, hashlock, deadline, amount, mint, vault = (
            _LAYOUT.unpack(data)
        )
        if state == EscrowState.EMPTY:
            empty = Pubkey.default()
            return cls(EscrowState.EMPTY, empty, empty, bytes(32), 0, 0, empty, empty, 0)
        if disc != program.TOKEN_ESCROW_DISCRIMINATOR or state > EscrowState.REFUNDED:
            raise ChainError("account data is not a Covenant HTLC token escrow")
        return cls(
            EscrowState(state),
            Pubkey.from_bytes(sender),
            Pubkey.from_bytes(recipient),
            hashlock,
            deadline,
            amount,
            Pubkey.from_bytes(mint),
            Pubkey.from_bytes(vault),
            bump,
        )


def check_token_escrow(
    address: str, *, owner: Pubkey, data: bytes, program_id: Pubkey
) -> TokenEscrow:
    """Decode a token escrow only if the HTLC program `program_id` owns it (only the
    owner writes its data); :class:`InvalidEscrow` otherwise. The vault is checked
    separately (:func:`check_vault`), from its own account."""
    if owner != program_id:
        raise InvalidEscrow(address, f"it is owned by {owner}, not the HTLC program {program_id}")
    try:
        return TokenEscrow.decode(data)
    except ChainError as exc:
        raise InvalidEscrow(address, str(exc)) from exc


def check_vault(
    address: str,
    escrow: TokenEscrow,
    *,
    program_id: Pubkey,
    vault_owner: Pubkey | None,
    vault_data: bytes,
) -> None:
    """Raise :class:`InvalidEscrow` unless the locked `escrow`'s vault is an SPL token
    account of its mint, owned by its vault authority and holding at least its amount
    (what ``lock_token`` established; `vault_owner` None: the vault does not exist)."""
    if vault_owner is None:
        raise InvalidEscrow(address, f"its vault {escrow.vault} does not exist")
    if vault_owner != TOKEN_PROGRAM_ID or len(vault_data) != ACCOUNT_LEN:
        raise InvalidEscrow(address, f"its vault {escrow.vault} is not an SPL token account")
    mint, holder, amount = _TOKEN_ACCOUNT.unpack_from(vault_data)
    authority = vault_authority(program_id, Pubkey.from_string(address))[0]
    if Pubkey.from_bytes(mint) != escrow.mint:
        raise InvalidEscrow(address, f"its vault holds mint {Pubkey.from_bytes(mint)}")
    if Pubkey.from_bytes(holder) != authority:
        raise InvalidEscrow(address, f"its vault belongs to {Pubkey.from_bytes(holder)}")
    if amount < escrow.amount:
        raise InvalidEscrow(
            address, f"its vault holds {amount} tokens, less than the {escrow.amount} it records"
        )


# --- instructions ----------------------------------------------------------------------


def encode_lock_token_data(hashlock: bytes, deadline: int, amount: int) -> bytes:
    """``lock_token(hashlock: [u8; 32], deadline: i64, amount: u64)`` (token base units)."""
    data = program.encode_lock_data(hashlock, deadline, amount)
    return program.LOCK_TOKEN_DISCRIMINATOR + data[8:]


def lock_token_instruction(
    program_id: Pubkey,
    *,
    sender: Pubkey,
    escrow: Pubkey,
    recipient: Pubkey,
    mint: Pubkey,
    hashlock: bytes,
    deadline: int,
    amount: int,
    sender_token: Pubkey | None = None,
    vault: Pubkey | None = None,
    token_program: Pubkey = TOKEN_PROGRAM_ID,
) -> Instruction:
    """The ``lock_token`` instruction alone (escrow created and zeroed, vault existing);
    the token accounts default to the sender's and the vault authority's ATAs."""
    accounts = [
        AccountMeta(sender, is_signer=True, is_writable=True),
        AccountMeta(escrow, is_signer=True, is_writable=True),
        AccountMeta(recipient, is_signer=False, is_writable=False),
        AccountMeta(mint, is_signer=False, is_writable=False),
        AccountMeta(sender_token or token_account(sender, mint), False, True),
        AccountMeta(vault or vault_address(program_id, escrow, mint), False, True),
        AccountMeta(token_program, is_signer=False, is_writable=False),
    ]
    return Instruction(program_id, encode_lock_token_data(hashlock, deadline, amount), accounts)


def lock_token_instructions(
    program_id: Pubkey,
    *,
    sender: Pubkey,
    escrow: Pubkey,
    recipient: Pubkey,
    mint: Pubkey,
    hashlock: bytes,
    deadline: int,
    amount: int,
    rent_exempt_lamports: int,
    prefunded: int | None = None,
) -> list[Instruction]:
    """Create the token escrow (rent only), create the vault (idempotently: anyone may
    create an associated token account first), then ``lock_token``: one transaction,
    signed by the sender and the escrow keypair. `rent_exempt_lamports` is the rent of
    ``TOKEN_ESCROW_LEN`` bytes; `prefunded` as in :func:`htlc_client.lock_instructions`."""
    if prefunded is None:
        params = CreateAccountParams(
            from_pubkey=sender,
            to_pubkey=escrow,
            lamports=rent_exempt_lamports,
            space=TOKEN_ESCROW_LEN,
            owner=program_id,
        )
        create = [create_account(params)]
    else:
        create = program.take_over(
            program_id,
            sender=sender,
            escrow=escrow,
            top_up=rent_exempt_lamports - prefunded,
            space=TOKEN_ESCROW_LEN,
        )
    authority = vault_authority(program_id, escrow)[0]
    vault = create_idempotent_associated_token_account(sender, authority, mint)
    lock = lock_token_instruction(
        program_id,
        sender=sender,
        escrow=escrow,
        recipient=recipient,
        mint=mint,
        hashlock=hashlock,
        deadline=deadline,
        amount=amount,
    )
    return [*create, vault, lock]


def _settle_accounts(
    program_id: Pubkey, escrow: Pubkey, mint: Pubkey, party_token: Pubkey, sender: Pubkey
) -> list[AccountMeta]:
    authority = vault_authority(program_id, escrow)[0]
    return [
        AccountMeta(escrow, is_signer=False, is_writable=True),
        AccountMeta(get_associated_token_address(authority, mint), False, True),
        AccountMeta(party_token, is_signer=False, is_writable=True),
        AccountMeta(authority, is_signer=False, is_writable=False),
        AccountMeta(sender, is_signer=False, is_writable=True),
        AccountMeta(TOKEN_PROGRAM_ID, is_signer=False, is_writable=False),
    ]


def claim_token_instruction(
    program_id: Pubkey,
    *,
    escrow: Pubkey,
    mint: Pubkey,
    recipient: Pubkey,
    sender: Pubkey,
    preimage: bytes,
) -> Instruction:
    """``claim_token``: anyone may submit it; the tokens go to the recipient's ATA, the
    rent deposits to the sender."""
    if len(preimage) != program.PREIMAGE_LEN:
        raise ChainError(f"preimage must be {program.PREIMAGE_LEN} bytes, got {len(preimage)}")
    data = program.CLAIM_TOKEN_DISCRIMINATOR + struct.pack("<I", len(preimage)) + preimage
    accounts = _settle_accounts(program_id, escrow, mint, token_account(recipient, mint), sender)
    return Instruction(program_id, data, accounts)


def refund_token_instruction(
    program_id: Pubkey, *, escrow: Pubkey, mint: Pubkey, sender: Pubkey
) -> Instruction:
    """``refund_token``: anyone may submit it from the deadline on; everything goes back
    to the sender (tokens to its ATA)."""
    accounts = _settle_accounts(program_id, escrow, mint, token_account(sender, mint), sender)
    return Instruction(program_id, program.REFUND_TOKEN_DISCRIMINATOR, accounts)


def create_token_account(payer: Pubkey, owner: Pubkey, mint: Pubkey) -> Instruction:
    """Create `owner`'s ATA for `mint` if it is missing (a no-op if it exists)."""
    return create_idempotent_associated_token_account(payer, owner, mint)


def parse_mint(asset: str) -> Pubkey:
    """The mint a token leg's `asset` names (base58); ChainError naming it otherwise."""
    try:
        mint = Pubkey.from_string(asset)
    except ValueError as exc:
        raise ChainError(
            f"Solana token leg asset {asset!r} is not a base58 mint address; "
            "give the SPL mint's address"
        ) from exc
    if mint == SYSTEM_PROGRAM_ID:
        raise ChainError("Solana token leg asset is the system program, not a mint")
    return mint
