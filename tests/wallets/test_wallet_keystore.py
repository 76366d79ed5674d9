"""The encrypted seed file: envelope, permissions, and clear errors that change nothing."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from eth_keyfile.keyfile import decode_keyfile_json

from config.errors import KeystoreError
from wallets._secrets import _reveal
from wallets.hd import seed_from_mnemonic
from wallets.keystore import DEFAULT_SCRYPT_N, Keystore

from .conftest import FAST_N, PASSPHRASE, TEST_MNEMONIC


@pytest.fixture
def keystore(tmp_path: Path) -> Keystore:
    store = Keystore(tmp_path / "keystore", scrypt_n=FAST_N)
    store.create(seed_from_mnemonic(TEST_MNEMONIC), PASSPHRASE, metadata={"operator_did": "x"})
    return store


def _snapshot(path: Path) -> tuple[bytes, int, int]:
    info = path.stat()
    return path.read_bytes(), info.st_mtime_ns, info.st_mode


def test_production_default_cost_is_at_least_2_pow_18(tmp_path: Path) -> None:
    assert DEFAULT_SCRYPT_N >= 2**18
    store = Keystore(tmp_path)
    assert store.scrypt_n == DEFAULT_SCRYPT_N
    store.create(seed_from_mnemonic(TEST_MNEMONIC), PASSPHRASE, metadata={})
    params = json.loads(store.seed_file.read_text())["crypto"]["kdfparams"]
    assert (params["n"], params["r"], params["p"]) == (DEFAULT_SCRYPT_N, 8, 1)


def test_roundtrip_and_file_is_private(keystore: Keystore) -> None:
    seed = keystore.open(PASSPHRASE)
    assert _reveal(seed) == _reveal(seed_from_mnemonic(TEST_MNEMONIC))
    assert stat.S_IMODE(keystore.seed_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(keystore.directory.stat().st_mode) == 0o700
    assert keystore.metadata()["operator_did"] == "x"


def test_envelope_is_a_standard_keystore_v3(keystore: Keystore) -> None:
    envelope = json.loads(keystore.seed_file.read_text())
    assert envelope["version"] == 3
    assert envelope["crypto"]["cipher"] == "aes-128-ctr"
    assert envelope["crypto"]["kdf"] == "scrypt"
    # The Ethereum reference decoder opens it with the same passphrase.
    plain = decode_keyfile_json(envelope, PASSPHRASE.encode())
    assert plain == _reveal(seed_from_mnemonic(TEST_MNEMONIC))


def test_wrong_passphrase_is_clear_and_changes_nothing(keystore: Keystore) -> None:
    before = {path: _snapshot(path) for path in keystore.directory.iterdir()}
    with pytest.raises(KeystoreError) as caught:
        keystore.open("not the passphrase")
    message = str(caught.value)
    assert "passphrase is wrong" in message
    assert str(keystore.seed_file) in message
    assert "nothing was changed" in message
    assert {path: _snapshot(path) for path in keystore.directory.iterdir()} == before


def test_truncated_file_names_the_file(keystore: Keystore) -> None:
    text = keystore.seed_file.read_text()
    keystore.seed_file.write_text(text[: len(text) // 2])
    with pytest.raises(KeystoreError, match="not valid JSON") as caught:
        keystore.open(PASSPHRASE)
    assert str(keystore.seed_file) in str(caught.value)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda e: e["crypto"].pop("mac"), "lacks field crypto.mac"),
        (
            lambda e: e["crypto"].update(ciphertext=e["crypto"]["ciphertext"][:-2]),
            "crypto.ciphertext",
        ),
        (lambda e: e["crypto"].update(cipher="aes-128-cbc"), "crypto.cipher"),
        (lambda e: e["crypto"]["kdfparams"].update(r=1), "crypto.kdfparams.r"),
        (lambda e: e["crypto"]["kdfparams"].update(n=2), "scrypt n=2"),
        (lambda e: e["crypto"].update(mac="zz" * 32), "crypto.mac"),
    ],
)
def test_edited_fields_are_named(keystore: Keystore, edit, expected: str) -> None:
    envelope = json.loads(keystore.seed_file.read_text())
    edit(envelope)
    keystore.seed_file.write_text(json.dumps(envelope))
    with pytest.raises(KeystoreError, match=expected) as caught:
        keystore.open(PASSPHRASE)
    assert str(keystore.seed_file) in str(caught.value)


def test_edited_ciphertext_fails_the_mac(keystore: Keystore) -> None:
    envelope = json.loads(keystore.seed_file.read_text())
    text = envelope["crypto"]["ciphertext"]
    envelope["crypto"]["ciphertext"] = ("1" if text[0] != "1" else "2") + text[1:]
    keystore.seed_file.write_text(json.dumps(envelope))
    with pytest.raises(KeystoreError, match="MAC check failed") as caught:
        keystore.open(PASSPHRASE)
    assert str(keystore.seed_file) in str(caught.value)


def test_weak_file_is_refused_by_a_production_keystore(keystore: Keystore) -> None:
    with pytest.raises(KeystoreError, match="below the required 262144"):
        Keystore(keystore.directory).open(PASSPHRASE)


def test_existing_keystore_is_never_replaced(keystore: Keystore) -> None:
    before = _snapshot(keystore.seed_file)
    with pytest.raises(KeystoreError, match="already exists"):
        keystore.create(seed_from_mnemonic(TEST_MNEMONIC), PASSPHRASE, metadata={})
    assert _snapshot(keystore.seed_file) == before


def test_readable_by_others_is_refused(keystore: Keystore) -> None:
    os.chmod(keystore.seed_file, 0o644)
    with pytest.raises(KeystoreError, match="chmod 600"):
        keystore.open(PASSPHRASE)


def test_missing_keystore_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="keys init"):
        Keystore(tmp_path, scrypt_n=FAST_N).open(PASSPHRASE)


def test_short_passphrase_is_refused(tmp_path: Path) -> None:
    store = Keystore(tmp_path, scrypt_n=FAST_N)
    with pytest.raises(KeystoreError, match="at least 8"):
        store.create(seed_from_mnemonic(TEST_MNEMONIC), "short", metadata={})
    assert not store.exists()
