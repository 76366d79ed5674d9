"""CLI: ``keys init | import | list`` and ``did show | issue-credential | verify | revoke``.

Every command takes the deployment FILE first. The passphrase comes from
``--passphrase-file``, ``COVENANT_PASSPHRASE`` or a prompt; a mnemonic is read from
``--mnemonic-file`` or a hidden prompt, never from the command line (shell history).
"""

from __future__ import annotations

import getpass
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from pydantic import TypeAdapter
from rich.console import Console
from rich.table import Table

from config.errors import CredentialError, KeystoreError, WalletError
from config.loader import load_deployment
from config.models import Deployment
from config.store import open_store
from config.types import Duration
from wallets._files import write_file
from wallets.credentials import (
    REVOCATIONS_FILE,
    RevocationList,
    _unverified_claims,
    verify_credential,
)
from wallets.hd import generate_mnemonic
from wallets.operator import (
    OperatorWallets,
    authority_from_config,
    create_keystore,
    keystore_for,
    open_wallets,
)
from wallets.passphrase import read_passphrase_file, resolve_passphrase

console = Console(emoji=False, highlight=False)
keys_app = typer.Typer(help="The operator keystore and agent accounts.", no_args_is_help=True)
did_app = typer.Typer(help="Agent DIDs and authority credentials.", no_args_is_help=True)

PassphraseFile = Annotated[
    Path | None,
    typer.Option(help="File whose first line is the keystore passphrase (mode 0600)."),
]


def _open(file: Path, passphrase_file: Path | None) -> tuple[Deployment, OperatorWallets]:
    deployment = load_deployment(file)
    passphrase = resolve_passphrase(deployment, passphrase_file)
    engine = open_store(deployment.store.url or "")
    try:
        return deployment, open_wallets(deployment, engine, passphrase)
    finally:
        engine.dispose()


@keys_app.command("init")
def keys_init(
    file: Path, passphrase_file: PassphraseFile = None, words: Annotated[int, typer.Option()] = 24
) -> None:
    """Create the operator seed from a fresh mnemonic and encrypt it."""
    deployment = load_deployment(file)
    if keystore_for(deployment).exists():
        raise KeystoreError(f"{keystore_for(deployment).seed_file} already exists; nothing changed")
    passphrase = resolve_passphrase(deployment, passphrase_file, confirm=True)
    mnemonic = generate_mnemonic(words)
    did = create_keystore(deployment, mnemonic, passphrase)
    _show_mnemonic_once(mnemonic)
    console.print(f"[green]created {keystore_for(deployment).seed_file}[/]")
    console.print(
        f"operator DID: {did}\nset it as operator.did in {file}, so credentials from any "
        "other issuer are rejected"
    )


def _show_mnemonic_once(mnemonic: str) -> None:
    # Only to a terminal: a mnemonic must never land in a log file or a CI transcript.
    if not sys.stdout.isatty():
        console.print(
            "[yellow]the mnemonic was not shown because output is not a terminal; without it "
            "the keystore file is the only copy of the seed[/]"
        )
        return
    console.print("[bold]Write down this mnemonic now; it is shown once and never stored:[/]")
    console.print(mnemonic, highlight=False)


@keys_app.command("import")
def keys_import(
    file: Path,
    passphrase_file: PassphraseFile = None,
    mnemonic_file: Annotated[
        Path | None, typer.Option(help="File holding the mnemonic (0600).")
    ] = None,
) -> None:
    """Encrypt an existing BIP-39 mnemonic as the operator seed."""
    deployment = load_deployment(file)
    if keystore_for(deployment).exists():
        raise KeystoreError(f"{keystore_for(deployment).seed_file} already exists; nothing changed")
    if mnemonic_file is not None:
        mnemonic = read_passphrase_file(mnemonic_file)
    elif sys.stdin.isatty():
        mnemonic = getpass.getpass("Mnemonic (hidden): ")
    else:
        raise KeystoreError("pass --mnemonic-file or run in a terminal to type the mnemonic")
    passphrase = resolve_passphrase(deployment, passphrase_file, confirm=True)
    did = create_keystore(deployment, mnemonic, passphrase)
    console.print(
        f"[green]imported into {keystore_for(deployment).seed_file}[/]\noperator DID: {did}"
    )


@keys_app.command("list")
def keys_list(file: Path, passphrase_file: PassphraseFile = None) -> None:
    """Addresses of every agent on each of its chains, and its DID."""
    deployment, wallets = _open(file, passphrase_file)
    table = Table(title=f"operator {wallets.did}")
    for column in ("agent", "index", "chain", "address"):
        table.add_column(column, overflow="fold")
    for agent in deployment.agents:
        wallet = wallets.agent(agent.name)
        table.add_row(agent.name, str(wallet.index), "did", wallet.did)
        for chain in agent.chains:
            table.add_row("", "", chain, wallet.address(deployment, chain))
    console.print(table)


@did_app.command("show")
def did_show(file: Path, agent: str, passphrase_file: PassphraseFile = None) -> None:
    """Print AGENT's DID document (did:key plus did:pkh chain accounts) as JSON."""
    deployment, wallets = _open(file, passphrase_file)
    print(json.dumps(wallets.agent(agent).did_document(deployment), indent=2))


@did_app.command("issue-credential")
def did_issue(
    file: Path,
    agent: str,
    passphrase_file: PassphraseFile = None,
    valid_for: Annotated[str, typer.Option(help="Validity, e.g. 30d, 12h.")] = "30d",
    out: Annotated[
        Path | None, typer.Option(help="Default <data_dir>/credentials/AGENT.jwt")
    ] = None,
) -> None:
    """Issue AGENT an AgentAuthorityCredential from its YAML (chains, assets, SpendLimit)."""
    deployment, wallets = _open(file, passphrase_file)
    seconds = TypeAdapter(Duration).validate_python(valid_for)
    token = wallets.issue_credential(
        agent, authority_from_config(deployment, agent), valid_for=timedelta(seconds=float(seconds))
    )
    target = out or Path(deployment.data_dir or ".") / "credentials" / f"{agent}.jwt"
    write_file(target, (token + "\n").encode(), mode=0o644)
    console.print(f"[green]wrote {target}[/] for {wallets.agent(agent).did}")


@did_app.command("verify")
def did_verify(
    file: Path,
    credential: Path,
    agent: Annotated[str | None, typer.Option(help="Also require this agent as subject.")] = None,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Verify a credential FILE: signature, issuer, subject, validity, revocation.

    Needs no passphrase when the deployment sets operator.did and no --agent is given.
    """
    deployment = load_deployment(file)
    token = _read_token(credential)
    issuer, subject = deployment.operator.did, None
    if issuer is None or agent is not None:
        _, wallets = _open(file, passphrase_file)
        issuer, subject = wallets.did, (wallets.agent(agent).did if agent else None)
    revocations = RevocationList.load(
        Path(deployment.data_dir or ".") / REVOCATIONS_FILE, issuer=issuer
    )
    verified = verify_credential(token, issuer=issuer, subject=subject, revocations=revocations)
    console.print(
        f"[green]valid[/] {verified.id}: {verified.subject} "
        f"until {verified.valid_until.isoformat()}"
    )
    print(json.dumps(verified.authority.model_dump(mode="json", by_alias=True), indent=2))


@did_app.command("revoke")
def did_revoke(
    file: Path,
    credential: Annotated[
        Path | None, typer.Argument(help="The credential file to revoke.")
    ] = None,
    credential_id: Annotated[
        str | None, typer.Option("--id", help="Or its id (urn:uuid:...).")
    ] = None,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Add a credential to the operator's signed revocation list."""
    if (credential is None) == (credential_id is None):
        raise WalletError("give either a credential FILE or --id, not both or neither")
    _, wallets = _open(file, passphrase_file)
    target_id = credential_id or _credential_id(_read_token(credential or Path()))
    listed: RevocationList = wallets.revoke(target_id)
    console.print(
        f"[green]revoked[/] {target_id} "
        f"({len(listed.revoked)} revoked in {wallets.revocations_path})"
    )


def _read_token(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CredentialError(
            f"cannot read credential {path}: {exc.strerror}", reason="malformed"
        ) from exc


def _credential_id(token: str) -> str:
    claims = _unverified_claims(token)
    if not isinstance(claims.get("id"), str):
        raise CredentialError("the credential has no id", reason="malformed")
    return str(claims["id"])


def register(app: typer.Typer) -> None:
    """Add the `keys` and `did` command groups to the main CLI."""
    app.add_typer(keys_app, name="keys")
    app.add_typer(did_app, name="did")
