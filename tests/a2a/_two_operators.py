"""Two operators, two daemons: north's agent alice and south's agent bob, each with its
own keystore, store, data dir and A2A endpoint, swap 1 ETH on a local anvil for 20 SOL
on a local LiteSVM server with each other.

North's `devnet up` runs both chains; south reaches them by URL (its chains are not
`local`: they are another party's network to it). Each deployment trusts the other's
operator, lists the other's agent by DID and card URL, and presents a credential its
own operator issued. Their agents use scripted planners, so what the demo shows is the
deal between the daemons, not a model's choice.

It makes the two-daemon tests' deployments (tests/a2a/), the end-to-end latency
benchmark's (bench/bench_a2a_swap.py) and the two-operator demo's
(scripts/demo_two_operators.py). The mnemonics and the passphrase below are public.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import yaml

from agents.a2a.store import MessageStore
from agents.audit.tables import stored_rows
from chains.atomic.store import PlanRecord, PlanStore
from chains.connect import connect
from chains.devnet import manager as devnet
from chains.families.evm.devnet import LOCAL_EVM_HTLC
from chains.families.solana.htlc_client import LOCAL_PROGRAM_ID
from config.loader import load_deployment
from config.models import Deployment
from config.store import open_store
from wallets.credentials import AgentAuthority
from wallets.operator import create_keystore, open_wallets

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "two operators demo passphrase"
MNEMONICS = {
    "north": "test test test test test test test test test test test junk",
    "south": "abandon abandon abandon abandon abandon abandon abandon abandon abandon "
    "abandon abandon about",
}
AGENT = {"north": "alice", "south": "bob"}
ETH, SOL = Decimal(1), Decimal(20)
"""Alice gives 1 ETH on arb for 20 SOL on sol; bob the mirror image."""


@dataclass
class Side:
    """One operator's deployment, as the demo and the tests see it."""

    name: str
    directory: Path
    port: int
    file: Path = field(init=False)
    agent: str = field(init=False)
    did: str = ""
    operator_did: str = ""
    addresses: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.file = self.directory / f"{self.name}.yaml"
        self.agent = AGENT[self.name]

    @property
    def deployment(self) -> Deployment:
        return load_deployment(self.file)

    def audit(self) -> str:
        """The bodies of its agent's audit entries, one per line."""
        engine = open_store(self.deployment.store.url or "")
        try:
            with engine.connect() as connection:
                return "\n".join(row["body"] for row in stored_rows(connection, self.agent))
        finally:
            engine.dispose()

    def serving(self) -> bool:
        """Whether its daemon serves its agent's card (its A2A endpoint is up)."""
        url = f"http://127.0.0.1:{self.port}/agents/{self.agent}/.well-known/agent-card.json"
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(url, timeout=2).status_code == 200
        return False

    def received(self, kind: str) -> int:
        """How many signed messages of `kind` its agent has taken."""
        engine = open_store(self.deployment.store.url or "")
        try:
            return len(MessageStore(engine).messages(self.agent, kind))
        finally:
            engine.dispose()

    def plans(self) -> list[PlanRecord]:
        engine = open_store(self.deployment.store.url or "")
        try:
            return [p for p in PlanStore(engine).plans() if p.kind in ("maker", "taker")]
        finally:
            engine.dispose()


PUBLIC_MARGINS: dict[str, dict[str, Any]] = {
    "evm": {"inclusion": 10, "finality": 6},
    "solana": {"inclusion": 5, "finality": 20, "halt_allowance": 0},
}


def _chains(
    urls: dict[str, str] | None, *, public_pace: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    arb: dict[str, Any] = {
        "name": "arb",
        "family": "evm",
        "chain_id": 31337,
        "finality": {"confirmations": 0},
        "local": {"fund_agents": "10"},
    }
    sol: dict[str, Any] = {
        "name": "sol",
        "family": "solana",
        "cluster": "localnet",
        "finality": {"commitment": "confirmed"},
        "local": {"fund_agents": "100"},
    }
    if public_pace:  # 2 s blocks and one confirmation (an OP-stack L2), Solana finalized
        arb["finality"] = {"confirmations": 1}
        arb["local"]["block_time"] = 2
        sol["finality"] = {"commitment": "finalized"}
    if urls is None:
        arb |= {"rpc": "local", "htlc": "local"}
        sol |= {"rpc": "local", "htlc": "local"}
    else:
        arb |= {"rpc": urls["arb"], "htlc": LOCAL_EVM_HTLC}
        sol |= {"rpc": urls["sol"], "htlc": str(LOCAL_PROGRAM_ID)}
    return arb, sol


def _swap(side: Side, other: Side) -> dict[str, Any]:
    eth = {"chain": "arb", "asset": "ETH", "amount": str(ETH)}
    sol = {"chain": "sol", "asset": "SOL", "amount": str(SOL)}
    give, take = (eth, sol) if side.name == "north" else (sol, eth)
    return {
        "confidence": "0.95",
        "rationale": f"Swap with {other.agent}.",
        "actions": [{"kind": "swap", "counterparty": other.agent, "give": give, "take": take}],
    }


def write(
    side: Side,
    other: Side | None,
    urls: dict[str, str] | None,
    *,
    plans: list[dict[str, Any]] | None = None,
    idle: int = 5,
    slack: int = 5,
    trusted: list[str] | None = None,
    public_pace: bool = False,
) -> None:
    """`side`'s deployment file; without `other`, a first one to make its keystore.
    Its agent proposes the swap after `idle` idle ticks, unless `plans` says otherwise;
    `slack` is the seconds added to each deadline beyond the margins; `trusted` the
    operator DIDs it trusts (by default `other`'s)."""
    agent: dict[str, Any] = {
        "name": side.agent,
        "schedule": {"every": "3s"},
        "mandate": "Swap ETH for SOL at 20 SOL per ETH with the other operator's agent.",
        "planner": "script",
        "chains": ["arb", "sol"],
    }
    data: dict[str, Any] = {
        "name": side.name,
        "data_dir": str(side.directory / "data"),
        "operator": {"name": f"{side.name}-operator"},
        "chains": list(_chains(urls, public_pace=public_pace)),
        "assets": [
            {"symbol": "ETH", "chain": "arb", "native": True, "decimals": 18, "usd_price": "3000"},
            {"symbol": "SOL", "chain": "sol", "native": True, "decimals": 9, "usd_price": "150"},
        ],
        "atomic": {
            "watcher_interval": 1,
            "slack": slack,
            "evm": {"inclusion": 5, "finality": 2},
            "solana": {"inclusion": 5, "finality": 2, "halt_allowance": 0},
        }
        | (PUBLIC_MARGINS if public_pace else {}),
        "planners": [{"name": "script", "kind": "scripted", "plans": plans or []}],
        "agents": [agent],
    }
    if other is not None:
        data["a2a"] = {
            "listen": f"127.0.0.1:{side.port}",
            "trusted_operators": [other.operator_did] if trusted is None else trusted,
        }
        data["address_book"] = [
            {
                "name": other.agent,
                "did": other.did,
                "card": f"http://127.0.0.1:{other.port}/agents/{other.agent}",
            }
        ]
        if plans is None:
            # Idle ticks first: each daemon is up before the other's agent acts (a swap
            # with an agent whose card cannot be fetched yet is refused).
            wait = {"confidence": "0.9", "rationale": "Wait for the other side.", "actions": []}
            data["planners"][0]["plans"] = [*[wait] * idle, _swap(side, other)]
        agent["counterparties"] = [other.agent]
        agent["credential"] = str(side.directory / "credential.jwt")
        agent["policies"] = [
            {"Allowlist": {"recipients": [other.agent]}},
            {"SpendLimit": {"per_transaction": {"ETH": "1", "SOL": "20"}}},
        ]
    side.file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def make_keys(side: Side) -> None:
    """The side's keystore; its agent's DID and addresses; its agent's credential."""
    write(side, None, None)
    deployment = side.deployment
    side.operator_did = create_keystore(deployment, MNEMONICS[side.name], PASSPHRASE)
    engine = open_store(deployment.store.url or "")
    try:
        wallet = open_wallets(deployment, engine, PASSPHRASE).agent(side.agent)
        side.did = wallet.did
        side.addresses = {c: wallet.address(deployment, c) for c in ("arb", "sol")}
    finally:
        engine.dispose()
    issue(side)


def issue(
    side: Side,
    *,
    valid_for: timedelta = timedelta(days=1),
    per_transaction: dict[str, Decimal] | None = None,
) -> None:
    """Issue the side's agent a credential from its operator (by default for the swap's
    legs, valid a day) and write it where its deployment presents it from."""
    deployment = side.deployment
    engine = open_store(deployment.store.url or "")
    try:
        authority = AgentAuthority(
            agent=side.agent,
            chains=("arb", "sol"),
            assets=("ETH", "SOL"),
            per_transaction=per_transaction or {"ETH": ETH, "SOL": SOL},
        )
        wallets = open_wallets(deployment, engine, PASSPHRASE)
        token = wallets.issue_credential(side.agent, authority, valid_for=valid_for)
        (side.directory / "credential.jwt").write_text(token, encoding="utf-8")
    finally:
        engine.dispose()


def listen_port(block: int = 0, *, besides: int = 0) -> int:
    """A loopback port free now, for a daemon to listen on seconds later. It is drawn
    below the kernel's ephemeral range (32768 up), so no other process binding port 0 in
    the meantime (an anvil of a case running alongside) can take it; `block` (0-19) keeps
    cases that run side by side apart; never `besides`."""
    if not 0 <= block < 20:
        raise ValueError(f"port block {block} is not 0-19: blocks 20 up reach 32768")
    for _ in range(200):
        port = random.randrange(20_000 + 600 * block, 20_600 + 600 * block)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port != besides:
            return port
    raise RuntimeError(f"no free port in block {block}")


def two_operators(
    tmp: Path,
    *,
    idle: tuple[int, int] = (5, 5),
    slack: int = 5,
    block: int = 0,
    public_pace: bool = False,
) -> tuple[Side, Side, dict[str, str]]:
    """Both sides' keys and files (north's agent proposing the swap after idle[0] idle
    ticks, south's after idle[1]; their endpoints on ports of `block`, see
    :func:`listen_port`), and north's chains up with both agents funded; the chains'
    URLs."""
    north = Side("north", tmp / "north", listen_port(block))
    south = Side("south", tmp / "south", listen_port(block, besides=north.port))
    for side in (north, south):
        side.directory.mkdir(parents=True)
        make_keys(side)
    write(north, south, None, idle=idle[0], slack=slack, public_pace=public_pace)
    funded = [*north.addresses.values(), *south.addresses.values()]
    state = asyncio.run(devnet.up(north.deployment, fund=funded))
    urls = {name: node.url for name, node in state.nodes.items()}
    write(south, north, urls, idle=idle[1], slack=slack, public_pace=public_pace)
    return north, south, urls


def start(
    side: Side, log: Path, env: dict[str, str] | None = None, *, cheat: str | None = None
) -> subprocess.Popen[bytes]:
    """`main.py run` of `side`, its output to `log`, `env` added to its environment;
    with `cheat`, the hostile daemon of tests/a2a/_hostile.py that cheats that way."""
    env = {**os.environ, "COVENANT_PASSPHRASE": PASSPHRASE, **(env or {})}
    daemon = ["main.py"] if cheat is None else ["-m", "tests.a2a._hostile", cheat]
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, *daemon, "run", str(side.file)],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until `predicate()` held; AssertionError naming `what` after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def balances(side: Side, urls: dict[str, str]) -> dict[str, int]:
    """`side`'s agent's balance on each chain, in base units, read from the chain."""
    found = {}
    for chain in north_view(urls):
        adapter = await connect(chain, data_dir=None)
        try:
            found[chain.name] = await adapter.balance(side.addresses[chain.name])
        finally:
            await adapter.close()
    return found


def north_view(urls: dict[str, str]) -> list[Any]:
    """The two chains as a client of north's devnet configures them."""
    data = {
        "name": "reader",
        "operator": {"name": "reader"},
        "chains": list(_chains(urls)),
        "assets": [
            {"symbol": "ETH", "chain": "arb", "native": True, "decimals": 18},
            {"symbol": "SOL", "chain": "sol", "native": True, "decimals": 9},
        ],
        "planners": [{"name": "s", "kind": "scripted"}],
        "agents": [
            {
                "name": "r",
                "schedule": {"every": "1h"},
                "mandate": "read",
                "planner": "s",
                "chains": ["arb"],
            }
        ],
    }
    return list(Deployment.model_validate(data).chains)
