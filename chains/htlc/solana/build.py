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

from spl.token.constants import ACCOUNT_LEN, TOKEN_PROGRAM_ID

from chains.families.solana import htlc_client as client
from chains.families.solana.htlc_token import VAULT_SEED
from chains.htlc.solana.sbpf_asm import AsmError, Program, assemble, link_elf

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "htlc.s"
ELF_PATH = HERE / "htlc.so"
IDL_PATH = HERE / "htlc_idl.json"
PROGRAM_NAME = "covenant_htlc"
PROGRAM_VERSION = "0.2.0"


def _le_u64(data: bytes) -> int:
    return int.from_bytes(data, "little")


def _expected_constants() -> dict[str, int]:
    expected = {
        "DISC_LOCK": _le_u64(client.LOCK_DISCRIMINATOR),
        "DISC_CLAIM": _le_u64(client.CLAIM_DISCRIMINATOR),
        "DISC_REFUND": _le_u64(client.REFUND_DISCRIMINATOR),
        "DISC_ESCROW": _le_u64(client.ESCROW_DISCRIMINATOR),
        "DISC_EVENT_CLAIMED": _le_u64(client.CLAIMED_EVENT_DISCRIMINATOR),
        "DISC_LOCK_TOKEN": _le_u64(client.LOCK_TOKEN_DISCRIMINATOR),
        "DISC_CLAIM_TOKEN": _le_u64(client.CLAIM_TOKEN_DISCRIMINATOR),
        "DISC_REFUND_TOKEN": _le_u64(client.REFUND_TOKEN_DISCRIMINATOR),
        "DISC_TOKEN_ESCROW": _le_u64(client.TOKEN_ESCROW_DISCRIMINATOR),
        "ESCROW_LEN": client.ESCROW_LEN,
        "TOKEN_ESCROW_LEN": client.TOKEN_ESCROW_LEN,
        "PREIMAGE_LEN": client.PREIMAGE_LEN,
        "TOKEN_ACCOUNT_LEN": ACCOUNT_LEN,
        "VAULT_SEED": _le_u64(VAULT_SEED),
        "VAULT_SEED_LEN": len(VAULT_SEED),
    }
    token_program = bytes(TOKEN_PROGRAM_ID)
    expected.update(
        {f"TOKEN_PROGRAM_{i}": _le_u64(token_program[8 * i : 8 * i + 8]) for i in range(4)}
    )
    expected.update({f"E_{err.name}": int(err) for err in client.HtlcProgramError})
    expected.update({f"STATE_{state.name}": int(state) for state in client.EscrowState})
    return expected


# check_token_account in htlc.s returns base, base + 1, base + 2 for these triples.
_ERROR_TRIPLES = (
    ("VAULT_NOT_TOKEN_ACCOUNT", "VAULT_WRONG_MINT", "VAULT_WRONG_OWNER"),
    ("NOT_TOKEN_ACCOUNT", "TOKEN_ACCOUNT_WRONG_MINT", "TOKEN_ACCOUNT_WRONG_OWNER"),
)


def check_constants(program: Program) -> None:
    """Raise :class:`AsmError` if the source's constants disagree with the client."""
    for triple in _ERROR_TRIPLES:
        codes = [int(client.HtlcProgramError[name]) for name in triple]
        if codes != list(range(codes[0], codes[0] + 3)):
            raise AsmError(f"error codes {triple} must be consecutive, are {codes}")
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
        *_token_instructions(),
    ]


def _token_instructions() -> list[dict[str, Any]]:
    hash_type = {"array": ["u8", client.HASH_LEN]}
    token_program = {"name": "token_program", "address": str(TOKEN_PROGRAM_ID)}
    vault_authority = {
        "name": "vault_authority",
        "pda": {
            "seeds": [
                {"kind": "const", "value": list(VAULT_SEED)},
                {"kind": "account", "path": "escrow"},
            ]
        },
    }

    def settle(party_token: str) -> list[dict[str, Any]]:
        return [
            _account("escrow", writable=True),
            _account("vault", writable=True),
            _account(party_token, writable=True),
            vault_authority,
            _account("sender", writable=True),
            token_program,
        ]

    return [
        {
            "name": "lock_token",
            "discriminator": list(client.LOCK_TOKEN_DISCRIMINATOR),
            "accounts": [
                _account("sender", writable=True, signer=True),
                _account("escrow", writable=True, signer=True),
                _account("recipient"),
                _account("mint"),
                _account("sender_token", writable=True),
                _account("vault", writable=True),
                token_program,
            ],
            "args": [
                {"name": "hashlock", "type": hash_type},
                {"name": "deadline", "type": "i64"},
                {"name": "amount", "type": "u64"},
            ],
        },
        {
            "name": "claim_token",
            "discriminator": list(client.CLAIM_TOKEN_DISCRIMINATOR),
            "accounts": settle("recipient_token"),
            "args": [{"name": "preimage", "type": "bytes"}],
        },
        {
            "name": "refund_token",
            "discriminator": list(client.REFUND_TOKEN_DISCRIMINATOR),
            "accounts": settle("sender_token"),
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
    token_fields = [
        escrow_fields[0],
        {"name": "bump", "type": "u8"},
        {"name": "padding", "type": {"array": ["u8", 6]}},
        *escrow_fields[2:],
        {"name": "mint", "type": "pubkey"},
        {"name": "vault", "type": "pubkey"},
    ]
    return [
        {"name": "Claimed", "type": {"kind": "struct", "fields": claimed_fields}},
        {"name": "Escrow", "type": {"kind": "struct", "fields": escrow_fields}},
        {"name": "TokenEscrow", "type": {"kind": "struct", "fields": token_fields}},
    ]


def build_idl(program_id: str) -> dict[str, Any]:
    """The Anchor (spec 0.1.0) IDL describing the program's wire format."""
    return {
        "address": program_id,
        "metadata": {
            "name": PROGRAM_NAME,
            "version": PROGRAM_VERSION,
            "spec": "0.1.0",
            "description": (
                "Covenant hash-time-locked escrow for SOL and SPL tokens (sBPF assembly)"
            ),
        },
        "instructions": _instructions(),
        "accounts": [
            {"name": "Escrow", "discriminator": list(client.ESCROW_DISCRIMINATOR)},
            {"name": "TokenEscrow", "discriminator": list(client.TOKEN_ESCROW_DISCRIMINATOR)},
        ],
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
