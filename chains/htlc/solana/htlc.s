# Covenant HTLC program for SOL (sBPF assembly, SBPF v3).
#
# Built by chains/htlc/solana/build.py with chains/htlc/solana/sbpf_asm.py.
# Anchor-compatible wire format: instruction data = sha256("global:<name>")[:8] + Borsh
# args; the escrow account starts with sha256("account:Escrow")[:8]; errors are Anchor
# style custom codes (6000 + n); the claim emits an Anchor event `Claimed` via
# sol_log_data so tooling can read the revealed preimage from the logs.
#
# Instructions (fixed account order):
#   lock(hashlock [u8;32], deadline i64, amount u64)
#       0 sender    signer        records the refund destination
#       1 escrow    signer, writable, owned by this program, 128 zeroed bytes
#                   (created by the client in the same transaction with
#                   SystemProgram.create_account, funded with rent minimum + amount)
#       2 recipient any           its key is recorded; it is not read or written
#   claim(preimage Vec<u8>)  -- anyone may submit; the Vec must hold exactly 32 bytes
#       0 escrow    writable
#       1 recipient writable      must equal the recorded recipient
#   refund()                 -- anyone may submit
#       0 escrow    writable
#       1 sender    writable      must equal the recorded sender
#
# Deadline semantics (unix seconds, Clock sysvar unix_timestamp):
#   claim  succeeds only while now <  deadline;
#   refund succeeds only when  now >= deadline;
#   lock   requires            now <  deadline.
# So for any clock value exactly one of claim and refund is possible.
#
# Funds: lock requires escrow lamports >= amount and records `amount` (what the
# counterparty verifies). The rent-exempt deposit the runtime forces on the new account
# is part of the escrow balance; claim and refund move ALL escrow lamports (amount +
# deposit) to the recipient or the sender, which closes the escrow account at the end of
# the transaction. A second claim/refund in the same transaction sees state != locked
# (AlreadySettled); in a later transaction the account no longer exists (WrongOwner).
#
# Registers across handlers: r9 escrow account, r8 counterpart account (or the account
# count before the handler picks its accounts), r7 instruction data, r6 its length.
# Internal calls preserve r6-r9 (the VM saves them per frame); r0-r5 are scratch.

# --- serialized input (aligned loader ABI) -----------------------------------------
.equ ACC_DUP, 0
.equ ACC_SIGNER, 1
.equ ACC_WRITABLE, 2
.equ ACC_KEY, 8
.equ ACC_OWNER, 40
.equ ACC_LAMPORTS, 72
.equ ACC_DATA_LEN, 80
.equ ACC_DATA, 88
.equ MAX_PERMITTED_DATA_INCREASE, 10240
.equ NOT_DUP, 0xff

# --- escrow account data (offsets from the account entry) -------------------------
.equ ESCROW_LEN, 128
.equ ESC_DISC, ACC_DATA + 0
.equ ESC_STATE, ACC_DATA + 8
.equ ESC_SENDER, ACC_DATA + 16
.equ ESC_RECIPIENT, ACC_DATA + 48
.equ ESC_HASHLOCK, ACC_DATA + 80
.equ ESC_DEADLINE, ACC_DATA + 112
.equ ESC_AMOUNT, ACC_DATA + 120
.equ STATE_EMPTY, 0
.equ STATE_LOCKED, 1
.equ STATE_CLAIMED, 2
.equ STATE_REFUNDED, 3

# --- discriminators (little-endian u64 of sha256(...)[:8]; checked by build.py) ----
.equ DISC_LOCK, 0x57ff3eed2bd01315
.equ DISC_CLAIM, 0xd26c9fd5c1d6c63e
.equ DISC_REFUND, 0x2e2ed03ffbb76002
.equ DISC_ESCROW, 0x9bda16babb7bd51f
.equ DISC_EVENT_CLAIMED, 0x21f8966c487bc0d9

# --- instruction data -----------------------------------------------------------------
.equ LOCK_HASHLOCK, 8
.equ LOCK_DEADLINE, 40
.equ LOCK_AMOUNT, 48
.equ LOCK_DATA_LEN, 56
.equ CLAIM_VEC_LEN, 8
.equ CLAIM_PREIMAGE, 12
.equ PREIMAGE_LEN, 32
.equ REFUND_DATA_LEN, 8

# --- error codes (Anchor custom error range; checked against the client by build.py) -
.equ E_INVALID_INSTRUCTION, 6000
.equ E_MISSING_ACCOUNTS, 6001
.equ E_DUPLICATE_ACCOUNT, 6002
.equ E_WRONG_OWNER, 6003
.equ E_NOT_SIGNER, 6004
.equ E_NOT_WRITABLE, 6005
.equ E_ESCROW_SIZE, 6006
.equ E_ALREADY_INITIALIZED, 6007
.equ E_NOT_LOCKED, 6008
.equ E_ALREADY_SETTLED, 6009
.equ E_ZERO_AMOUNT, 6010
.equ E_INSUFFICIENT_LAMPORTS, 6011
.equ E_DEADLINE_PASSED, 6012
.equ E_CLAIM_AFTER_DEADLINE, 6013
.equ E_REFUND_BEFORE_DEADLINE, 6014
.equ E_WRONG_PREIMAGE, 6015
.equ E_PREIMAGE_LENGTH, 6016
.equ E_WRONG_RECIPIENT, 6017
.equ E_WRONG_SENDER, 6018

# --- stack slots (entry frame) ----------------------------------------------------------
.equ SLOT_ACC0, -24
.equ SLOT_ACC1, -16
.equ SLOT_ACC2, -8

.globl entrypoint
entrypoint:
    # Walk every account entry to reach the instruction data that follows them, keeping
    # pointers to the first three. Duplicate entries are rejected: every instruction
    # needs distinct accounts, and it keeps the entry layout uniform.
    ldxdw r8, [r1+0]
    mov64 r7, r1
    add64 r7, 8
    mov64 r6, 0
    mov64 r2, r10
    add64 r2, SLOT_ACC0
walk:
    jge r6, r8, walk_done
    ldxb r3, [r7+ACC_DUP]
    jne r3, NOT_DUP, err_duplicate_account
    jge r6, 3, walk_skip
    stxdw [r2+0], r7
    add64 r2, 8
walk_skip:
    # entry size = 88 + align8(data_len + 10240) + 8 (rent_epoch)
    ldxdw r3, [r7+ACC_DATA_LEN]
    add64 r3, ACC_DATA + MAX_PERMITTED_DATA_INCREASE + 7
    and64 r3, -8
    add64 r3, 8
    add64 r7, r3
    add64 r6, 1
    ja walk
walk_done:
    ldxdw r6, [r7+0]
    add64 r7, 8
    jlt r6, 8, err_invalid_instruction
    ldxdw r2, [r7+0]
    lddw r3, DISC_LOCK
    jeq r2, r3, lock
    lddw r3, DISC_CLAIM
    jeq r2, r3, claim
    lddw r3, DISC_REFUND
    jeq r2, r3, refund
    ja err_invalid_instruction

# --- lock -----------------------------------------------------------------------------
lock:
    jne r6, LOCK_DATA_LEN, err_invalid_instruction
    jlt r8, 3, err_missing_accounts
    ldxdw r9, [r10+SLOT_ACC1]
    ldxdw r8, [r10+SLOT_ACC0]
    ldxb r2, [r8+ACC_SIGNER]
    jeq r2, 0, err_not_signer
    # The escrow must sign too: otherwise anyone could initialise an escrow that a
    # client created in an earlier transaction and name themselves the sender.
    ldxb r2, [r9+ACC_SIGNER]
    jeq r2, 0, err_not_signer
    ldxb r2, [r9+ACC_WRITABLE]
    jeq r2, 0, err_not_writable
    call check_escrow
    jne r0, 0, fail
    ldxb r2, [r9+ESC_STATE]
    jne r2, STATE_EMPTY, err_already_initialized
    ldxdw r2, [r7+LOCK_AMOUNT]
    jeq r2, 0, err_zero_amount
    ldxdw r3, [r9+ACC_LAMPORTS]
    jlt r3, r2, err_insufficient_lamports
    call now
    ldxdw r2, [r7+LOCK_DEADLINE]
    jsle r2, r0, err_deadline_passed
    lddw r2, DISC_ESCROW
    stxdw [r9+ESC_DISC], r2
    stb [r9+ESC_STATE], STATE_LOCKED
    mov64 r1, r9
    add64 r1, ESC_SENDER
    mov64 r2, r8
    add64 r2, ACC_KEY
    call copy32
    ldxdw r2, [r10+SLOT_ACC2]
    add64 r2, ACC_KEY
    mov64 r1, r9
    add64 r1, ESC_RECIPIENT
    call copy32
    mov64 r1, r9
    add64 r1, ESC_HASHLOCK
    mov64 r2, r7
    add64 r2, LOCK_HASHLOCK
    call copy32
    ldxdw r2, [r7+LOCK_DEADLINE]
    stxdw [r9+ESC_DEADLINE], r2
    ldxdw r2, [r7+LOCK_AMOUNT]
    stxdw [r9+ESC_AMOUNT], r2
    mov64 r0, 0
    exit

# --- claim ----------------------------------------------------------------------------
claim:
    jlt r6, CLAIM_PREIMAGE, err_invalid_instruction
    # Borsh Vec<u8>: u32 length, then the bytes; the length must match the data exactly.
    ldxw r2, [r7+CLAIM_VEC_LEN]
    mov64 r3, r2
    add64 r3, CLAIM_PREIMAGE
    jne r3, r6, err_invalid_instruction
    jne r2, PREIMAGE_LEN, err_preimage_length
    jlt r8, 2, err_missing_accounts
    ldxdw r9, [r10+SLOT_ACC0]
    ldxdw r8, [r10+SLOT_ACC1]
    call check_settle
    jne r0, 0, fail
    mov64 r1, r8
    add64 r1, ACC_KEY
    mov64 r2, r9
    add64 r2, ESC_RECIPIENT
    call eq32
    jne r0, 0, err_wrong_recipient
    call now
    ldxdw r2, [r9+ESC_DEADLINE]
    jsge r0, r2, err_claim_after_deadline
    call check_preimage
    jne r0, 0, err_wrong_preimage
    stb [r9+ESC_STATE], STATE_CLAIMED
    call pay_out
    call emit_claimed
    mov64 r0, 0
    exit

# --- refund ---------------------------------------------------------------------------
refund:
    jne r6, REFUND_DATA_LEN, err_invalid_instruction
    jlt r8, 2, err_missing_accounts
    ldxdw r9, [r10+SLOT_ACC0]
    ldxdw r8, [r10+SLOT_ACC1]
    call check_settle
    jne r0, 0, fail
    mov64 r1, r8
    add64 r1, ACC_KEY
    mov64 r2, r9
    add64 r2, ESC_SENDER
    call eq32
    jne r0, 0, err_wrong_sender
    call now
    ldxdw r2, [r9+ESC_DEADLINE]
    jslt r0, r2, err_refund_before_deadline
    stb [r9+ESC_STATE], STATE_REFUNDED
    call pay_out
    mov64 r0, 0
    exit

# --- helpers (internal calls; results in r0) -------------------------------------------

# check_escrow: r0 = 0 if the escrow (r9) is owned by this program and 128 bytes long.
# The program id is serialized right after the instruction data (r7 + r6).
check_escrow:
    mov64 r1, r9
    add64 r1, ACC_OWNER
    mov64 r2, r7
    add64 r2, r6
    call eq32
    jne r0, 0, check_escrow_owner
    ldxdw r2, [r9+ACC_DATA_LEN]
    mov64 r0, E_ESCROW_SIZE
    jne r2, ESCROW_LEN, check_escrow_done
    mov64 r0, 0
check_escrow_done:
    exit
check_escrow_owner:
    mov64 r0, E_WRONG_OWNER
    exit

# check_settle: r0 = 0 if escrow (r9) and counterpart (r8) are writable and the escrow
# is a valid, locked escrow of this program.
check_settle:
    mov64 r0, E_NOT_WRITABLE
    ldxb r2, [r9+ACC_WRITABLE]
    jeq r2, 0, check_settle_done
    ldxb r2, [r8+ACC_WRITABLE]
    jeq r2, 0, check_settle_done
    call check_escrow
    jne r0, 0, check_settle_done
    ldxb r2, [r9+ESC_STATE]
    mov64 r0, E_NOT_LOCKED
    jeq r2, STATE_EMPTY, check_settle_done
    mov64 r0, E_ALREADY_SETTLED
    jne r2, STATE_LOCKED, check_settle_done
    mov64 r0, 0
check_settle_done:
    exit

# check_preimage: r0 = 0 if sha256(preimage in the instruction data) == stored hashlock.
check_preimage:
    mov64 r1, r10
    add64 r1, -16
    mov64 r2, r7
    add64 r2, CLAIM_PREIMAGE
    stxdw [r1+0], r2
    stdw [r1+8], PREIMAGE_LEN
    mov64 r2, 1
    mov64 r3, r10
    add64 r3, -48
    call sol_sha256
    mov64 r1, r10
    add64 r1, -48
    mov64 r2, r9
    add64 r2, ESC_HASHLOCK
    call eq32
    exit

# now: r0 = Clock sysvar unix_timestamp (i64 at offset 32 of the 40-byte Clock).
now:
    mov64 r1, r10
    add64 r1, -40
    call sol_get_clock_sysvar
    ldxdw r0, [r10-8]
    exit

# pay_out: move every lamport of the escrow (r9) to the counterpart (r8). A program-owned
# account may be debited by its owner; an emptied account is removed after the tx.
pay_out:
    ldxdw r2, [r9+ACC_LAMPORTS]
    ldxdw r3, [r8+ACC_LAMPORTS]
    add64 r3, r2
    stxdw [r8+ACC_LAMPORTS], r3
    stdw [r9+ACC_LAMPORTS], 0
    exit

# emit_claimed: Anchor event Claimed { escrow: Pubkey, preimage: [u8; 32] } as one
# sol_log_data slice (Anchor parses a single base64 blob after "Program data: ").
emit_claimed:
    lddw r2, DISC_EVENT_CLAIMED
    stxdw [r10-72], r2
    mov64 r1, r10
    add64 r1, -64
    mov64 r2, r9
    add64 r2, ACC_KEY
    call copy32
    mov64 r1, r10
    add64 r1, -32
    mov64 r2, r7
    add64 r2, CLAIM_PREIMAGE
    call copy32
    mov64 r1, r10
    add64 r1, -88
    mov64 r2, r10
    add64 r2, -72
    stxdw [r1+0], r2
    stdw [r1+8], 72
    mov64 r2, 1
    call sol_log_data
    exit

# eq32: r0 = 0 if the 32 bytes at r1 and r2 are equal, else 1.
eq32:
    mov64 r0, 1
    ldxdw r3, [r1+0]
    ldxdw r4, [r2+0]
    jne r3, r4, eq32_done
    ldxdw r3, [r1+8]
    ldxdw r4, [r2+8]
    jne r3, r4, eq32_done
    ldxdw r3, [r1+16]
    ldxdw r4, [r2+16]
    jne r3, r4, eq32_done
    ldxdw r3, [r1+24]
    ldxdw r4, [r2+24]
    jne r3, r4, eq32_done
    mov64 r0, 0
eq32_done:
    exit

# copy32: copy 32 bytes from r2 to r1.
copy32:
    ldxdw r3, [r2+0]
    stxdw [r1+0], r3
    ldxdw r3, [r2+8]
    stxdw [r1+8], r3
    ldxdw r3, [r2+16]
    stxdw [r1+16], r3
    ldxdw r3, [r2+24]
    stxdw [r1+24], r3
    exit

# --- rejections -----------------------------------------------------------------------
fail:
    exit
err_invalid_instruction:
    mov64 r0, E_INVALID_INSTRUCTION
    exit
err_missing_accounts:
    mov64 r0, E_MISSING_ACCOUNTS
    exit
err_duplicate_account:
    mov64 r0, E_DUPLICATE_ACCOUNT
    exit
err_not_signer:
    mov64 r0, E_NOT_SIGNER
    exit
err_not_writable:
    mov64 r0, E_NOT_WRITABLE
    exit
err_already_initialized:
    mov64 r0, E_ALREADY_INITIALIZED
    exit
err_zero_amount:
    mov64 r0, E_ZERO_AMOUNT
    exit
err_insufficient_lamports:
    mov64 r0, E_INSUFFICIENT_LAMPORTS
    exit
err_deadline_passed:
    mov64 r0, E_DEADLINE_PASSED
    exit
err_claim_after_deadline:
    mov64 r0, E_CLAIM_AFTER_DEADLINE
    exit
err_refund_before_deadline:
    mov64 r0, E_REFUND_BEFORE_DEADLINE
    exit
err_wrong_preimage:
    mov64 r0, E_WRONG_PREIMAGE
    exit
err_preimage_length:
    mov64 r0, E_PREIMAGE_LENGTH
    exit
err_wrong_recipient:
    mov64 r0, E_WRONG_RECIPIENT
    exit
err_wrong_sender:
    mov64 r0, E_WRONG_SENDER
    exit
