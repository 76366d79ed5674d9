"""A small sBPF assembler and ELF linker for Solana programs (SBPF v3).

No Rust SBF toolchain is reachable here, so the HTLC program is written in sBPF
assembly and turned into a loadable ELF by this module. The output targets the
strict ELF parser that agave uses for SBPF v3 (``solana-sbpf`` 0.21):

* ELF64 little endian, ``e_machine = EM_BPF`` (247), ``e_flags = 3`` (the SBPF version),
  program headers right after the 64-byte file header;
* one ``PT_LOAD`` program header with ``PF_X`` at virtual address ``1 << 32`` holding the
  bytecode (the optional read-only segment at vaddr 0 is not used);
* no section headers: the strict parser ignores them, and leaving them out keeps the
  output a pure function of the source;
* syscalls are ``call`` with ``src = 0`` and ``imm = murmur3_32(name)`` (static syscalls);
  calls to local labels use ``src = 1`` and a pc-relative ``imm``.

The instruction set is SBPF v3 as implemented by solana-sbpf 0.21: the v0 encoding
(``lddw``, classic load/store opcodes, ``exit``), no PQR class.

Syntax (one instruction per line, comments start with ``#`` or ``//``)::

    .equ NAME, expr          # named constant; expr may use + - * // << >> | & and names
    .globl entrypoint        # the entry label (default: ``entrypoint``)
    label:
    mov64 r0, 1              # ALU: add sub mul div or and lsh rsh mod xor mov arsh (32/64)
    lddw r1, 0x1122334455667788
    ldxdw r2, [r1+8]         # ldxb ldxh ldxw ldxdw / stb sth stw stdw / stxb stxh stxw stxdw
    jne r2, 0, label         # ja jeq jgt jge jlt jle jset jne jsgt jsge jslt jsle
    call sol_log_            # syscall by name; ``call label`` for a local function
    exit
"""

from __future__ import annotations

import argparse
import ast
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

INSN_SIZE = 8
BYTECODE_VADDR = 1 << 32
SBPF_VERSION = 3
EM_BPF = 247
KNOWN_SYSCALLS = frozenset(
    {
        "abort",
        "sol_panic_",
        "sol_log_",
        "sol_log_64_",
        "sol_log_pubkey",
        "sol_log_data",
        "sol_log_compute_units_",
        "sol_sha256",
        "sol_keccak256",
        "sol_memcpy_",
        "sol_memcmp_",
        "sol_memset_",
        "sol_memmove_",
        "sol_get_clock_sysvar",
        "sol_get_rent_sysvar",
        "sol_set_return_data",
        "sol_invoke_signed_c",
        "sol_try_find_program_address",
        "sol_create_program_address",
    }
)


class AsmError(ValueError):
    """The assembly source is invalid; the message names the line."""


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86_32, as used by solana-sbpf to key syscalls by name."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask
    rounded = len(data) - len(data) % 4
    for i in range(0, rounded, 4):
        h ^= _murmur_scramble(int.from_bytes(data[i : i + 4], "little"), c1, c2)
        h = _rotl32(h, 13)
        h = (h * 5 + 0xE6546B64) & mask
    tail = int.from_bytes(data[rounded:], "little") if len(data) % 4 else 0
    if len(data) % 4:
        h ^= _murmur_scramble(tail, c1, c2)
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    return h ^ (h >> 16)


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & 0xFFFFFFFF


def _murmur_scramble(k: int, c1: int, c2: int) -> int:
    k = (k * c1) & 0xFFFFFFFF
    k = _rotl32(k, 15)
    return (k * c2) & 0xFFFFFFFF


# --- opcode tables -------------------------------------------------------------------

_ALU_OPS = {
    "add": 0x00, "sub": 0x10, "mul": 0x20, "div": 0x30, "or": 0x40, "and": 0x50,
    "lsh": 0x60, "rsh": 0x70, "mod": 0x90, "xor": 0xA0, "mov": 0xB0, "arsh": 0xC0,
}  # fmt: skip
_JMP_OPS = {
    "jeq": 0x10, "jgt": 0x20, "jge": 0x30, "jset": 0x40, "jne": 0x50, "jsgt": 0x60,
    "jsge": 0x70, "jlt": 0xA0, "jle": 0xB0, "jslt": 0xC0, "jsle": 0xD0,
}  # fmt: skip
_SIZES = {"b": 0x10, "h": 0x08, "w": 0x00, "dw": 0x18}
_CLASS_ALU32, _CLASS_ALU64, _CLASS_JMP = 0x04, 0x07, 0x05
_CLASS_LDX, _CLASS_ST, _CLASS_STX, _MODE_MEM = 0x01, 0x02, 0x03, 0x60
_OP_LDDW, _OP_CALL, _OP_EXIT, _SRC_REG = 0x18, 0x85, 0x95, 0x08

_REG = re.compile(r"^r(10|[0-9])$")
_MEM = re.compile(r"^\[\s*(r(?:10|[0-9]))\s*(?:([+-])\s*(.+?))?\s*\]$")
_LABEL = re.compile(r"^([A-Za-z_.][\w.]*):\s*(.*)$")


@dataclass(frozen=True)
class Insn:
    """One encoded 8-byte slot."""

    opc: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def encode(self) -> bytes:
        """Little-endian sBPF encoding: opc, dst|src<<4, off (i16), imm (i32)."""
        regs = (self.src << 4) | self.dst
        return struct.pack("<BBhi", self.opc, regs, self.off, _to_i32(self.imm))


def _to_i32(value: int) -> int:
    # 32-bit immediates may be written unsigned (e.g. syscall hashes); store the bits.
    if not -(1 << 31) <= value < (1 << 32):
        raise AsmError(f"immediate {value} does not fit in 32 bits")
    return value - (1 << 32) if value >= (1 << 31) else value


@dataclass
class _Line:
    number: int
    mnemonic: str
    operands: list[str]
    pc: int


@dataclass
class Program:
    """An assembled program: bytecode, entry pc, label pcs and ``.equ`` constants."""

    bytecode: bytes
    entry_pc: int
    labels: dict[str, int] = field(default_factory=dict)
    constants: dict[str, int] = field(default_factory=dict)


# --- expressions -----------------------------------------------------------------------

_BINOPS: dict[type[ast.operator], Callable[[int, int], int]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.LShift: lambda a, b: a << b,
    ast.RShift: lambda a, b: a >> b,
    ast.BitOr: lambda a, b: a | b,
    ast.BitAnd: lambda a, b: a & b,
}


def evaluate(expr: str, names: Mapping[str, int]) -> int:
    """Evaluate an integer constant expression; only literals, names and arithmetic."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise AsmError(f"bad expression {expr!r}") from exc
    return _eval_node(tree.body, names, expr)


def _eval_node(node: ast.expr, names: Mapping[str, int], expr: str) -> int:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise AsmError(f"unknown name {node.id!r} in {expr!r}")
        return names[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval_node(node.operand, names, expr)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left = _eval_node(node.left, names, expr)
        return _BINOPS[type(node.op)](left, _eval_node(node.right, names, expr))
    raise AsmError(f"unsupported expression {expr!r}")


# --- pass 1: parse, size, collect labels ----------------------------------------------


def _strip_comment(text: str) -> str:
    for marker in ("#", "//", ";"):
        text = text.split(marker, 1)[0]
    return text.strip()


def _split_operands(text: str) -> list[str]:
    # Commas inside brackets never occur in this syntax, so a plain split is enough.
    return [part.strip() for part in text.split(",")] if text else []


class _Parser:
    def __init__(self) -> None:
        self.equs: dict[str, int] = {}
        self.labels: dict[str, int] = {}
        self.lines: list[_Line] = []
        self.entry = "entrypoint"
        self.pc = 0

    def feed(self, number: int, raw: str) -> None:
        text = _strip_comment(raw)
        while (match := _LABEL.match(text)) is not None:
            self._define_label(number, match.group(1))
            text = match.group(2).strip()
        if not text:
            return
        mnemonic, _, rest = text.partition(" ")
        operands = _split_operands(rest.strip())
        if mnemonic.startswith("."):
            self._directive(number, mnemonic, operands)
            return
        self.lines.append(_Line(number, mnemonic.lower(), operands, self.pc))
        self.pc += 2 if mnemonic.lower() == "lddw" else 1

    def _define_label(self, number: int, name: str) -> None:
        if name in self.labels or name in self.equs:
            raise AsmError(f"line {number}: {name!r} defined twice")
        self.labels[name] = self.pc

    def _directive(self, number: int, name: str, operands: list[str]) -> None:
        if name == ".equ" and len(operands) == 2:
            if operands[0] in self.equs or operands[0] in self.labels:
                raise AsmError(f"line {number}: {operands[0]!r} defined twice")
            self.equs[operands[0]] = evaluate(operands[1], self.equs)
        elif name == ".globl" and len(operands) == 1:
            self.entry = operands[0]
        elif name not in (".text", ".section"):
            raise AsmError(f"line {number}: unknown directive {name!r}")


# --- pass 2: encode --------------------------------------------------------------------


class _Encoder:
    def __init__(self, parser: _Parser) -> None:
        self.equs = parser.equs
        self.labels = parser.labels

    def encode(self, line: _Line) -> list[Insn]:
        try:
            return self._dispatch(line)
        except AsmError as exc:
            raise AsmError(f"line {line.number}: {line.mnemonic}: {exc}") from exc

    def _dispatch(self, line: _Line) -> list[Insn]:
        m, ops = line.mnemonic, line.operands
        if m == "lddw":
            return self._lddw(ops)
        if m in ("exit", "call", "ja") or m in _JMP_OPS:
            return [self._control(m, ops, line.pc)]
        if m.startswith(("ldx", "stx", "st")):
            return [self._memory(m, ops)]
        return [self._alu(m, ops)]

    def _control(self, m: str, ops: list[str], pc: int) -> Insn:
        if m == "exit":
            return Insn(_OP_EXIT)
        if m == "call":
            return self._call(ops, pc)
        if m == "ja":
            return Insn(_CLASS_JMP, off=self._jump_off(ops[0], pc))
        return self._jump(m, ops, pc)

    def _reg(self, text: str) -> int:
        match = _REG.match(text.strip())
        if match is None:
            raise AsmError(f"expected a register, got {text!r}")
        return int(match.group(1))

    def _is_reg(self, text: str) -> bool:
        return _REG.match(text.strip()) is not None

    def _value(self, text: str) -> int:
        return evaluate(text, self.equs)

    def _alu(self, mnemonic: str, ops: list[str]) -> Insn:
        base, width = mnemonic[:-2], mnemonic[-2:]
        if width not in ("32", "64") or base not in _ALU_OPS or len(ops) != 2:
            raise AsmError("unknown instruction or wrong operand count")
        cls = _CLASS_ALU64 if width == "64" else _CLASS_ALU32
        dst = self._reg(ops[0])
        if self._is_reg(ops[1]):
            return Insn(cls | _ALU_OPS[base] | _SRC_REG, dst, self._reg(ops[1]))
        imm = self._value(ops[1])
        if width == "64" and not -(1 << 31) <= imm < (1 << 31):
            raise AsmError(f"64-bit immediate {imm} is sign-extended from 32 bits; use lddw")
        return Insn(cls | _ALU_OPS[base], dst, imm=imm)

    def _lddw(self, ops: list[str]) -> list[Insn]:
        if len(ops) != 2:
            raise AsmError("lddw takes a register and a 64-bit value")
        value = self._value(ops[1]) & 0xFFFFFFFFFFFFFFFF
        low, high = value & 0xFFFFFFFF, value >> 32
        return [Insn(_OP_LDDW, self._reg(ops[0]), imm=low), Insn(0, imm=high)]

    def _mem_operand(self, text: str) -> tuple[int, int]:
        match = _MEM.match(text.strip())
        if match is None:
            raise AsmError(f"expected [reg+offset], got {text!r}")
        off = self._value(match.group(3)) if match.group(3) else 0
        off = -off if match.group(2) == "-" else off
        if not -(1 << 15) <= off < (1 << 15):
            raise AsmError(f"offset {off} does not fit in 16 bits")
        return int(match.group(1)[1:]), off

    def _memory(self, mnemonic: str, ops: list[str]) -> Insn:
        for prefix, cls in (("ldx", _CLASS_LDX), ("stx", _CLASS_STX), ("st", _CLASS_ST)):
            if mnemonic.startswith(prefix) and mnemonic[len(prefix) :] in _SIZES:
                opc = cls | _MODE_MEM | _SIZES[mnemonic[len(prefix) :]]
                return self._memory_insn(cls, opc, ops)
        raise AsmError("unknown memory instruction")

    def _memory_insn(self, cls: int, opc: int, ops: list[str]) -> Insn:
        if len(ops) != 2:
            raise AsmError("memory instructions take two operands")
        if cls == _CLASS_LDX:
            src, off = self._mem_operand(ops[1])
            return Insn(opc, self._reg(ops[0]), src, off)
        dst, off = self._mem_operand(ops[0])
        if cls == _CLASS_STX:
            return Insn(opc, dst, self._reg(ops[1]), off)
        return Insn(opc, dst, off=off, imm=self._value(ops[1]))

    def _jump_off(self, label: str, pc: int) -> int:
        if label not in self.labels:
            raise AsmError(f"unknown label {label!r}")
        off = self.labels[label] - (pc + 1)
        if not -(1 << 15) <= off < (1 << 15):
            raise AsmError(f"jump to {label!r} is too far")
        return off

    def _jump(self, mnemonic: str, ops: list[str], pc: int) -> Insn:
        if len(ops) != 3:
            raise AsmError("conditional jumps take: reg, reg|imm, label")
        dst, off = self._reg(ops[0]), self._jump_off(ops[2], pc)
        if self._is_reg(ops[1]):
            return Insn(_CLASS_JMP | _JMP_OPS[mnemonic] | _SRC_REG, dst, self._reg(ops[1]), off)
        return Insn(_CLASS_JMP | _JMP_OPS[mnemonic], dst, off=off, imm=self._value(ops[1]))

    def _call(self, ops: list[str], pc: int) -> Insn:
        if len(ops) != 1:
            raise AsmError("call takes one name")
        name = ops[0]
        if name in self.labels:
            # SBPF v3 internal call: src=1, target = pc + 1 + imm.
            return Insn(_OP_CALL, src=1, imm=self.labels[name] - (pc + 1))
        if name not in KNOWN_SYSCALLS:
            raise AsmError(f"unknown syscall or label {name!r}")
        return Insn(_OP_CALL, src=0, imm=murmur3_32(name.encode()))


def assemble(source: str) -> Program:
    """Assemble sBPF source text into bytecode (two passes: labels, then encoding)."""
    parser = _Parser()
    for number, raw in enumerate(source.splitlines(), start=1):
        parser.feed(number, raw)
    if parser.entry not in parser.labels:
        raise AsmError(f"entry label {parser.entry!r} is not defined")
    encoder = _Encoder(parser)
    code = b"".join(insn.encode() for line in parser.lines for insn in encoder.encode(line))
    if not code:
        raise AsmError("empty program")
    return Program(code, parser.labels[parser.entry], dict(parser.labels), dict(parser.equs))


def link_elf(program: Program) -> bytes:
    """Wrap bytecode in a minimal SBPF v3 ELF (file header + one PT_LOAD, no sections)."""
    ehdr_size, phdr_size = 64, 56
    offset = ehdr_size + phdr_size
    entry = BYTECODE_VADDR + program.entry_pc * INSN_SIZE
    ident = b"\x7fELF" + bytes([2, 1, 1, 0, 0]) + bytes(7)
    ehdr = ident + struct.pack(
        "<HHIQQQIHHHHHH",
        3,  # ET_DYN
        EM_BPF,
        1,  # EV_CURRENT
        entry,
        ehdr_size,  # e_phoff: program headers follow the file header
        0,  # e_shoff: no section headers
        SBPF_VERSION,  # e_flags carries the SBPF version
        ehdr_size,
        phdr_size,
        1,  # e_phnum
        64,  # e_shentsize (standard size even with zero sections)
        0,
        0,
    )
    size = len(program.bytecode)
    phdr = struct.pack(
        "<IIQQQQQQ", 1, 0x1, offset, BYTECODE_VADDR, BYTECODE_VADDR, size, size, INSN_SIZE
    )
    return ehdr + phdr + program.bytecode


def build(source_path: Path) -> bytes:
    """Assemble and link one source file into ELF bytes."""
    return link_elf(assemble(source_path.read_text(encoding="utf-8")))


def main(argv: list[str] | None = None) -> None:
    """CLI: ``python -m chains.htlc.solana.sbpf_asm SOURCE -o OUT.so``."""
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    cli.add_argument("source", type=Path)
    cli.add_argument("-o", "--output", type=Path, required=True)
    args = cli.parse_args(argv)
    args.output.write_bytes(build(args.source))


if __name__ == "__main__":
    main()
