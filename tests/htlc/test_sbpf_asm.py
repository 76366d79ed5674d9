"""The sBPF assembler and ELF writer: encodings, errors, and a program run in LiteSVM."""

from __future__ import annotations

import struct

import pytest
from solders.instruction import Instruction

from chains.htlc.solana.litesvm_harness import HtlcSvm, measure_compute_units
from chains.htlc.solana.sbpf_asm import AsmError, assemble, link_elf, murmur3_32


def insns(source: str) -> list[bytes]:
    code = assemble(".globl entrypoint\nentrypoint:\n" + source).bytecode
    return [code[i : i + 8] for i in range(0, len(code), 8)]


def test_alu_memory_and_exit_encodings() -> None:
    assert insns("mov64 r1, 5\nexit") == [
        bytes.fromhex("b701000005000000"),
        bytes.fromhex("9500000000000000"),
    ]
    assert insns("ldxdw r2, [r1+8]")[0] == bytes.fromhex("7912080000000000")
    assert insns("stxb [r10-1], r3")[0] == bytes.fromhex("733affff00000000")
    assert insns("add32 r0, r9")[0] == bytes.fromhex("0c90000000000000")


def test_lddw_takes_two_slots_and_splits_the_value() -> None:
    first, second = insns("lddw r3, 0x1122334455667788")
    assert first == bytes([0x18, 0x03, 0, 0]) + struct.pack("<I", 0x55667788)
    assert second == bytes(4) + struct.pack("<I", 0x11223344)


def test_jumps_and_calls_are_pc_relative() -> None:
    code = insns("ja end\ncall helper\njeq r1, 3, end\nhelper:\nexit\nend:\nexit")
    assert struct.unpack_from("<h", code[0], 2)[0] == 3  # end is pc 4; offset from pc 1
    assert code[1][1] == 0x10  # src=1: internal call
    assert struct.unpack_from("<i", code[1], 4)[0] == 1  # helper at pc 3
    assert code[2][0] == 0x15


def test_syscalls_are_static_murmur3_hashes() -> None:
    code = insns("call sol_log_")
    assert code[0][1] == 0  # src=0: syscall
    assert struct.unpack_from("<I", code[0], 4)[0] == murmur3_32(b"sol_log_")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("ja nowhere", "unknown label"),
        ("mov64 r1, 0x80000000", "use lddw"),
        ("call not_a_syscall", "unknown syscall"),
        ("entrypoint:\nexit", "defined twice"),
        ("frob r1, 2", "unknown instruction"),
        ("ldxdw r1, [r11+0]", "expected"),
    ],
)
def test_errors_name_the_line(source: str, message: str) -> None:
    with pytest.raises(AsmError, match=message):
        assemble(".globl entrypoint\nentrypoint:\n" + source)


def test_elf_runs_in_litesvm_with_internal_call_and_custom_error() -> None:
    source = """
    .equ CODE, 6042
    .globl entrypoint
    entrypoint:
        call set_code
        exit
    set_code:
        mov64 r0, CODE
        exit
    """
    env = HtlcSvm(elf=link_elf(assemble(source)))
    outcome = env.send([_empty_ix(env)], [env.funded(10**9)])
    assert outcome.error_code == 6042


def _empty_ix(env: HtlcSvm) -> Instruction:
    return Instruction(env.program_id, b"", [])


def test_compute_units_are_measured_per_instruction() -> None:
    units = measure_compute_units()
    assert set(units) == {"lock", "claim", "refund"}
    # Budget guard: the program is small; a regression to thousands of CU is a bug.
    assert all(0 < cu < 2_000 for cu in units.values()), units
