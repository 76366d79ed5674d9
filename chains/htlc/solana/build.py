"""Build the Solana HTLC program: ``htlc.s`` -> ``htlc.so`` and ``htlc_idl.json``.

Run ``python -m chains.htlc.solana.build`` to rebuild, ``--check`` to verify that the
committed ELF and IDL are exactly what the source produces (CI runs the same check
through the tests). The build is deterministic: the assembler output depends only on
the source text, and the IDL is serialized with sorted, fixed formatting.

Before writing anything the build checks that the constants in the assembly source
agree with the Python client (discriminators, error codes, escrow size), so the two
cannot drift apart.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chains.families.solana import htlc_client as client
from chains.htlc.solana.sbpf_asm import AsmError, Program, assemble, link_elf

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "htlc.s"
ELF_PATH = HERE / "htlc.so"
IDL_PATH = HERE / "htlc_idl.json"
PROGRAM_NAME = "covenant_htlc"
PROGRAM_VERSION = "0.1.0"


def _le_u64(data: bytes) -> int:
    return int.from_bytes(data, "little")


def _expected_constants() -> dict[str, int]:
    expected = {
        "DISC_LOCK": _le_u64(client.LOCK_DISCRIMINATOR),
        "DISC_CLAIM": _le_u64(client.CLAIM_DISCRIMINATOR),
        "DISC_REFUND": _le_u64(client.REFUND_DISCRIMINATOR),
        "DISC_ESCROW": _le_u64(client.ESCROW_DISCRIMINATOR),
        "DISC_EVENT_CLAIMED": _le_u64(client.CLAIMED_EVENT_DISCRIMINATOR),
        "ESCROW_LEN": client.ESCROW_LEN,
        "PREIMAGE_LEN": client.PREIMAGE_LEN,
    }
    expected.update({f"E_{err.name}": int(err) for err in client.HtlcProgramError})
    expected.update({f"STATE_{state.name}": int(state) for state in client.EscrowState})
    return expected


def check_constants(program: Program) -> None:
    """Raise :class:`AsmError` if the source's constants disagree with the client."""
    wrong = {
        name: (program.constants.get(name), value)
        for name, value in _expected_constants().items()
        if program.constants.get(name) != value
    }
    if wrong:
        raise AsmError(f"htlc.s constants disagree with solana_client (have, want): {wrong}")


def _account(name: str, *, writable: bool = False, signer: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if writable:
        meta["writable"] = True
    if signer:
        meta["signer"] = True
    return meta


def _instructions() -> list[dict[str, Any]]:
    hash_type = {"array": ["u8", client.HASH_LEN]}
    return [
        {
            "name": "lock",
            "discriminator": list(client.LOCK_DISCRIMINATOR),
            "accounts": [
                _account("sender", writable=True, signer=True),
                _account("escrow", writable=True, signer=True),
                _account("recipient"),
            ],
            "args": [
                {"name": "hashlock", "type": hash_type},
                {"name": "deadline", "type": "i64"},
                {"name": "amount", "type": "u64"},
            ],
        },
        {
            "name": "claim",
            "discriminator": list(client.CLAIM_DISCRIMINATOR),
            "accounts": [_account("escrow", writable=True), _account("recipient", writable=True)],
            "args": [{"name": "preimage", "type": "bytes"}],
        },
        {
            "name": "refund",
            "discriminator": list(client.REFUND_DISCRIMINATOR),
            "accounts": [_account("escrow", writable=True), _account("sender", writable=True)],
            "args": [],
        },
    ]


def _types() -> list[dict[str, Any]]:
    hash_type = {"array": ["u8", client.HASH_LEN]}
    escrow_fields = [
        {"name": "state", "type": "u8"},
        {"name": "padding", "type": {"array": ["u8", 7]}},
        {"name": "sender", "type": "pubkey"},
        {"name": "recipient", "type": "pubkey"},
        {"name": "hashlock", "type": hash_type},
        {"name": "deadline", "type": "i64"},
        {"name": "amount", "type": "u64"},
    ]
    claimed_fields = [
        {"name": "escrow", "type": "pubkey"},
        {"name": "preimage", "type": {"array": ["u8", client.PREIMAGE_LEN]}},
    ]
    return [
        {"name": "Claimed", "type": {"kind": "struct", "fields": claimed_fields}},
        {"name": "Escrow", "type": {"kind": "struct", "fields": escrow_fields}},
    ]


def build_idl(program_id: str) -> dict[str, Any]:
    """The Anchor (spec 0.1.0) IDL describing the program's wire format."""
    return {
        "address": program_id,
        "metadata": {
            "name": PROGRAM_NAME,
            "version": PROGRAM_VERSION,
            "spec": "0.1.0",
            "description": "Covenant hash-time-locked escrow for SOL (sBPF assembly)",
        },
        "instructions": _instructions(),
        "accounts": [{"name": "Escrow", "discriminator": list(client.ESCROW_DISCRIMINATOR)}],
        "events": [{"name": "Claimed", "discriminator": list(client.CLAIMED_EVENT_DISCRIMINATOR)}],
        "errors": [
            {"code": int(err), "name": err.idl_name, "msg": err.message}
            for err in client.HtlcProgramError
        ],
        "types": _types(),
    }


def render_idl(program_id: str) -> str:
    """Deterministic JSON text of the IDL."""
    return json.dumps(build_idl(program_id), indent=2) + "\n"


def build_elf(source: Path = SOURCE) -> bytes:
    """Assemble, check constants against the client, and link the program ELF."""
    program = assemble(source.read_text(encoding="utf-8"))
    check_constants(program)
    return link_elf(program)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    cli = argparse.ArgumentParser(description="Build the Covenant Solana HTLC program.")
    cli.add_argument("--check", action="store_true", help="verify committed outputs only")
    args = cli.parse_args(argv)
    outputs = {ELF_PATH: build_elf(), IDL_PATH: render_idl(str(client.LOCAL_PROGRAM_ID)).encode()}
    if args.check:
        stale = [path.name for path, data in outputs.items() if not _matches(path, data)]
        if stale:
            print(f"stale build outputs: {stale}; run python -m chains.htlc.solana.build")
            return 1
        return 0
    for path, data in outputs.items():
        path.write_bytes(data)
    return 0


def _matches(path: Path, data: bytes) -> bool:
    return path.exists() and path.read_bytes() == data


if __name__ == "__main__":
    sys.exit(main())
