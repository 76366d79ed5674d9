"""No key material in any log line or any file: run the whole wallet suite at DEBUG in a
subprocess, then scan its log, its output and every file it wrote for the seed, every
derived private key, HTLC preimages and the mnemonic, as hex, base58, base64 and words.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bip_utils import Base58Encoder

from config.errors import KeystoreError
from wallets._secrets import Secret, _reveal
from wallets.hd import derive_agent_keys, derive_operator_did_key, ed25519_public_key
from wallets.keystore import Keystore
from wallets.operator import AgentWallet

from .conftest import PASSPHRASE, TEST_MNEMONIC

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PLAN_IDS = ("plan-1", "plan-2")  # the plan ids the suite derives preimages for


def _base64_cores(secret: bytes) -> set[str]:
    """The base64 characters fixed by `secret` alone, at each of the 3 byte alignments,
    so the secret is found inside a longer base64 blob too."""
    cores = set()
    for shift in range(3):
        start, end = -(-shift * 8 // 6), (shift + len(secret)) * 8 // 6
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            cores.add(encode(b"\0" * shift + secret).decode()[start:end])
    return cores


def encodings(secret: bytes) -> set[str]:
    """Every textual form of `secret` the scan looks for."""
    forms = {secret.hex(), secret.hex().upper(), Base58Encoder.Encode(secret)}
    return forms | _base64_cores(secret)


def find_leaks(
    texts: dict[str, str], blobs: dict[str, bytes], secrets: dict[str, bytes], phrases: list[str]
) -> list[str]:
    """Where any secret appears (by name), as text forms in `texts` or raw bytes in `blobs`."""
    leaks = []
    for name, secret in secrets.items():
        forms = encodings(secret)
        leaks += [
            f"{name} in {where}" for where, text in texts.items() if any(f in text for f in forms)
        ]
        leaks += [f"{name} (raw) in {where}" for where, blob in blobs.items() if secret in blob]
    for phrase in phrases:
        words = phrase.split()
        windows = {" ".join(words[i : i + 5]) for i in range(len(words) - 4)}
        leaks += [
            f"mnemonic in {where}"
            for where, text in texts.items()
            if any(w in " ".join(text.split()) for w in windows)
        ]
    return leaks


def _seeds(root: Path) -> list[Secret]:
    seeds = []
    for seed_file in root.rglob("operator-seed.json"):
        demo = seed_file.parent.parent / "demo-passphrase"
        candidates = [PASSPHRASE] + ([demo.read_text().splitlines()[0]] if demo.exists() else [])
        for passphrase in candidates:
            try:
                seeds.append(Keystore(seed_file.parent, scrypt_n=2).open(passphrase))
                break
            except KeystoreError:  # written with another test's passphrase: try the next
                continue
    return seeds


def _secrets_of(seed: Secret, label: str) -> dict[str, bytes]:
    found = {
        f"{label} seed": _reveal(seed),
        f"{label} operator DID key": _reveal(derive_operator_did_key(seed)),
    }
    for index in range(4):
        keys = derive_agent_keys(seed, index)
        solana = _reveal(keys.solana)
        found |= {
            f"{label} agent {index} EVM key": _reveal(keys.evm),
            f"{label} agent {index} Solana key": solana,
            f"{label} agent {index} Solana keypair": solana + ed25519_public_key(keys.solana),
            f"{label} agent {index} DID key": _reveal(keys.did),
            f"{label} agent {index} preimage key": _reveal(keys.preimage),
        }
        wallet = AgentWallet(f"agent{index}", keys)
        found |= {
            f"{label} agent {index} preimage {plan}": wallet.derive_preimage(plan)
            for plan in PLAN_IDS
        }
    return found


def test_the_scanner_finds_planted_secrets() -> None:
    secret = bytes(range(1, 33))
    for form in encodings(secret):
        assert find_leaks({"log": f"x {form} y"}, {}, {"s": secret}, [])
    inside = base64.b64encode(b"header." + secret + b".trailer").decode()
    assert find_leaks({"jws": inside}, {}, {"s": secret}, [])
    assert find_leaks({}, {"db": b"\x00" + secret}, {"s": secret}, [])
    assert find_leaks({"log": "a b " + TEST_MNEMONIC}, {}, {}, [TEST_MNEMONIC])
    assert not find_leaks(
        {"log": "nothing here"}, {"db": b"nothing"}, {"s": secret}, [TEST_MNEMONIC]
    )


@pytest.mark.slow
def test_no_secret_in_any_log_line_or_written_file(tmp_path: Path) -> None:
    basetemp, log_file = tmp_path / "suite", tmp_path / "suite.log"
    env = {key: value for key, value in os.environ.items() if key != "COVENANT_PASSPHRASE"}
    command = [
        sys.executable, "-m", "pytest", str(HERE), "-q", "-x", "-p", "no:cacheprovider",
        "-k", "not secret_scan", f"--basetemp={basetemp}", f"--log-file={log_file}",
        "--log-file-level=DEBUG", "--log-level=DEBUG",
    ]  # fmt: skip
    run = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900, check=False
    )
    assert run.returncode == 0, run.stdout[-4000:]
    log_text = log_file.read_text(encoding="utf-8")
    assert "derived the keys of agent index" in log_text  # DEBUG lines of wallets were captured
    texts = {"log file": log_text, "pytest output": run.stdout + run.stderr}
    blobs = {}
    for path in basetemp.rglob("*"):
        # `mnemonic` is the operator's own input file that `keys import` reads, not ours.
        if path.is_file() and path.name != "mnemonic":
            blobs[str(path)] = path.read_bytes()
            texts[str(path)] = blobs[str(path)].decode("utf-8", errors="replace")
    seeds = _seeds(basetemp)
    assert len(seeds) >= 5, "the scan must know the seeds of the keystores the suite wrote"
    secrets: dict[str, bytes] = {}
    for number, seed in enumerate(seeds):
        secrets |= _secrets_of(seed, f"keystore {number}")
    assert find_leaks(texts, blobs, secrets, [TEST_MNEMONIC]) == []
