# Covenant HTLC program for SOL and SPL tokens (sBPF assembly, SBPF v3).
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
# SPL-token legs have instructions of their own (lock_token, claim_token, refund_token)
# rather than optional accounts on lock/claim/refund: the SOL instructions keep their
# wire format, account lists and behaviour byte for byte (existing clients and escrows
# are untouched), each instruction keeps one fixed account order (what Anchor clients
# and the IDL expect), and a token escrow has its own 192-byte `TokenEscrow` layout, so
# a SOL claim/refund can never be pointed at a token escrow (or the reverse): the size
# check refuses it (EscrowSize).
#
#   lock_token(hashlock [u8;32], deadline i64, amount u64)
#       0 sender         signer        the token owner; records the refund destination
#       1 escrow         signer, writable, owned by this program, 192 zeroed bytes
#       2 recipient      any           its key is recorded
#       3 mint           any           its key is recorded; the vault must hold this mint
#       4 sender_token   writable      SPL token account of `mint` owned by the sender
#       5 vault          writable      SPL token account of `mint` whose owner is the
#                                      vault authority PDA (the client creates it as that
#                                      PDA's associated token account)
#       6 token_program  SPL Token (Tokenkeg...); Token-2022 is refused
#     moves `amount` tokens sender_token -> vault (CPI Transfer, the sender signs).
#   claim_token(preimage Vec<u8>)   -- anyone may submit, before the deadline
#       0 escrow         writable
#       1 vault          writable      the recorded vault
#       2 recipient_token writable     token account of the recorded mint owned by the
#                                      recorded recipient
#       3 vault_authority              the vault's owner (the PDA)
#       4 sender         writable      the recorded sender: gets the vault's and the
#                                      escrow's rent back
#       5 token_program
#   refund_token()                  -- anyone may submit, from the deadline on
#       0 escrow, 1 vault, 2 sender_token (owned by the recorded sender), 3 vault_authority,
#       4 sender, 5 token_program   (same checks as claim_token)
#   claim_token/refund_token move the vault's whole balance out (CPI Transfer signed by
#   the PDA), close the vault to the sender (CPI CloseAccount) and move every escrow
#   lamport to the sender, which closes the escrow. So the token recipient receives
#   tokens only, and the sender gets both rent deposits back whichever way it ends.
#
# Vault authority PDA: find_program_address([b"vault", escrow pubkey], this program);
# lock_token finds it (sol_try_find_program_address), checks that the vault's SPL owner
# is it, and records its bump in the escrow (byte 9) for the signer seeds
# [b"vault", escrow, [bump]] of the claim/refund CPIs. Only this program can sign for
# the PDA and it signs nothing else, so the recorded vault cannot lose tokens, gain a
# delegate or change owner outside claim_token/refund_token.
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
# count before the handler picks its accounts; in the token handlers, which of claim or
# refund runs), r7 instruction data, r6 its length. The token handlers read their other
# accounts from the entry frame's slots (they run in the entry frame).
# Internal calls preserve r6-r9 (the VM saves them per frame); r0-r5 are scratch.

# --- serialized input (aligned loader ABI) -----------------------------------------
.equ ACC_DUP, 0
.equ ACC_SIGNER, 1
.equ ACC_WRITABLE, 2
.equ ACC_EXECUTABLE, 3
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
# token escrow (TokenEscrow): the same first 128 bytes, then the bump, mint and vault
.equ TOKEN_ESCROW_LEN, 192
.equ ESC_BUMP, ACC_DATA + 9
.equ ESC_MINT, ACC_DATA + 128
.equ ESC_VAULT, ACC_DATA + 160
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
.equ DISC_LOCK_TOKEN, 0x50e8734ebe8d9699
.equ DISC_CLAIM_TOKEN, 0x490013a6bf1bce74
.equ DISC_REFUND_TOKEN, 0xae2ed30cd15dc2c6
.equ DISC_TOKEN_ESCROW, 0xa5249236095ebdba

# --- SPL Token program (TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA as 4 LE u64) ------
.equ TOKEN_PROGRAM_0, 0x93a165d7e1f6dd06
.equ TOKEN_PROGRAM_1, 0xac79ebce46e1cbd9
.equ TOKEN_PROGRAM_2, 0x91375b5fed85b41c
.equ TOKEN_PROGRAM_3, 0xa900ff7e85f58c3a
# SPL token account (165 bytes): mint 0..32, owner 32..64, amount 64..72
.equ TOKEN_ACCOUNT_LEN, 165
.equ TA_MINT, ACC_DATA + 0
.equ TA_OWNER, ACC_DATA + 32
.equ TA_AMOUNT, ACC_DATA + 64
.equ SPL_TRANSFER, 3
.equ SPL_CLOSE_ACCOUNT, 9
.equ VAULT_SEED, 0x746c756176
.equ VAULT_SEED_LEN, 5

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
.equ E_WRONG_TOKEN_PROGRAM, 6019
.equ E_VAULT_NOT_TOKEN_ACCOUNT, 6020
.equ E_VAULT_WRONG_MINT, 6021
.equ E_VAULT_WRONG_OWNER, 6022
.equ E_NOT_TOKEN_ACCOUNT, 6023
.equ E_TOKEN_ACCOUNT_WRONG_MINT, 6024
.equ E_TOKEN_ACCOUNT_WRONG_OWNER, 6025
.equ E_WRONG_VAULT, 6026
.equ E_WRONG_VAULT_AUTHORITY, 6027

# --- stack slots (entry frame) ----------------------------------------------------------
.equ MAX_SLOTS, 8
.equ SLOT_ACC0, -64
.equ SLOT_ACC1, -56
.equ SLOT_ACC2, -48
.equ SLOT_ACC3, -40
.equ SLOT_ACC4, -32
.equ SLOT_ACC5, -24
.equ SLOT_ACC6, -16
.equ SLOT_ACC7, -8
.equ SLOT_BUMP, -72
.equ SLOT_PDA, -104
.equ SLOT_CPI_DATA, -128
.equ SLOT_CPI_ACCOUNTS, -152
.equ SLOT_SEEDS, -184
.equ SLOT_SEED_BYTES, -192

.globl entrypoint
entrypoint:
    # Walk every account entry to reach the instruction data that follows them, keeping
    # pointers to the first MAX_SLOTS. Duplicate entries are rejected: every instruction
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
    jge r6, MAX_SLOTS, walk_skip
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
    lddw r3, DISC_LOCK_TOKEN
    jeq r2, r3, lock_token
    lddw r3, DISC_CLAIM_TOKEN
    jeq r2, r3, claim_token
    lddw r3, DISC_REFUND_TOKEN
    jeq r2, r3, refund_token
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

# --- lock_token -----------------------------------------------------------------------
lock_token:
    jne r6, LOCK_DATA_LEN, err_invalid_instruction
    jlt r8, 7, err_missing_accounts
    ldxdw r9, [r10+SLOT_ACC1]
    ldxdw r8, [r10+SLOT_ACC0]
    ldxb r2, [r8+ACC_SIGNER]
    jeq r2, 0, err_not_signer
    # The escrow signs for the same reason as in lock.
    ldxb r2, [r9+ACC_SIGNER]
    jeq r2, 0, err_not_signer
    ldxb r2, [r9+ACC_WRITABLE]
    jeq r2, 0, err_not_writable
    mov64 r5, TOKEN_ESCROW_LEN
    call check_escrow_len
    jne r0, 0, fail
    ldxb r2, [r9+ESC_STATE]
    jne r2, STATE_EMPTY, err_already_initialized
    ldxdw r2, [r7+LOCK_AMOUNT]
    jeq r2, 0, err_zero_amount
    call now
    ldxdw r2, [r7+LOCK_DEADLINE]
    jsle r2, r0, err_deadline_passed
    ldxdw r1, [r10+SLOT_ACC6]
    add64 r1, ACC_KEY
    call is_token_program
    jne r0, 0, err_wrong_token_program
    # The vault must be a token account of the mint whose owner is this escrow's PDA:
    # only then can nobody but this program move its tokens.
    mov64 r1, r10
    add64 r1, SLOT_PDA
    mov64 r2, r10
    add64 r2, SLOT_BUMP
    call find_vault_authority
    jne r0, 0, err_vault_wrong_owner
    ldxdw r1, [r10+SLOT_ACC5]
    ldxdw r2, [r10+SLOT_ACC3]
    add64 r2, ACC_KEY
    mov64 r3, r10
    add64 r3, SLOT_PDA
    mov64 r4, E_VAULT_NOT_TOKEN_ACCOUNT
    call check_token_account
    jne r0, 0, fail
    # The source: a token account of the same mint that the sender owns (so a refund,
    # which pays a token account the sender owns, returns the tokens to their owner).
    ldxdw r1, [r10+SLOT_ACC4]
    ldxdw r2, [r10+SLOT_ACC3]
    add64 r2, ACC_KEY
    mov64 r3, r8
    add64 r3, ACC_KEY
    mov64 r4, E_NOT_TOKEN_ACCOUNT
    call check_token_account
    jne r0, 0, fail
    lddw r2, DISC_TOKEN_ESCROW
    stxdw [r9+ESC_DISC], r2
    stb [r9+ESC_STATE], STATE_LOCKED
    ldxb r2, [r10+SLOT_BUMP]
    stxb [r9+ESC_BUMP], r2
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
    ldxdw r2, [r10+SLOT_ACC3]
    add64 r2, ACC_KEY
    mov64 r1, r9
    add64 r1, ESC_MINT
    call copy32
    ldxdw r2, [r10+SLOT_ACC5]
    add64 r2, ACC_KEY
    mov64 r1, r9
    add64 r1, ESC_VAULT
    call copy32
    # Transfer(sender_token -> vault, amount), authorised by the sender's signature.
    stb [r10+SLOT_CPI_DATA], SPL_TRANSFER
    ldxdw r2, [r7+LOCK_AMOUNT]
    stxdw [r10+SLOT_CPI_DATA+1], r2
    ldxdw r2, [r10+SLOT_ACC4]
    stxdw [r10+SLOT_CPI_ACCOUNTS], r2
    ldxdw r2, [r10+SLOT_ACC5]
    stxdw [r10+SLOT_CPI_ACCOUNTS+8], r2
    stxdw [r10+SLOT_CPI_ACCOUNTS+16], r8
    mov64 r1, r10
    add64 r1, SLOT_CPI_ACCOUNTS
    mov64 r2, r10
    add64 r2, SLOT_CPI_DATA
    mov64 r3, 9
    ldxdw r4, [r10+SLOT_ACC6]
    add64 r4, ACC_KEY
    mov64 r5, 0
    call invoke_token3
    mov64 r0, 0
    exit

# --- claim_token / refund_token ---------------------------------------------------------
# One body for both (r8 = 0 claim, 1 refund): they differ only in whose token account is
# paid, the deadline test and the preimage.
claim_token:
    jlt r6, CLAIM_PREIMAGE, err_invalid_instruction
    ldxw r2, [r7+CLAIM_VEC_LEN]
    mov64 r3, r2
    add64 r3, CLAIM_PREIMAGE
    jne r3, r6, err_invalid_instruction
    jne r2, PREIMAGE_LEN, err_preimage_length
    jlt r8, 6, err_missing_accounts
    mov64 r8, 0
    ja settle_token
refund_token:
    jne r6, REFUND_DATA_LEN, err_invalid_instruction
    jlt r8, 6, err_missing_accounts
    mov64 r8, 1
settle_token:
    ldxdw r9, [r10+SLOT_ACC0]
    ldxb r2, [r9+ACC_WRITABLE]
    jeq r2, 0, err_not_writable
    mov64 r5, TOKEN_ESCROW_LEN
    call check_locked
    jne r0, 0, fail
    ldxdw r1, [r10+SLOT_ACC5]
    add64 r1, ACC_KEY
    call is_token_program
    jne r0, 0, err_wrong_token_program
    # The recorded vault (a decoy token account of the same PDA would pay nothing and
    # leave the real vault stranded once the escrow is settled).
    ldxdw r1, [r10+SLOT_ACC1]
    ldxb r2, [r1+ACC_WRITABLE]
    jeq r2, 0, err_not_writable
    add64 r1, ACC_KEY
    mov64 r2, r9
    add64 r2, ESC_VAULT
    call eq32
    jne r0, 0, err_wrong_vault
    # The authority passed must be the vault's owner, which lock_token checked is the PDA.
    ldxdw r1, [r10+SLOT_ACC3]
    add64 r1, ACC_KEY
    ldxdw r2, [r10+SLOT_ACC1]
    add64 r2, TA_OWNER
    call eq32
    jne r0, 0, err_wrong_vault_authority
    # The sender gets the rent deposits back.
    ldxdw r1, [r10+SLOT_ACC4]
    ldxb r2, [r1+ACC_WRITABLE]
    jeq r2, 0, err_not_writable
    add64 r1, ACC_KEY
    mov64 r2, r9
    add64 r2, ESC_SENDER
    call eq32
    jne r0, 0, err_wrong_sender
    # The tokens go to a token account of the recorded mint owned by the recipient
    # (claim) or the sender (refund).
    ldxdw r1, [r10+SLOT_ACC2]
    mov64 r2, r9
    add64 r2, ESC_MINT
    mov64 r3, r9
    add64 r3, ESC_RECIPIENT
    jeq r8, 0, settle_token_party
    mov64 r3, r9
    add64 r3, ESC_SENDER
settle_token_party:
    mov64 r4, E_NOT_TOKEN_ACCOUNT
    call check_token_account
    jne r0, 0, fail
    call now
    ldxdw r2, [r9+ESC_DEADLINE]
    jne r8, 0, refund_token_tail
    jsge r0, r2, err_claim_after_deadline
    call check_preimage
    jne r0, 0, err_wrong_preimage
    stb [r9+ESC_STATE], STATE_CLAIMED
    ldxdw r1, [r10+SLOT_ACC1]
    ldxdw r2, [r10+SLOT_ACC2]
    ldxdw r3, [r10+SLOT_ACC3]
    ldxdw r4, [r10+SLOT_ACC4]
    ldxdw r5, [r10+SLOT_ACC5]
    call pay_out_token
    call emit_claimed
    mov64 r0, 0
    exit
refund_token_tail:
    jslt r0, r2, err_refund_before_deadline
    stb [r9+ESC_STATE], STATE_REFUNDED
    ldxdw r1, [r10+SLOT_ACC1]
    ldxdw r2, [r10+SLOT_ACC2]
    ldxdw r3, [r10+SLOT_ACC3]
    ldxdw r4, [r10+SLOT_ACC4]
    ldxdw r5, [r10+SLOT_ACC5]
    call pay_out_token
    mov64 r0, 0
    exit

# --- helpers (internal calls; results in r0) -------------------------------------------

# check_escrow: r0 = 0 if the escrow (r9) is owned by this program and 128 bytes long;
# check_escrow_len: the same with the length in r5 (kept: eq32 does not touch r5).
# The program id is serialized right after the instruction data (r7 + r6).
check_escrow:
    mov64 r5, ESCROW_LEN
check_escrow_len:
    mov64 r1, r9
    add64 r1, ACC_OWNER
    mov64 r2, r7
    add64 r2, r6
    call eq32
    jne r0, 0, check_escrow_owner
    ldxdw r2, [r9+ACC_DATA_LEN]
    mov64 r0, E_ESCROW_SIZE
    jne r2, r5, check_escrow_done
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
    mov64 r5, ESCROW_LEN
    call check_locked
check_settle_done:
    exit

# check_locked: r0 = 0 if the escrow (r9) is this program's, r5 bytes long, and locked.
check_locked:
    call check_escrow_len
    jne r0, 0, check_locked_done
    ldxb r2, [r9+ESC_STATE]
    mov64 r0, E_NOT_LOCKED
    jeq r2, STATE_EMPTY, check_locked_done
    mov64 r0, E_ALREADY_SETTLED
    jne r2, STATE_LOCKED, check_locked_done
    mov64 r0, 0
check_locked_done:
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

# --- token helpers ----------------------------------------------------------------------

# is_token_program: r0 = 0 if the 32 bytes at r1 are the SPL Token program id.
is_token_program:
    mov64 r0, 1
    ldxdw r2, [r1+0]
    lddw r3, TOKEN_PROGRAM_0
    jne r2, r3, is_token_program_done
    ldxdw r2, [r1+8]
    lddw r3, TOKEN_PROGRAM_1
    jne r2, r3, is_token_program_done
    ldxdw r2, [r1+16]
    lddw r3, TOKEN_PROGRAM_2
    jne r2, r3, is_token_program_done
    ldxdw r2, [r1+24]
    lddw r3, TOKEN_PROGRAM_3
    jne r2, r3, is_token_program_done
    mov64 r0, 0
is_token_program_done:
    exit

# check_token_account: r0 = 0 if the account entry r1 is writable, owned by SPL Token,
# 165 bytes, holds the mint at r2 and has the owner at r3. Otherwise r0 = E_NOT_WRITABLE,
# or r4 (not a token account), r4 + 1 (wrong mint), r4 + 2 (wrong owner): the vault and
# the parties' token accounts have their own triple of error codes.
check_token_account:
    stxdw [r10-8], r1
    stxdw [r10-16], r2
    stxdw [r10-24], r3
    stxdw [r10-32], r4
    mov64 r0, E_NOT_WRITABLE
    ldxb r5, [r1+ACC_WRITABLE]
    jeq r5, 0, check_token_account_done
    add64 r1, ACC_OWNER
    call is_token_program
    ldxdw r1, [r10-8]
    jne r0, 0, check_token_account_foreign
    ldxdw r5, [r1+ACC_DATA_LEN]
    jne r5, TOKEN_ACCOUNT_LEN, check_token_account_foreign
    add64 r1, TA_MINT
    ldxdw r2, [r10-16]
    call eq32
    jne r0, 0, check_token_account_mint
    ldxdw r1, [r10-8]
    add64 r1, TA_OWNER
    ldxdw r2, [r10-24]
    call eq32
    jne r0, 0, check_token_account_owner
check_token_account_done:
    exit
check_token_account_foreign:
    ldxdw r0, [r10-32]
    exit
check_token_account_mint:
    ldxdw r0, [r10-32]
    add64 r0, 1
    exit
check_token_account_owner:
    ldxdw r0, [r10-32]
    add64 r0, 2
    exit

# find_vault_authority: the PDA of [b"vault", escrow (r9) key] under this program, to
# the 32 bytes at r1, its bump to the byte at r2; r0 = 0 on success.
find_vault_authority:
    mov64 r4, r1
    mov64 r5, r2
    lddw r3, VAULT_SEED
    stxdw [r10-8], r3
    mov64 r1, r10
    add64 r1, -48
    mov64 r3, r10
    add64 r3, -8
    stxdw [r1+0], r3
    stdw [r1+8], VAULT_SEED_LEN
    mov64 r3, r9
    add64 r3, ACC_KEY
    stxdw [r1+16], r3
    stdw [r1+24], 32
    mov64 r2, 2
    mov64 r3, r7
    add64 r3, r6
    call sol_try_find_program_address
    exit

# pay_out_token: move the whole vault balance to the party's token account, close the
# vault to the sender (both CPIs signed by the vault authority PDA), then move every
# escrow lamport to the sender. r1 vault, r2 party token account, r3 vault authority,
# r4 sender, r5 token program (account entries); r9 the escrow.
pay_out_token:
    stxdw [r10-24], r1
    stxdw [r10-16], r2
    stxdw [r10-8], r3
    stxdw [r10-48], r1
    stxdw [r10-40], r4
    stxdw [r10-32], r3
    stxdw [r10-56], r5
    # Signer seeds [b"vault", escrow, [bump]] (SolSignerSeeds of three SolSignerSeed).
    lddw r2, VAULT_SEED
    stxdw [r10-144], r2
    ldxb r2, [r9+ESC_BUMP]
    stxb [r10-152], r2
    mov64 r2, r10
    add64 r2, -144
    stxdw [r10-136], r2
    stdw [r10-128], VAULT_SEED_LEN
    mov64 r2, r9
    add64 r2, ACC_KEY
    stxdw [r10-120], r2
    stdw [r10-112], 32
    mov64 r2, r10
    add64 r2, -152
    stxdw [r10-104], r2
    stdw [r10-96], 1
    mov64 r2, r10
    add64 r2, -136
    stxdw [r10-168], r2
    stdw [r10-160], 3
    # Transfer the whole balance: the amount, and anything sent to the vault since, so
    # the vault is empty and can be closed.
    stb [r10-80], SPL_TRANSFER
    ldxdw r2, [r1+TA_AMOUNT]
    stxdw [r10-79], r2
    mov64 r1, r10
    add64 r1, -24
    mov64 r2, r10
    add64 r2, -80
    mov64 r3, 9
    ldxdw r4, [r10-56]
    add64 r4, ACC_KEY
    mov64 r5, r10
    add64 r5, -168
    call invoke_token3
    stb [r10-88], SPL_CLOSE_ACCOUNT
    mov64 r1, r10
    add64 r1, -48
    mov64 r2, r10
    add64 r2, -88
    mov64 r3, 1
    ldxdw r4, [r10-56]
    add64 r4, ACC_KEY
    mov64 r5, r10
    add64 r5, -168
    call invoke_token3
    ldxdw r8, [r10-40]
    call pay_out
    exit

# invoke_token3: sol_invoke_signed_c of the token program (id at r4) with instruction
# data r2 (r3 bytes) and three accounts [writable, writable, signer] whose entries are the
# three pointers at r1; r5 = one SolSignerSeeds (or 0: no PDA signs). The SolAccountInfo
# pointers point into the serialized input, where the runtime expects them.
invoke_token3:
    stxdw [r10-264], r5
    stxdw [r10-272], r1
    stxdw [r10-40], r4
    mov64 r4, r10
    add64 r4, -88
    stxdw [r10-32], r4
    stdw [r10-24], 3
    stxdw [r10-16], r2
    stxdw [r10-8], r3
    # SolAccountMeta {pubkey*, is_writable u8, is_signer u8}
    ldxdw r2, [r1+0]
    add64 r2, ACC_KEY
    stxdw [r10-88], r2
    sth [r10-80], 0x0001
    ldxdw r2, [r1+8]
    add64 r2, ACC_KEY
    stxdw [r10-72], r2
    sth [r10-64], 0x0001
    ldxdw r2, [r1+16]
    add64 r2, ACC_KEY
    stxdw [r10-56], r2
    sth [r10-48], 0x0100
    ldxdw r1, [r1+0]
    mov64 r2, r10
    add64 r2, -256
    call fill_info
    ldxdw r1, [r10-272]
    ldxdw r1, [r1+8]
    mov64 r2, r10
    add64 r2, -200
    call fill_info
    ldxdw r1, [r10-272]
    ldxdw r1, [r1+16]
    mov64 r2, r10
    add64 r2, -144
    call fill_info
    mov64 r1, r10
    add64 r1, -40
    mov64 r2, r10
    add64 r2, -256
    mov64 r3, 3
    ldxdw r4, [r10-264]
    mov64 r5, 0
    jeq r4, 0, invoke_token3_call
    mov64 r5, 1
invoke_token3_call:
    call sol_invoke_signed_c
    exit

# fill_info: the SolAccountInfo at r2 for the account entry at r1.
fill_info:
    mov64 r3, r1
    add64 r3, ACC_KEY
    stxdw [r2+0], r3
    mov64 r3, r1
    add64 r3, ACC_LAMPORTS
    stxdw [r2+8], r3
    ldxdw r3, [r1+ACC_DATA_LEN]
    stxdw [r2+16], r3
    mov64 r3, r1
    add64 r3, ACC_DATA
    stxdw [r2+24], r3
    mov64 r3, r1
    add64 r3, ACC_OWNER
    stxdw [r2+32], r3
    stdw [r2+40], 0
    ldxb r3, [r1+ACC_SIGNER]
    stxb [r2+48], r3
    ldxb r3, [r1+ACC_WRITABLE]
    stxb [r2+49], r3
    ldxb r3, [r1+ACC_EXECUTABLE]
    stxb [r2+50], r3
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
err_wrong_token_program:
    mov64 r0, E_WRONG_TOKEN_PROGRAM
    exit
err_vault_wrong_owner:
    mov64 r0, E_VAULT_WRONG_OWNER
    exit
err_wrong_vault:
    mov64 r0, E_WRONG_VAULT
    exit
err_wrong_vault_authority:
    mov64 r0, E_WRONG_VAULT_AUTHORITY
    exit
