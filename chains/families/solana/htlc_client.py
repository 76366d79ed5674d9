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

A counterparty's escrow is only as good as :func:`check_escrow_account` says: the account
bytes alone prove nothing, since any program can write 128 bytes that decode as a lock.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import struct
from dataclasses import dataclass

from bip_utils import Base58Decoder
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import (
    AllocateParams,
    AssignParams,
    CreateAccountParams,
    TransferParams,
    allocate,
    assign,
    create_account,
    transfer,
)
from solders.transaction import VersionedTransaction
from solders.transaction_status import EncodedTransactionWithStatusMeta, UiCompiledInstruction

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
# SPL-token legs (chains/families/solana/htlc_token.py builds and reads them).
LOCK_TOKEN_DISCRIMINATOR = anchor_discriminator("global", "lock_token")
CLAIM_TOKEN_DISCRIMINATOR = anchor_discriminator("global", "claim_token")
REFUND_TOKEN_DISCRIMINATOR = anchor_discriminator("global", "refund_token")
TOKEN_ESCROW_DISCRIMINATOR = anchor_discriminator("account", "TokenEscrow")
TOKEN_ESCROW_LEN = 192
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
    WRONG_TOKEN_PROGRAM = 6019
    # The program returns these two triples as base, base + 1, base + 2 (htlc.s
    # check_token_account); build.py checks that they stay consecutive.
    VAULT_NOT_TOKEN_ACCOUNT = 6020
    VAULT_WRONG_MINT = 6021
    VAULT_WRONG_OWNER = 6022
    NOT_TOKEN_ACCOUNT = 6023
    TOKEN_ACCOUNT_WRONG_MINT = 6024
    TOKEN_ACCOUNT_WRONG_OWNER = 6025
    WRONG_VAULT = 6026
    WRONG_VAULT_AUTHORITY = 6027

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
    HtlcProgramError.ESCROW_SIZE: (
        "The escrow account data is not 128 bytes (SOL) or 192 bytes (token instructions)"
    ),
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
    HtlcProgramError.WRONG_TOKEN_PROGRAM: "The token program account is not SPL Token",
    HtlcProgramError.VAULT_NOT_TOKEN_ACCOUNT: (
        "The vault is not an SPL token account (owner program or size)"
    ),
    HtlcProgramError.VAULT_WRONG_MINT: "The vault holds another mint than the escrow's",
    HtlcProgramError.VAULT_WRONG_OWNER: "The vault's owner is not the escrow's vault PDA",
    HtlcProgramError.NOT_TOKEN_ACCOUNT: (
        "The sender's or recipient's token account is not an SPL token account"
    ),
    HtlcProgramError.TOKEN_ACCOUNT_WRONG_MINT: (
        "The sender's or recipient's token account holds another mint than the escrow's"
    ),
    HtlcProgramError.TOKEN_ACCOUNT_WRONG_OWNER: (
        "The token account is not owned by the recorded sender or recipient"
    ),
    HtlcProgramError.WRONG_VAULT: "The vault is not the one the escrow recorded",
    HtlcProgramError.WRONG_VAULT_AUTHORITY: "The vault authority is not the vault's owner",
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


class InvalidEscrow(ChainError):
    """An account that is not a lock of the configured HTLC program; ``reason`` says why."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(
            f"account {address} is not a valid HTLC escrow: {reason}; "
            "treat the leg as not locked and lock nothing against it"
        )
        self.reason = reason


def check_escrow_account(
    address: str, *, owner: Pubkey, lamports: int, data: bytes, program_id: Pubkey
) -> Escrow:
    """Decode an escrow account only if the HTLC program `program_id` vouches for it.

    Only the owner program can write an account's data or debit it, so the owner check
    is what makes the decoded terms mean anything; the lamport check makes sure a claim,
    which pays out every lamport, pays at least the recorded amount (the program's own
    ``lock`` check; a settled escrow is closed and never read here). Raises
    :class:`InvalidEscrow` otherwise.
    """
    if owner == SYSTEM_PROGRAM_ID:
        raise InvalidEscrow(
            address, f"it is a plain system account ({lamports} lamports sent to it), no lock"
        )
    if owner != program_id:
        raise InvalidEscrow(address, f"it is owned by {owner}, not the HTLC program {program_id}")
    if len(data) != ESCROW_LEN:
        raise InvalidEscrow(address, f"its data is {len(data)} bytes, not {ESCROW_LEN}")
    try:
        escrow = Escrow.decode(data)
    except ChainError as exc:
        raise InvalidEscrow(address, str(exc)) from exc
    if escrow.state == EscrowState.LOCKED and lamports < escrow.amount:
        raise InvalidEscrow(
            address, f"it holds {lamports} lamports, less than the {escrow.amount} it records"
        )
    return escrow


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


def claimed_preimages(
    fetched: EncodedTransactionWithStatusMeta, *, program_id: Pubkey, escrow: Pubkey
) -> list[bytes]:
    """Candidate preimages of claims of `escrow` in one ``getTransaction`` result
    (``encoding: base64``), unverified: the caller compares their SHA-256 with the hashlock.

    Read from the data of every ``claim`` instruction that `program_id` runs on `escrow`
    (its first account): top level, and inner (``meta.innerInstructions``: a claim made by
    a cross-program invocation), then from ``Claimed`` events in the logs, which a
    validator truncates after 10 kB and so cannot be relied on alone.
    """
    tx = fetched.transaction
    if not isinstance(tx, VersionedTransaction):
        raise ChainError("getTransaction answered a non-binary transaction; ask for base64")
    meta = fetched.meta
    keys = list(tx.message.account_keys)
    if meta is not None and meta.loaded_addresses is not None:  # v0 lookup tables
        keys += [*meta.loaded_addresses.writable, *meta.loaded_addresses.readonly]
    calls = [
        (ix.program_id_index, bytes(ix.accounts), bytes(ix.data)) for ix in tx.message.instructions
    ]
    for inner in (meta.inner_instructions or []) if meta is not None else []:
        calls += [
            (ix.program_id_index, bytes(ix.accounts), b58decode(ix.data))
            for ix in inner.instructions
            if isinstance(ix, UiCompiledInstruction)
        ]
    found = []
    for program_index, accounts, data in calls:
        if _key(keys, program_index) != program_id or not accounts:
            continue
        preimage = claim_preimage(data) if _key(keys, accounts[0]) == escrow else None
        if preimage is not None:
            found.append(preimage)
    logs = list(meta.log_messages or []) if meta is not None else []
    return found + [e.preimage for e in decode_claimed_events(logs) if e.escrow == escrow]


def _key(keys: list[Pubkey], index: int) -> Pubkey | None:
    return keys[index] if index < len(keys) else None


def b58decode(text: str) -> bytes:
    """Decode Bitcoin-alphabet base58 (RPC instruction data); ChainError if malformed."""
    try:
        return bytes(Base58Decoder.Decode(text))
    except ValueError as exc:
        raise ChainError(f"instruction data {text[:16]!r} is not base58") from exc


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


def claim_preimage(data: bytes) -> bytes | None:
    """The preimage in ``claim`` or ``claim_token`` instruction data (the same layout),
    or None if `data` is neither with a 32-byte preimage (the only kind the program
    accepts)."""
    if len(data) != len(CLAIM_DISCRIMINATOR) + 4 + PREIMAGE_LEN:
        return None
    if data[:8] not in (CLAIM_DISCRIMINATOR, CLAIM_TOKEN_DISCRIMINATOR):
        return None
    if struct.unpack_from("<I", data, 8)[0] != PREIMAGE_LEN:
        return None
    return data[12:]


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
    prefunded: int | None = None,
) -> list[Instruction]:
    """Create the escrow (funded with rent + amount, owned by the program), then ``lock``.

    All go in one transaction, signed by the sender and the escrow keypair, so nobody
    can initialise the escrow between its creation and the lock. ``rent_exempt_lamports``
    is ``getMinimumBalanceForRentExemption(ESCROW_LEN)`` from the cluster.

    `prefunded` is the balance of an escrow address that already exists as an empty
    system account (anyone can send lamports to a published address, and then
    ``create_account`` fails for good): the escrow is then topped up, allocated and
    assigned instead, which needs the same escrow signature.
    """
    target = rent_exempt_lamports + amount
    if prefunded is None:
        create = [
            create_account(
                CreateAccountParams(
                    from_pubkey=sender,
                    to_pubkey=escrow,
                    lamports=target,
                    space=ESCROW_LEN,
                    owner=program_id,
                )
            )
        ]
    else:
        create = take_over(
            program_id, sender=sender, escrow=escrow, top_up=target - prefunded, space=ESCROW_LEN
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
    return [*create, lock]


def take_over(
    program_id: Pubkey, *, sender: Pubkey, escrow: Pubkey, top_up: int, space: int
) -> list[Instruction]:
    """What ``create_account`` does, in its three parts, for an escrow address that
    already exists as a plain system account holding lamports."""
    funding = []
    if top_up > 0:
        funding.append(
            transfer(TransferParams(from_pubkey=sender, to_pubkey=escrow, lamports=top_up))
        )
    return [
        *funding,
        allocate(AllocateParams(pubkey=escrow, space=space)),
        assign(AssignParams(pubkey=escrow, owner=program_id)),
    ]


def is_squatted(owner: Pubkey, lamports: int, data: bytes) -> bool:
    """Whether an escrow address holds lamports only: a plain system account, as a
    transfer to the published address leaves it (:func:`lock_instructions` `prefunded`)."""
    return owner == SYSTEM_PROGRAM_ID and lamports > 0 and not data


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
