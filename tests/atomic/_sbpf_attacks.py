"""A Solana attacker's own programs and transactions, for the hostile-counterparty tests:
the in-process ones (tests/atomic/test_hostile_solana.py) and the hostile daemon
(tests/a2a/_hostile.py).

The programs are sBPF assembly built with the repo's assembler: a *forger* (writes its
instruction data into an account it owns), a *logger* (emits N log lines, to push a
claim's ``Claimed`` event past the validator's 10 kB log limit) and a *proxy* (invokes
the HTLC program's claim by CPI, so the claim is an inner instruction only). They are
loaded into the LiteSVM server with its ``covenant_addProgram`` method
(chains/families/solana/solana_rpc.py).
"""

from __future__ import annotations

import base64
import struct
from typing import Any
from unittest import mock

from solders.compute_budget import set_compute_unit_limit
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import VersionedTransaction

from chains.atomic.base import Leg
from chains.families.solana import htlc_client as program
from chains.families.solana.escrow import SolanaHtlc, _intent
from chains.families.solana.tx import SolanaUnsignedTx
from chains.htlc.solana import sbpf_asm
from wallets.authorization import solana_message_digest

# Aligned loader input: u64 account count, then per account dup, signer, writable,
# executable, 4 bytes padding, key, owner, lamports, data_len, data, 10 kB of spare room
# (aligned to 8), rent_epoch; then the instruction data length and bytes.
_INPUT = """
.equ ACC_SIGNER, 1
.equ ACC_WRITABLE, 2
.equ ACC_EXECUTABLE, 3
.equ ACC_KEY, 8
.equ ACC_OWNER, 40
.equ ACC_LAMPORTS, 72
.equ ACC_DATA_LEN, 80
.equ ACC_DATA, 88
.equ SPARE, 10240
"""

# Copy the instruction data over account 0's data (the runtime lets only the owner do it).
FORGER = (
    _INPUT
    + """
entrypoint:
    ldxdw r2, [r1+8+ACC_DATA_LEN]
    mov64 r3, r1
    add64 r3, 8+ACC_DATA
    mov64 r4, r2
    add64 r4, SPARE+7
    and64 r4, -8
    add64 r4, r3
    add64 r4, 8
    ldxdw r5, [r4+0]
    add64 r4, 8
    jle r5, r2, copy
    mov64 r5, r2
copy:
    jeq r5, 0, done
    ldxb r0, [r4+0]
    stxb [r3+0], r0
    add64 r3, 1
    add64 r4, 1
    sub64 r5, 1
    ja copy
done:
    mov64 r0, 0
    exit
"""
)

# Log N lines: N is the u64 that starts instruction data of at most 16 bytes (longer data
# logs nothing, so any bytes can ride along); accounts are skipped, never read.
LOGGER = (
    _INPUT
    + """
entrypoint:
    ldxdw r2, [r1+0]
    mov64 r7, r1
    add64 r7, 8
skip:
    jeq r2, 0, skipped
    ldxdw r3, [r7+ACC_DATA_LEN]
    add64 r3, ACC_DATA+SPARE+7
    and64 r3, -8
    add64 r3, 8
    add64 r7, r3
    sub64 r2, 1
    ja skip
skipped:
    ldxdw r3, [r7+0]
    mov64 r6, 0
    jlt r3, 8, loop
    jgt r3, 16, loop
    ldxdw r6, [r7+8]
loop:
    jeq r6, 0, done
    mov64 r1, r6
    mov64 r2, 0
    mov64 r3, 0
    mov64 r4, 0
    mov64 r5, 0
    call sol_log_64_
    sub64 r6, 1
    ja loop
done:
    mov64 r0, 0
    exit
"""
)

# Invoke the program passed as account 2 with this instruction's data and accounts 0, 1
# (both writable), through sol_invoke_signed_c (C ABI: SolInstruction, SolAccountMeta,
# SolAccountInfo built on the stack).
PROXY = (
    _INPUT
    + """
.equ IX, -40
.equ METAS, -72
.equ INFOS, -184
entrypoint:
    mov64 r6, r1
    add64 r6, 8
    mov64 r1, r6
    call next_entry
    mov64 r7, r0
    mov64 r1, r7
    call next_entry
    mov64 r8, r0
    mov64 r1, r8
    call next_entry
    mov64 r9, r0
    mov64 r2, r6
    add64 r2, ACC_KEY
    stxdw [r10+METAS], r2
    stb [r10+METAS+8], 1
    stb [r10+METAS+9], 0
    mov64 r2, r7
    add64 r2, ACC_KEY
    stxdw [r10+METAS+16], r2
    stb [r10+METAS+24], 1
    stb [r10+METAS+25], 0
    mov64 r1, r10
    add64 r1, INFOS
    mov64 r2, r6
    call fill_info
    mov64 r1, r10
    add64 r1, INFOS+56
    mov64 r2, r7
    call fill_info
    mov64 r2, r8
    add64 r2, ACC_KEY
    stxdw [r10+IX], r2
    mov64 r2, r10
    add64 r2, METAS
    stxdw [r10+IX+8], r2
    stdw [r10+IX+16], 2
    mov64 r2, r9
    add64 r2, 8
    stxdw [r10+IX+24], r2
    ldxdw r2, [r9+0]
    stxdw [r10+IX+32], r2
    mov64 r1, r10
    add64 r1, IX
    mov64 r2, r10
    add64 r2, INFOS
    mov64 r3, 2
    mov64 r4, 0
    mov64 r5, 0
    call sol_invoke_signed_c
    exit
next_entry:
    ldxdw r0, [r1+ACC_DATA_LEN]
    add64 r0, ACC_DATA+SPARE+7
    and64 r0, -8
    add64 r0, 8
    add64 r0, r1
    exit
fill_info:
    mov64 r3, r2
    add64 r3, ACC_KEY
    stxdw [r1+0], r3
    mov64 r3, r2
    add64 r3, ACC_LAMPORTS
    stxdw [r1+8], r3
    ldxdw r3, [r2+ACC_DATA_LEN]
    stxdw [r1+16], r3
    mov64 r3, r2
    add64 r3, ACC_DATA
    stxdw [r1+24], r3
    mov64 r3, r2
    add64 r3, ACC_OWNER
    stxdw [r1+32], r3
    stdw [r1+40], 0
    ldxb r3, [r2+ACC_SIGNER]
    stxb [r1+48], r3
    ldxb r3, [r2+ACC_WRITABLE]
    stxb [r1+49], r3
    ldxb r3, [r2+ACC_EXECUTABLE]
    stxb [r1+50], r3
    exit
"""
)
PAD_LINES = 400  # ~15 kB of "Program log: 0x..., 0x0, ..." lines: past the 10 kB limit


def elf(source: str) -> bytes:
    # The HTLC program makes no CPI, so the assembler does not list the CPI syscall.
    known = sbpf_asm.KNOWN_SYSCALLS | {"sol_invoke_signed_c"}
    with mock.patch.object(sbpf_asm, "KNOWN_SYSCALLS", known):
        return sbpf_asm.link_elf(sbpf_asm.assemble(source))


def escrow_bytes(leg: Leg, hashlock: bytes, amount: int) -> bytes:
    """What the program writes on lock (solana_client's layout), for a forger to copy."""
    return struct.pack(
        "<8sB7x32s32s32sqQ",
        program.ESCROW_DISCRIMINATOR,
        int(program.EscrowState.LOCKED),
        bytes(Pubkey.from_string(leg.sender)),
        bytes(Pubkey.from_string(leg.recipient)),
        hashlock,
        leg.deadline,
        amount,
    )


async def deploy(htlc: SolanaHtlc, source: str) -> Pubkey:
    """Load the program `source` into the LiteSVM server `htlc` talks to; its id."""
    program_id = Keypair().pubkey()
    elf_b64 = base64.b64encode(elf(source)).decode()
    await htlc.adapter.read("covenant_addProgram", [str(program_id), elf_b64])
    return program_id


def mention(logger: Pubkey, escrow: Pubkey, nonce: int) -> Instruction:
    """An instruction of the LOGGER program that names `escrow` and does nothing (it
    logs 0 lines): one cheap transaction more in the escrow's history."""
    return Instruction(logger, struct.pack("<QQ", 0, nonce), [AccountMeta(escrow, False, False)])


async def flood(htlc: SolanaHtlc, escrow: Pubkey, logger: Pubkey, count: int) -> None:
    """Send `count` transactions naming `escrow`, paid by a keypair of the flooder's
    own that the local faucet funds."""
    payer = Keypair()
    await htlc.adapter.read("requestAirdrop", [str(payer.pubkey()), 10**10])
    answer = await htlc.adapter.read("getLatestBlockhash", [{"commitment": "confirmed"}])
    recent = Hash.from_string(answer["value"]["blockhash"])
    for nonce in range(count):
        message = MessageV0.try_compile(
            payer.pubkey(), [mention(logger, escrow, nonce)], [], recent
        )
        raw = base64.b64encode(bytes(VersionedTransaction(message, [payer]))).decode()
        options = {"encoding": "base64", "skipPreflight": True}
        await htlc.adapter.read("sendTransaction", [raw, options])


async def hidden_claim(
    htlc: SolanaHtlc,
    leg: Leg,
    preimage: bytes,
    payer: str,
    *,
    logger: Pubkey,
    proxy: Pubkey | None = None,
) -> SolanaUnsignedTx:
    """The claim of `leg` behind ~15 kB of logs (the validator truncates the rest,
    ``Claimed`` event included) and, with `proxy`, through that program, so the HTLC
    program's claim is an inner instruction only. Its preimage is still in the
    instruction data, which is where an honest reader must take it from."""
    escrow, recipient = Pubkey.from_string(leg.locator), Pubkey.from_string(leg.recipient)
    claim = program.claim_instruction(
        htlc.program_id, escrow=escrow, recipient=recipient, preimage=preimage
    )
    if proxy is not None:
        accounts = [*claim.accounts, AccountMeta(htlc.program_id, False, False)]
        claim = Instruction(proxy, bytes(claim.data), accounts)
    pad = Instruction(logger, struct.pack("<Q", PAD_LINES), [])
    instructions = [set_compute_unit_limit(400_000), pad, claim]
    return await _compiled(htlc, instructions, payer, _intent(claim))


async def forged_lock(
    htlc: SolanaHtlc, leg: Leg, hashlock: bytes, payer: str, *, forger: Pubkey
) -> SolanaUnsignedTx:
    """A "lock" of `leg` that creates its escrow account owned by `forger`, not the HTLC
    program, holding rent only, with byte for byte the data a real lock of the whole
    amount writes. Signed like a real lock (the escrow keypair co-signs)."""
    escrow = Pubkey.from_string(leg.locator)
    rent = await htlc.adapter.minimum_rent(program.ESCROW_LEN)
    create = CreateAccountParams(
        from_pubkey=Pubkey.from_string(payer),
        to_pubkey=escrow,
        lamports=rent,
        space=program.ESCROW_LEN,
        owner=forger,
    )
    data = escrow_bytes(leg, hashlock, leg.amount)
    write = Instruction(forger, data, [AccountMeta(escrow, False, True)])
    return await _compiled(htlc, [create_account(create), write], payer, _intent(write))


async def _compiled(
    htlc: SolanaHtlc, instructions: list[Instruction], payer: str, intent: Any
) -> SolanaUnsignedTx:
    blockhash, last_valid = await htlc.recent_blockhash()
    message = MessageV0.try_compile(Pubkey.from_string(payer), instructions, [], blockhash)
    return SolanaUnsignedTx(
        chain=htlc.name,
        sender=payer,
        intent=intent,
        digest=solana_message_digest(message),
        message=message,
        last_valid_block_height=last_valid,
    )
