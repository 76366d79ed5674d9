"""The operator's encrypted keystore: one BIP-39 seed in an Ethereum keystore v3 envelope.

Layout of the keystore directory (``deployment.operator.keystore``)::

    operator-seed.json   the 64-byte BIP-39 seed, encrypted (mode 0600)

The one seed serves both curves: secp256k1 keys derive from it by BIP-32 and ed25519
keys (Solana, DIDs) by SLIP-10, so the "Solana seed" is the same envelope. The
mnemonic itself is never stored; it is shown once by ``keys init``.

Envelope: Web3 Secret Storage (keystore v3) with scrypt (n >= 2^18, r=8, p=1, 32-byte
salt), AES-128-CTR and the Keccak-256 MAC over ``derived_key[16:32] + ciphertext``.
``eth_keyfile.decode_keyfile_json`` (the Ethereum reference decoder) opens it, which
the tests check. A ``covenant`` object carries public metadata only.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import unicodedata
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from eth_keyfile.keyfile import decode_keyfile_json
from eth_utils.crypto import keccak

from config.errors import KeystoreError, WalletError
from wallets._files import write_file
from wallets._secrets import Secret, _reveal

log = logging.getLogger(__name__)

DEFAULT_SCRYPT_N = 2**18
SCRYPT_R = 8
SCRYPT_P = 1
SEED_FILE = "operator-seed.json"
SEED_BYTES = 64


class Keystore:
    """The encrypted seed file in one keystore directory.

    `scrypt_n` is the cost used for new files and the minimum accepted when opening
    one. Production code keeps the default (2^18); only tests pass a lower value.
    """

    def __init__(self, directory: str | Path, *, scrypt_n: int = DEFAULT_SCRYPT_N) -> None:
        if scrypt_n < 2 or scrypt_n & (scrypt_n - 1):
            raise WalletError(f"scrypt_n {scrypt_n} must be a power of two")
        self.directory = Path(directory)
        self.scrypt_n = scrypt_n

    @property
    def seed_file(self) -> Path:
        """Path of the encrypted seed."""
        return self.directory / SEED_FILE

    def exists(self) -> bool:
        """Whether the seed file exists."""
        return self.seed_file.exists()

    def create(self, seed: Secret, passphrase: str, *, metadata: dict[str, Any]) -> Path:
        """Encrypt `seed` into a new seed file; refuses to replace an existing one."""
        if len(seed) != SEED_BYTES:
            raise WalletError(f"a BIP-39 seed has {SEED_BYTES} bytes, got {len(seed)}")
        if len(passphrase) < 8:
            raise KeystoreError(
                "the passphrase must have at least 8 characters; choose a longer one"
            )
        if self.exists():
            raise KeystoreError(
                f"keystore {self.seed_file} already exists; move it away first if you "
                "really mean to replace the operator seed"
            )
        envelope = _encrypt(_reveal(seed), passphrase, self.scrypt_n)
        envelope["covenant"] = {"kind": "bip39-seed", **metadata}
        write_file(self.seed_file, json.dumps(envelope, indent=2).encode(), overwrite=False)
        log.info(
            "wrote the encrypted operator seed to %s (scrypt n=%d)", self.seed_file, self.scrypt_n
        )
        return self.seed_file

    def metadata(self) -> dict[str, Any]:
        """The public ``covenant`` metadata of the seed file (no passphrase needed)."""
        value = self._load().get("covenant", {})
        return value if isinstance(value, dict) else {}

    def open(self, passphrase: str) -> Secret:
        """Decrypt the seed. Never writes anything."""
        envelope = self._load()
        _check_envelope(self.seed_file, envelope, self.scrypt_n)
        try:
            plaintext = decode_keyfile_json(envelope, _passphrase_bytes(passphrase))
        except ValueError as exc:
            if "MAC mismatch" not in str(exc):
                raise KeystoreError(f"keystore {self.seed_file} is corrupt: {exc}") from exc
            raise KeystoreError(
                f"cannot decrypt {self.seed_file}: the passphrase is wrong or the file was "
                "modified (MAC check failed); nothing was changed. Check COVENANT_PASSPHRASE "
                "or --passphrase-file"
            ) from None
        if len(plaintext) != SEED_BYTES:
            raise KeystoreError(f"keystore {self.seed_file} does not hold a {SEED_BYTES}-byte seed")
        log.debug("opened keystore %s", self.seed_file)
        return Secret(plaintext)

    def _load(self) -> dict[str, Any]:
        path = self.seed_file
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeystoreError(
                f"no keystore at {path}; create one with `keys init` or `keys import`"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise KeystoreError(f"cannot read keystore {path}: {exc}") from exc
        if stat.S_IMODE(mode) & 0o077:
            raise KeystoreError(
                f"keystore {path} is readable by other users (mode {stat.S_IMODE(mode):o}); "
                f"run `chmod 600 {path}` and check who could have copied it"
            )
        try:
            envelope = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KeystoreError(
                f"keystore {path} is not valid JSON (truncated or edited?) at line "
                f"{exc.lineno}: {exc.msg}; restore it from a backup or run `keys import`"
            ) from exc
        if not isinstance(envelope, dict):
            raise KeystoreError(f"keystore {path} is not a JSON object; restore it from a backup")
        return envelope


def _passphrase_bytes(passphrase: str) -> bytes:
    # NFKC so the same passphrase typed on another keyboard or OS opens the file.
    return unicodedata.normalize("NFKC", passphrase).encode("utf-8")


def _encrypt(plaintext: bytes, passphrase: str, scrypt_n: int) -> dict[str, Any]:
    salt, iv = os.urandom(32), os.urandom(16)
    derived = Scrypt(salt=salt, length=32, n=scrypt_n, r=SCRYPT_R, p=SCRYPT_P).derive(
        _passphrase_bytes(passphrase)
    )
    encryptor = Cipher(algorithms.AES(derived[:16]), modes.CTR(iv)).encryptor()
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    kdfparams = {"dklen": 32, "n": scrypt_n, "r": SCRYPT_R, "p": SCRYPT_P, "salt": salt.hex()}
    return {
        "version": 3,
        "id": str(uuid.uuid4()),
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": {"iv": iv.hex()},
            "ciphertext": ciphertext.hex(),
            "kdf": "scrypt",
            "kdfparams": kdfparams,
            "mac": keccak(derived[16:32] + ciphertext).hex(),
        },
    }


_EXPECTED = {
    ("version",): 3,
    ("crypto", "cipher"): "aes-128-ctr",
    ("crypto", "kdf"): "scrypt",
    ("crypto", "kdfparams", "dklen"): 32,
    ("crypto", "kdfparams", "r"): SCRYPT_R,
    ("crypto", "kdfparams", "p"): SCRYPT_P,
}
_HEX_FIELDS = {
    ("crypto", "cipherparams", "iv"): 16,
    ("crypto", "ciphertext"): SEED_BYTES,
    ("crypto", "mac"): 32,
    ("crypto", "kdfparams", "salt"): None,
}


def _check_envelope(path: Path, envelope: dict[str, Any], min_n: int) -> None:
    """Reject a malformed or weakened envelope before spending scrypt time on it."""
    for at, expected in _EXPECTED.items():
        if _field(path, envelope, at) != expected:
            raise KeystoreError(
                f"keystore {path}: field {'.'.join(at)} is {_field(path, envelope, at)!r}, "
                f"expected {expected!r}; the file was edited or is not a Covenant keystore"
            )
    for at, size in _HEX_FIELDS.items():
        _check_hex(path, at, _field(path, envelope, at), size)
    n = _field(path, envelope, ("crypto", "kdfparams", "n"))
    if not isinstance(n, int) or n < min_n or n & (n - 1):
        raise KeystoreError(
            f"keystore {path}: scrypt n={n!r} is below the required {min_n} or not a power "
            "of two; the file was edited or weakened. Restore it from a backup"
        )


def _field(path: Path, envelope: dict[str, Any], at: tuple[str, ...]) -> Any:
    value: Any = envelope
    for key in at:
        if not isinstance(value, dict) or key not in value:
            raise KeystoreError(
                f"keystore {path} lacks field {'.'.join(at)} (truncated or edited?); "
                "restore it from a backup or run `keys import`"
            )
        value = value[key]
    return value


def _check_hex(path: Path, at: tuple[str, ...], value: Any, size: int | None) -> None:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None or (size is not None and len(raw) != size) or len(raw) < 16:
        raise KeystoreError(
            f"keystore {path}: field {'.'.join(at)} is not {size or 'at least 16'} bytes of "
            "hex (truncated or edited?); restore it from a backup or run `keys import`"
        )
