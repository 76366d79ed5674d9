"""`devnet up | down | status`: local chain processes for a deployment's `rpc: local` chains.

Each local EVM chain gets its own anvil (its own chain id and port, state saved to the
deployment's data dir every second so a `devnet up` after `devnet down` continues the
chain); local Solana chains get one LiteSVM JSON-RPC server process each. The processes
outlive the CLI and the daemon; ``<data_dir>/devnet/devnet.json`` records their URLs and
PIDs so the runtime (:func:`local_url`) and `devnet down` find them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from chains.devnet._fund import fund_url, local_tokens
from chains.devnet.processes import free_port
from chains.families import family_of_chain, family_of_node
from config.chain_model import ChainModel
from config.errors import ChainError
from config.models import Deployment

STATE_FILE = "devnet.json"


class LocalNode(BaseModel):
    """One running local chain process."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain: str
    kind: str = Field(description="The local node's kind; its family says which.")
    url: str
    pid: int
    port: int


class DevnetState(BaseModel):
    """What `devnet up` started, by chain name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    nodes: dict[str, LocalNode] = {}


def devnet_dir(data_dir: str | Path) -> Path:
    """Where the devnet's state file, chain state and logs live."""
    return Path(data_dir) / "devnet"


def read_state(data_dir: str | Path) -> DevnetState:
    """The recorded devnet (empty if none was started)."""
    path = devnet_dir(data_dir) / STATE_FILE
    if not path.exists():
        return DevnetState()
    try:
        return DevnetState.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ChainError(
            f"{path} is not a devnet state file ({exc}); delete it and run `devnet up` again"
        ) from exc


def _write_state(data_dir: str | Path, state: DevnetState) -> None:
    path = devnet_dir(data_dir) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state.model_dump(), indent=2), encoding="utf-8")
    temporary.replace(path)


def local_chains(deployment: Deployment) -> list[ChainModel]:
    """The deployment's chains with `rpc: local`."""
    return [chain for chain in deployment.chains if chain.rpc == "local"]


def is_running(node: LocalNode) -> bool:
    """Whether `node`'s process is alive, is the process we started, and listens."""
    family = family_of_node(node.kind)
    if family is None:
        return False  # a node kind no registered family starts
    marker = family.node_marker()
    try:
        cmdline = Path(f"/proc/{node.pid}/cmdline").read_bytes()
    except OSError:
        return False
    if marker not in cmdline:
        return False  # the PID was reused by an unrelated process
    try:
        with socket.create_connection(("127.0.0.1", node.port), timeout=0.5):
            return True
    except OSError:
        return False


def local_url(chain: ChainModel, data_dir: str | Path) -> str | None:
    """The URL of `chain`'s running devnet node, or None if none is running."""
    node = read_state(data_dir).nodes.get(chain.name)
    return node.url if node is not None and is_running(node) else None


async def up(deployment: Deployment, *, fund: Sequence[str] = ()) -> DevnetState:
    """Start a node for every local chain not already running; fund `fund` on each."""
    data_dir = _data_dir(deployment)
    known = read_state(data_dir).nodes
    nodes = {name: node for name, node in known.items() if is_running(node)}
    for chain in local_chains(deployment):
        if chain.name not in nodes:
            nodes[chain.name] = _start(chain, devnet_dir(data_dir))
            _write_state(data_dir, DevnetState(nodes=nodes))
    state = DevnetState(nodes=nodes)
    _write_state(data_dir, state)
    for chain in local_chains(deployment):
        family, url = family_of_chain(chain), nodes[chain.name].url
        if chain.htlc == "local":
            await family.install_escrow(url)
        tokens = local_tokens(deployment, chain)
        for token in tokens:
            await family.install_local_token(url, token)
        await fund_url(chain, url, fund, tokens)
    from chains.devnet.prices import install_prices  # it imports this module

    await install_prices(deployment)
    return state


def _start(chain: ChainModel, directory: Path) -> LocalNode:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    family = family_of_chain(chain)
    process = family.start_node(chain, port, directory, directory / f"{chain.name}.log")
    return LocalNode(
        chain=chain.name,
        kind=family.devnet_kind,
        url=f"http://127.0.0.1:{port}",
        pid=process.pid,
        port=port,
    )


def down(deployment: Deployment, *, timeout: float = 10) -> list[str]:
    """Stop every recorded node (SIGTERM, then SIGKILL); returns the chains stopped."""
    data_dir = _data_dir(deployment)
    stopped = []
    for name, node in read_state(data_dir).nodes.items():
        if is_running(node):
            _stop(node.pid, timeout)
            stopped.append(name)
    (devnet_dir(data_dir) / STATE_FILE).unlink(missing_ok=True)
    return stopped


def _stop(pid: int, timeout: float) -> None:
    # anvil writes its --state file on SIGTERM, so the chain survives the restart.
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True


def status(deployment: Deployment) -> list[tuple[str, LocalNode | None, bool]]:
    """(chain, recorded node or None, running) for every local chain."""
    nodes = read_state(_data_dir(deployment)).nodes
    rows: list[tuple[str, LocalNode | None, bool]] = []
    for chain in local_chains(deployment):
        node = nodes.get(chain.name)
        rows.append((chain.name, node, node is not None and is_running(node)))
    return rows


def _data_dir(deployment: Deployment) -> Path:
    if deployment.data_dir is None:
        raise ChainError("the deployment has no data_dir; load it with config.load_deployment")
    return Path(deployment.data_dir)
