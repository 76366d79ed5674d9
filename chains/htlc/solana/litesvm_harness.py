"""Run the HTLC program in LiteSVM: used by the tests and to measure compute units.

This is a development tool, not part of the runtime path: it holds its own test keypairs
and signs with them. :func:`measure_compute_units` runs one successful ``lock``,
``claim`` and ``refund`` and returns the compute units each consumed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from solders.clock import Clock
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata
from solders.transaction_status import InstructionErrorCustom, TransactionErrorInstructionError

from chains.families.solana import htlc_client as htlc
from chains.htlc.solana.build import ELF_PATH

_CONSUMED = re.compile(r"^Program (\w+) consumed (\d+) of \d+ compute units$")


@dataclass(frozen=True)
class TxOutcome:
    """What one transaction did: success, custom error code, fee, logs, CU per program."""

    ok: bool
    error_code: int | None
    fee: int
    logs: list[str]
    compute_units: dict[str, list[int]]
    raw_error: str | None = None

    def program_units(self, program_id: Pubkey) -> list[int]:
        """Compute units of each top-level invocation of ``program_id``, in order."""
        return self.compute_units.get(str(program_id), [])


def _outcome(result: TransactionMetadata | FailedTransactionMetadata) -> TxOutcome:
    if isinstance(result, FailedTransactionMetadata):
        meta, err = result.meta(), result.err()
        code = None
        if isinstance(err, TransactionErrorInstructionError) and isinstance(
            err.err, InstructionErrorCustom
        ):
            code = err.err.code
        return TxOutcome(False, code, meta.fee(), list(meta.logs()), _units(meta), str(err))
    return TxOutcome(True, None, result.fee(), list(result.logs()), _units(result))


def _units(meta: TransactionMetadata) -> dict[str, list[int]]:
    units: dict[str, list[int]] = {}
    for line in meta.logs():
        match = _CONSUMED.match(line)
        if match:
            units.setdefault(match.group(1), []).append(int(match.group(2)))
    return units


class HtlcSvm:
    """A LiteSVM instance with the HTLC program deployed and a clock we control.

    `mainnet` runs it under mainnet-beta's feature set (what the program meets when
    deployed there); otherwise LiteSVM's default, every feature enabled (what the
    devnet's LiteSVM server runs).
    """

    def __init__(
        self, elf: bytes | None = None, program_id: Pubkey | None = None, *, mainnet: bool = True
    ) -> None:
        self.svm = LiteSVM().with_mainnet_features() if mainnet else LiteSVM()
        self.program_id = program_id or htlc.LOCAL_PROGRAM_ID
        self.svm.add_program(self.program_id, elf if elf is not None else ELF_PATH.read_bytes())
        self.set_time(1_700_000_000)

    def set_time(self, unix_timestamp: int) -> None:
        """Set the Clock sysvar's unix_timestamp (the program's notion of now)."""
        clock = self.svm.get_clock()
        self.svm.set_clock(
            Clock(
                clock.slot,
                clock.epoch_start_timestamp,
                clock.epoch,
                clock.leader_schedule_epoch,
                unix_timestamp,
            )
        )

    def funded(self, lamports: int) -> Keypair:
        """A fresh keypair holding ``lamports``."""
        keypair = Keypair()
        self.svm.airdrop(keypair.pubkey(), lamports)
        return keypair

    def balance(self, pubkey: Pubkey) -> int:
        """Lamports of an account (0 if it does not exist)."""
        return self.svm.get_balance(pubkey) or 0

    def rent_exempt(self) -> int:
        """Rent-exempt minimum for an escrow account."""
        return self.svm.minimum_balance_for_rent_exemption(htlc.ESCROW_LEN)

    def send(self, instructions: list[Instruction], signers: list[Keypair]) -> TxOutcome:
        """Sign with ``signers`` (the first pays) and process one transaction."""
        message = Message(instructions, signers[0].pubkey())
        tx = Transaction(signers, message, self.svm.latest_blockhash())
        outcome = _outcome(self.svm.send_transaction(tx))
        self.svm.expire_blockhash()
        return outcome

    def escrow(self, pubkey: Pubkey) -> htlc.Escrow | None:
        """Decoded escrow account, or ``None`` if the account does not exist."""
        account = self.svm.get_account(pubkey)
        return None if account is None else htlc.Escrow.decode(bytes(account.data))


@dataclass(frozen=True)
class LockedSwap:
    """Keys and terms of an escrow created by :func:`lock_swap`."""

    sender: Keypair
    escrow: Keypair
    recipient: Pubkey
    preimage: bytes
    deadline: int
    amount: int
    outcome: TxOutcome


def lock_swap(
    env: HtlcSvm, *, amount: int = 1_000_000, deadline_in: int = 3600, preimage: bytes = b""
) -> LockedSwap:
    """Create and lock an escrow from a fresh funded sender to a fresh recipient."""
    sender, escrow, recipient = env.funded(10_000_000_000), Keypair(), Keypair().pubkey()
    secret = preimage or bytes(range(1, 33))
    deadline = env.svm.get_clock().unix_timestamp + deadline_in
    instructions = htlc.lock_instructions(
        env.program_id,
        sender=sender.pubkey(),
        escrow=escrow.pubkey(),
        recipient=recipient,
        hashlock=htlc.hashlock_of(secret),
        deadline=deadline,
        amount=amount,
        rent_exempt_lamports=env.rent_exempt(),
    )
    outcome = env.send(instructions, [sender, escrow])
    return LockedSwap(sender, escrow, recipient, secret, deadline, amount, outcome)


def measure_compute_units(elf: bytes | None = None) -> dict[str, int]:
    """Compute units consumed by one successful ``lock``, ``claim`` and ``refund``."""
    env = HtlcSvm(elf)
    claimed = lock_swap(env)
    claim = htlc.claim_instruction(
        env.program_id,
        escrow=claimed.escrow.pubkey(),
        recipient=claimed.recipient,
        preimage=claimed.preimage,
    )
    claim_outcome = env.send([claim], [claimed.sender])
    refunded = lock_swap(env, deadline_in=10)
    env.set_time(refunded.deadline)
    refund = htlc.refund_instruction(
        env.program_id, escrow=refunded.escrow.pubkey(), sender=refunded.sender.pubkey()
    )
    refund_outcome = env.send([refund], [refunded.sender])
    outcomes = {"lock": claimed.outcome, "claim": claim_outcome, "refund": refund_outcome}
    if not all(outcome.ok for outcome in outcomes.values()):
        raise RuntimeError(f"HTLC benchmark transaction failed: {outcomes}")
    return {name: outcome.program_units(env.program_id)[0] for name, outcome in outcomes.items()}
