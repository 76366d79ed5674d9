"""Where the keystore passphrase comes from: never from YAML.

Order: an explicit ``--passphrase-file``, then the environment variable
``COVENANT_PASSPHRASE``, then (for an all-local demo deployment only) the generated demo
passphrase file in the data dir, then an interactive prompt when stdin is a terminal.
"""

from __future__ import annotations

import getpass
import os
import stat
import sys
from pathlib import Path

from config.errors import KeystoreError
from config.models import Deployment

ENV_VAR = "COVENANT_PASSPHRASE"
DEMO_PASSPHRASE_FILE = "demo-passphrase"  # noqa: S105 (a file name, not a secret)


def is_all_local(deployment: Deployment) -> bool:
    """Whether every chain of the deployment is a local devnet (`rpc: local`)."""
    return all(chain.rpc == "local" for chain in deployment.chains)


def demo_passphrase_file(deployment: Deployment) -> Path:
    """Where a demo deployment keeps its generated passphrase."""
    return Path(_data_dir(deployment)) / DEMO_PASSPHRASE_FILE


def read_passphrase_file(path: Path) -> str:
    """The first line of `path`; the file must not be readable by other users."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeystoreError(f"cannot read passphrase file {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise KeystoreError(
            f"passphrase file {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`"
        )
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise KeystoreError(
            f"passphrase file {path} is empty; write the passphrase on its first line"
        )
    return lines[0]


def resolve_passphrase(
    deployment: Deployment, passphrase_file: Path | None = None, *, confirm: bool = False
) -> str:
    """The keystore passphrase from the first source that has one."""
    if passphrase_file is not None:
        return read_passphrase_file(passphrase_file)
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return from_env
    demo_file = demo_passphrase_file(deployment)
    if is_all_local(deployment) and demo_file.exists():
        return read_passphrase_file(demo_file)
    if sys.stdin.isatty():
        return _prompt(confirm=confirm)
    raise KeystoreError(
        f"no keystore passphrase: set {ENV_VAR}, pass --passphrase-file, or run in a terminal"
    )


def _prompt(*, confirm: bool) -> str:
    first = getpass.getpass("Keystore passphrase: ")
    if confirm and getpass.getpass("Repeat the passphrase: ") != first:
        raise KeystoreError("the two passphrases differ; nothing was written")
    return first


def _data_dir(deployment: Deployment) -> str:
    if deployment.data_dir is None:
        raise KeystoreError("the deployment has no data_dir; load it with config.load_deployment")
    return deployment.data_dir
