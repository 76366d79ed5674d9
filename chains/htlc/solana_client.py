"""Instruction builders and account decoding for the Covenant Solana HTLC program.

The program (``chains/htlc/solana/htlc.s``) speaks Anchor's wire format, described by
``chains/htlc/solana/htlc_idl.json``. This module builds ``solders`` instructions and
decodes escrow accounts and ``Claimed`` events; it never signs or sends anything.

Deadline semantics (unix seconds, the Clock sysvar's ``unix_timestamp``): ``claim``
succeeds only while ``now < deadline``; ``refund`` only when ``now >= deadline``.

Funds: the client creates the escrow account in the same transaction as ``lock`` with
:func:`lock_instructions`, funding it with the rent-exempt minimum plus ``amount``.
``lock`` records ``amount`` and requires the escrow to hold at least that much. ``claim``
and ``refund`` move *all* escrow lamports (amount plus the rent deposit) to the recipient
or the sender, which closes the escrow account.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import struct
from dataclasses import dataclass

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account

from config.errors import ChainError, TransactionReverted

ESCROW_LEN = 128
HASH_LEN = 32
PREIMAGE_LEN = 32
# A well-known id for local chains and tests; production deployments pass their own.
LOCAL_PROGRAM_ID = Pubkey.from_bytes(hashlib.sha256(b"covenant:htlc:solana:v1").digest())


def anchor_discriminator(namespace: str, name: str) -> bytes:
    """Anchor's 8-byte discriminator: ``sha256(f"{namespace}:{name}")[:8]``."""
    return hashlib.sha256(f"{namespace}:{name}".encode()).digest()[:8]


LOCK_DISCRIMINATOR = anchor_discriminator("global", "lock")
CLAIM_DISCRIMINATOR = anchor_discriminator("global", "claim")
REFUND_DISCRIMINATOR = anchor_discriminator("global", "refund")
ESCROW_DISCRIMINATOR = anchor_discriminator("account", "Escrow")
CLAIMED_EVENT_DISCRIMINATOR = anchor_discriminator("event", "Claimed")


class HtlcProgramError(enum.IntEnum):
    """Custom error codes returned by the program (Anchor's 6000+ range)."""

    INVALID_INSTRUCTION = 6000
    MISSING_ACCOUNTS = 6001
    DUPLICATE_ACCOUNT = 6002
    WRONG_OWNER = 6003
    NOT_SIGNER = 6004
    NOT_WRITABLE = 6005
    ESCROW_SIZE = 6006
    ALREADY_INITIALIZED = 6007
    NOT_LOCKED = 6008
    ALREADY_SETTLED = 6009
    ZERO_AMOUNT = 6010
    INSUFFICIENT_LAMPORTS = 6011
    DEADLINE_PASSED = 6012
    CLAIM_AFTER_DEADLINE = 6013
    REFUND_BEFORE_DEADLINE = 6014
    WRONG_PREIMAGE = 6015
    PREIMAGE_LENGTH = 6016
    WRONG_RECIPIENT = 6017
    WRONG_SENDER = 6018

    @property
    def message(self) -> str:
        """Human-readable explanation (also shipped in the IDL)."""
        return _ERROR_MESSAGES[self]

    @property
    def idl_name(self) -> str:
        """The error's name in the IDL (UpperCamelCase, as Anchor writes it)."""
        return "".join(part.capitalize() for part in self.name.split("_"))


_ERROR_MESSAGES: dict[HtlcProgramError, str] = {
    HtlcProgramError.INVALID_INSTRUCTION: "Unknown discriminator or malformed instruction data",
    HtlcProgramError.MISSING_ACCOUNTS: "Not enough accounts for this instruction",
    HtlcProgramError.DUPLICATE_ACCOUNT: "The same account was passed twice",
    HtlcProgramError.WRONG_OWNER: "The escrow account is not owned by this program",
    HtlcProgramError.NOT_SIGNER: "The sender or the escrow did not sign the lock",
    HtlcProgramError.NOT_WRITABLE: "An account that must be writable is read-only",
    HtlcProgramError.ESCROW_SIZE: "The escrow account data is not 128 bytes",
    HtlcProgramError.ALREADY_INITIALIZED: "The escrow is already initialized",
    HtlcProgramError.NOT_LOCKED: "The escrow was never locked",
    HtlcProgramError.ALREADY_SETTLED: "The escrow was already claimed or refunded",
    HtlcProgramError.ZERO_AMOUNT: "The amount must be positive",
    HtlcProgramError.INSUFFICIENT_LAMPORTS: "The escrow holds fewer lamports than the amount",
    HtlcProgramError.DEADLINE_PASSED: "The deadline is not in the future",
    HtlcProgramError.CLAIM_AFTER_DEADLINE: "Claim at or after the deadline",
    HtlcProgramError.REFUND_BEFORE_DEADLINE: "Refund before the deadline",
    HtlcProgramError.WRONG_PREIMAGE: "sha256(preimage) does not match the hashlock",
    HtlcProgramError.PREIMAGE_LENGTH: "The preimage is not exactly 32 bytes",
    HtlcProgramError.WRONG_RECIPIENT: "The recipient account is not the recorded recipient",
    HtlcProgramError.WRONG_SENDER: "The sender account is not the recorded sender",
}


class EscrowState(enum.IntEnum):
    """Life cycle of an escrow account (byte 8 of its data)."""

    EMPTY = 0
    LOCKED = 1
    CLAIMED = 2
    REFUNDED = 3


class HtlcReverted(TransactionReverted):
    """The HTLC program rejected an instruction; ``error`` is the decoded code."""

    def __init__(self, error: HtlcProgramError) -> None:
        super().__init__(f"HTLC program error {int(error)} ({error.idl_name})", reason=error.name)
        self.error = error


def error_from_code(code: int) -> HtlcProgramError | None:
    """Map a custom program error code to :class:`HtlcProgramError`, or ``None``."""
    try:
        return HtlcProgramError(code)
    except ValueError:
        return None


_ESCROW_LAYOUT = struct.Struct("<8sB7x32s32s32sqQ")
_CLAIMED_EVENT_LAYOUT = struct.Struct("<8s32s32s")


@dataclass(frozen=True)
class Escrow:
    """Decoded escrow account data."""

    state: EscrowState
    sender: Pubkey
    recipient: Pubkey
    hashlock: bytes
    deadline: int
    amount: int

    @classmethod
    def decode(cls, data: bytes) -> Escrow:
        """Decode the 128-byte account data; raises :class:`ChainError` if it is not one."""
        if len(data) != ESCROW_LEN:
            raise ChainError(f"escrow data is {len(data)} bytes, expected {ESCROW_LEN}")
        disc, state, sender, recipient, hashlock, deadline, amount = _ESCROW_LAYOUT.unpack(data)
        if state == EscrowState.EMPTY:
            return cls(EscrowState.EMPTY, Pubkey.default(), Pubkey.default(), bytes(32), 0, 0)
        if disc != ESCROW_DISCRIMINATOR or state > EscrowState.REFUNDED:
            raise ChainError("account data is not a Covenant HTLC escrow")
        return cls(
            EscrowState(state),
            Pubkey.from_bytes(sender),
            Pubkey.from_bytes(recipient),
            hashlock,
            deadline,
            amount,
        )


@dataclass(frozen=True)
class ClaimedEvent:
    """The ``Claimed`` event logged by a successful claim; carries the preimage."""

    escrow: Pubkey
    preimage: bytes

    def __repr__(self) -> str:
        # Keep the secret out of reprs that may end up in logs.
        return f"ClaimedEvent(escrow={self.escrow}, preimage=<redacted>)"


def decode_claimed_events(logs: list[str]) -> list[ClaimedEvent]:
    """Extract ``Claimed`` events from transaction log lines (``Program data: ...``)."""
    events = []
    for line in logs:
        if not line.startswith("Program data: "):
            continue
        blob = base64.b64decode(line.removeprefix("Program data: ").split(" ")[0])
        if len(blob) == _CLAIMED_EVENT_LAYOUT.size and blob[:8] == CLAIMED_EVENT_DISCRIMINATOR:
            _, escrow, preimage = _CLAIMED_EVENT_LAYOUT.unpack(blob)
            events.append(ClaimedEvent(Pubkey.from_bytes(escrow), preimage))
    return events


# --- instruction data ------------------------------------------------------------------


def encode_lock_data(hashlock: bytes, deadline: int, amount: int) -> bytes:
    """Anchor instruction data for ``lock(hashlock: [u8; 32], deadline: i64, amount: u64)``."""
    if len(hashlock) != HASH_LEN:
        raise ChainError(f"hashlock must be {HASH_LEN} bytes, got {len(hashlock)}")
    if not 0 < amount < 1 << 64:
        raise ChainError(f"amount must be a positive u64 in lamports, got {amount}")
    return LOCK_DISCRIMINATOR + hashlock + struct.pack("<qQ", deadline, amount)


def encode_claim_data(preimage: bytes) -> bytes:
    """Anchor instruction data for ``claim(preimage: Vec<u8>)`` (Borsh: u32 length + bytes).

    Any length is encoded so callers (and tests) can exercise the program's check; use
    :func:`claim_instruction` to refuse a wrong length before it reaches the chain.
    """
    return CLAIM_DISCRIMINATOR + struct.pack("<I", len(preimage)) + preimage


def encode_refund_data() -> bytes:
    """Anchor instruction data for ``refund()``."""
    return REFUND_DISCRIMINATOR


# --- instructions ----------------------------------------------------------------------


def lock_instruction(
    program_id: Pubkey,
    *,
    sender: Pubkey,
    escrow: Pubkey,
    recipient: Pubkey,
    hashlock: bytes,
    deadline: int,
    amount: int,
) -> Instruction:
    """The ``lock`` instruction alone; the escrow must already be created and zeroed."""
    accounts = [
        AccountMeta(sender, is_signer=True, is_writable=True),
        AccountMeta(escrow, is_signer=True, is_writable=True),
        AccountMeta(recipient, is_signer=False, is_writable=False),
    ]
    return Instruction(program_id, encode_lock_data(hashlock, deadline, amount), accounts)


def lock_instructions(
    program_id: Pubkey,
    *,
    sender: Pubkey,
    escrow: Pubkey,
    recipient: Pubkey,
    hashlock: bytes,
    deadline: int,
    amount: int,
    rent_exempt_lamports: int,
) -> list[Instruction]:
    """``create_account`` (funded with rent + amount, owned by the program) then ``lock``.

    Both go in one transaction, signed by the sender and the escrow keypair, so nobody
    can initialise the escrow between its creation and the lock. ``rent_exempt_lamports``
    is ``getMinimumBalanceForRentExemption(ESCROW_LEN)`` from the cluster.
    """
    create = create_account(
        CreateAccountParams(
            from_pubkey=sender,
            to_pubkey=escrow,
            lamports=rent_exempt_lamports + amount,
            space=ESCROW_LEN,
            owner=program_id,
        )
    )
    lock = lock_instruction(
        program_id,
        sender=sender,
        escrow=escrow,
        recipient=recipient,
        hashlock=hashlock,
        deadline=deadline,
        amount=amount,
    )
    return [create, lock]


def claim_instruction(
    program_id: Pubkey, *, escrow: Pubkey, recipient: Pubkey, preimage: bytes
) -> Instruction:
    """The ``claim`` instruction; anyone may submit it, the funds go to ``recipient``."""
    if len(preimage) != PREIMAGE_LEN:
        raise ChainError(f"preimage must be {PREIMAGE_LEN} bytes, got {len(preimage)}")
    accounts = [
        AccountMeta(escrow, is_signer=False, is_writable=True),
        AccountMeta(recipient, is_signer=False, is_writable=True),
    ]
    return Instruction(program_id, encode_claim_data(preimage), accounts)


def refund_instruction(program_id: Pubkey, *, escrow: Pubkey, sender: Pubkey) -> Instruction:
    """The ``refund`` instruction; anyone may submit it once the deadline has passed."""
    accounts = [
        AccountMeta(escrow, is_signer=False, is_writable=True),
        AccountMeta(sender, is_signer=False, is_writable=True),
    ]
    return Instruction(program_id, encode_refund_data(), accounts)


def hashlock_of(preimage: bytes) -> bytes:
    """SHA-256 hashlock of a 32-byte preimage (the same check the program runs)."""
    if len(preimage) != PREIMAGE_LEN:
        raise ChainError(f"preimage must be {PREIMAGE_LEN} bytes, got {len(preimage)}")
    return hashlib.sha256(preimage).digest()
