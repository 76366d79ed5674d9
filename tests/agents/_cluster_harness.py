"""Real cluster daemons for the acceptance test and the benchmark: a deployment of many
scripted agents paying on anvil with a PostgreSQL store, `main.py run` processes, and
the checker that reads what they did from the store and the chain.

Nothing is mocked: the daemons are processes, the store is PostgreSQL, the payments are
anvil transactions. The checker trusts nothing the daemons say about themselves beyond
``cluster_writes`` (the fence's own record of each commit, switched on by
``COVENANT_TEST_CLUSTER_RECORD_WRITES``) and the lease history.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from eth_utils.address import to_checksum_address
from sqlalchemy.engine import Engine
from web3 import Web3
from web3.exceptions import TransactionNotFound

from agents.audit import verify as verify_audit
from agents.cluster.fence import RECORD_ENV, UNFENCED_ENV
from chains.connect import connect, resolve_url
from chains.devnet import manager as devnet
from chains.families.evm._anvil import anvil_path
from config.loader import load_deployment
from config.models import Deployment
from config.store import open_store
from tests.agents import _cluster_swap
from wallets.operator import create_keystore, open_wallets

ROOT = Path(__file__).resolve().parents[2]
needs_anvil = pytest.mark.skipif(
    anvil_path() is None, reason="anvil not installed: run `npm ci` (scripts/setup.sh does)"
)
ACME = to_checksum_address("0x" + "ac" * 20)
"""The payee: an address nobody sends from, so its balance counts payments only."""
MNEMONIC = "test test test test test test test test test test test junk"
PASSPHRASE = "cluster test passphrase"
AMOUNT = Decimal("0.001")
WEI = 10**18


def deployment_file(
    directory: Path,
    url: str,
    *,
    agents: int,
    ttl: str = "3s",
    every: str = "1s",
    per_day: str = "0.01",
    deployment_per_day: str | None = None,
    pay: bool = True,
    swap_every: str | None = None,
    watcher_interval: int = 4,
    name: str = "cluster.yaml",
) -> Path:
    """A deployment of `agents` scripted agents that each pay acme AMOUNT every tick (or
    plan nothing, `pay=False`), up to `per_day` ETH each and, with `deployment_per_day`,
    up to that much ETH all together (a SpendLimit of scope deployment). With
    `swap_every`, two more agents ticking that often swap with each other across two
    chains (tests/agents/_cluster_swap.py), their plans swept every `watcher_interval`
    seconds."""
    payment = {
        "confidence": "0.9",
        "actions": [
            {
                "kind": "transfer",
                "chain": "arb",
                "asset": "ETH",
                "amount": str(AMOUNT),
                "counterparty": "acme",
            }
        ],
    }
    plan = payment if pay else {"confidence": "0.9", "actions": []}
    deployment_limit = (
        [{"SpendLimit": {"scope": "deployment", "per_day": {"ETH": deployment_per_day}}}]
        if deployment_per_day
        else []
    )
    data = {
        "name": "cluster",
        "data_dir": str(directory / "data"),
        "operator": {"name": "op"},
        "store": {"url": url},
        "cluster": {"lease_ttl": ttl},
        "chains": [
            {
                "name": "arb",
                "family": "evm",
                "chain_id": 31337,
                "rpc": "local",
                "finality": {"confirmations": 0},
                "local": {"fund_agents": "1"},
            }
        ],
        "assets": [{"symbol": "ETH", "chain": "arb", "native": True, "decimals": 18}],
        "address_book": [{"name": "acme", "addresses": {"arb": ACME}}],
        "planners": [{"name": "script", "kind": "scripted", "plans": [plan], "repeat": True}],
        "agents": [
            {
                "name": f"a{index:04d}",
                "schedule": {"every": every},
                "mandate": "Pay acme.",
                "planner": "script",
                "chains": ["arb"],
                "policies": [
                    {"Allowlist": {"recipients": ["acme"]}},
                    {
                        "SpendLimit": {
                            "per_transaction": {"ETH": str(AMOUNT)},
                            "per_day": {"ETH": per_day},
                        }
                    },
                    *deployment_limit,
                ],
            }
            for index in range(agents)
        ],
    }
    if swap_every is not None:
        _cluster_swap.add_to(data, every=swap_every, watcher_interval=watcher_interval)
    file = directory / name
    file.write_text(yaml.safe_dump(data), encoding="utf-8")
    return file


def prepare(file: Path, *, fund: bool = True) -> Deployment:
    """Keystore, store (migrated once, so daemons started together find it made) and
    anvil with every agent funded."""
    deployment = load_deployment(file)
    create_keystore(deployment, MNEMONIC, PASSPHRASE)
    engine = open_store(deployment.store.url or "")
    wallets = open_wallets(deployment, engine, PASSPHRASE)
    addresses = [wallets.agent(agent.name).evm_address for agent in deployment.agents]
    engine.dispose()
    asyncio.run(devnet.up(deployment, fund=addresses if fund else []))
    return deployment


def start_daemon(
    file: Path,
    name: str,
    log: Path,
    *,
    unfenced: bool = False,
    record: bool = True,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`main.py run FILE` as daemon `name`, its stderr to `log`; `record` has the fence
    record every commit for the checker; `extra_env` adds variables (a crash point)."""
    env = {
        **os.environ,
        "COVENANT_PASSPHRASE": PASSPHRASE,
        "COVENANT_CLUSTER_DAEMON_ID": name,
        **(extra_env or {}),
    }
    if record:
        env[RECORD_ENV] = "1"
    if unfenced:
        env[UNFENCED_ENV] = "1"
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "main.py", "run", str(file)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=handle,
    )


def stop_all(daemons: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGCONT and SIGTERM every daemon still running, then wait (SIGKILL after 60 s)."""
    for process in daemons.values():
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.send_signal(signal.SIGTERM)
    for process in daemons.values():
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def owners(engine: Engine) -> dict[str, tuple[str | None, int]]:
    """Each agent's live owner (None if its lease is expired) and epoch."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT agent, CASE WHEN expires_at > now() THEN owner END AS owner, epoch "
                "FROM cluster_leases"
            )
        ).all()
    return {row.agent: (row.owner, int(row.epoch)) for row in rows}


def wait_until(predicate: Any, timeout: float, what: str, poll: float = 0.1) -> float:
    """Poll `predicate` until true; the seconds it took. AssertionError on timeout."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)
    return time.monotonic() - started


def claimed_after(engine: Engine, agents: set[str], since: datetime) -> dict[str, datetime]:
    """For each of `agents`, when it was first claimed at or after `since`."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT agent, min(claimed_at) AS at FROM cluster_lease_history "
                "WHERE claimed_at >= :since AND agent = ANY(:agents) GROUP BY agent"
            ),
            {"since": since, "agents": sorted(agents)},
        ).all()
    return {row.agent: row.at for row in rows}


def db_now(engine: Engine) -> datetime:
    """The database's clock, which lease history is written in."""
    with engine.connect() as connection:
        moment: datetime = connection.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
    return moment


@dataclass
class Figures:
    """What the checker found."""

    stale_commits: int = 0
    stale_examples: list[str] = field(default_factory=list)
    pairs_by_two_daemons: int = 0
    writes: int = 0
    longest_tick_gap: float = 0.0
    longest_gap_at: str = ""
    longest_swap_tick_gap: float = 0.0
    ledger_states: dict[str, int] = field(default_factory=dict)
    journal_states: dict[str, int] = field(default_factory=dict)
    spend_by_agent: dict[str, Decimal] = field(default_factory=dict)
    ledger_by_agent: dict[str, Decimal] = field(default_factory=dict)
    chain_total: Decimal = Decimal(0)
    ledger_total: Decimal = Decimal(0)
    nonces_reused: int = 0
    payments_final: int = 0
    audit_broken: list[str] = field(default_factory=list)


def stale_commits(engine: Engine) -> list[Any]:
    """The recorded commits made under an epoch older than one already claimed when it
    committed, or by a daemon that never held that epoch."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.text(
                    "SELECT w.agent, w.epoch, w.owner, w.at FROM cluster_writes w "
                    "WHERE EXISTS (SELECT 1 FROM cluster_lease_history h WHERE h.agent = w.agent "
                    "AND h.epoch > w.epoch AND h.claimed_at < w.at) "
                    "OR NOT EXISTS (SELECT 1 FROM cluster_lease_history h WHERE h.agent = w.agent "
                    "AND h.epoch = w.epoch AND h.owner = w.owner)"
                )
            ).all()
        )


def check(engine: Engine, deployment: Deployment, acme_before: int) -> Figures:
    """Read the store and the chain: stale commits, doubly written epochs, spend."""
    figures = Figures()
    stale = stale_commits(engine)
    with engine.connect() as connection:
        figures.stale_commits = len(stale)
        figures.stale_examples = [
            f"{row.agent} epoch {row.epoch} by {row.owner} at {row.at}" for row in stale[:5]
        ]
        figures.pairs_by_two_daemons = int(
            connection.execute(
                sa.text(
                    "SELECT count(*) FROM (SELECT agent, epoch FROM cluster_writes "
                    "GROUP BY agent, epoch HAVING count(DISTINCT owner) > 1) AS doubled"
                )
            ).scalar_one()
        )
        figures.writes = int(
            connection.execute(sa.text("SELECT count(*) FROM cluster_writes")).scalar_one()
        )
        ticks: dict[str, list[datetime]] = defaultdict(list)
        for agent, at in connection.execute(
            sa.text("SELECT agent, at FROM audit_entries ORDER BY agent, seq")
        ):
            ticks[agent].append(datetime.fromisoformat(at))
        gaps = [
            (
                (later - earlier).total_seconds(),
                f"{agent} {earlier:%H:%M:%S.%f}..{later:%H:%M:%S.%f}",
            )
            for agent, times in ticks.items()
            for earlier, later in itertools.pairwise(times)
        ]
        # The swap's agents tick on a longer schedule: their gaps are reported apart.
        paying = [gap for gap in gaps if gap[1].split()[0] not in _cluster_swap.OTHER]
        swapping = [gap for gap in gaps if gap[1].split()[0] in _cluster_swap.OTHER]
        figures.longest_tick_gap, figures.longest_gap_at = max(paying, default=(0.0, ""))
        figures.longest_swap_tick_gap = max(swapping, default=(0.0, ""))[0]
        for table, target in (
            ("spend_ledger", figures.ledger_states),
            ("chain_tx_journal", figures.journal_states),
        ):
            for status, count in connection.execute(
                sa.text(f"SELECT status, count(*) FROM {table} GROUP BY status")
            ):
                target[status] = int(count)
        for agent, amount in connection.execute(
            sa.text("SELECT agent, amount FROM spend_ledger WHERE status != 'released'")
        ):
            if agent in _cluster_swap.OTHER:
                continue  # the swap's locks: checked by _cluster_swap, not as payments
            figures.ledger_by_agent[agent] = figures.ledger_by_agent.get(
                agent, Decimal(0)
            ) + Decimal(amount)
        journaled = connection.execute(
            sa.text("SELECT sender, tx_id, status FROM chain_tx_journal WHERE chain = 'arb'")
        ).all()
        figures.nonces_reused = int(
            connection.execute(
                sa.text(
                    "SELECT count(*) FROM (SELECT chain, sender, nonce FROM chain_tx_journal "
                    "WHERE status = 'final' GROUP BY chain, sender, nonce "
                    "HAVING count(*) > 1) AS reused"
                )
            ).scalar_one()
        )
    senders = _senders(engine, deployment)
    # A payment counts once it is on chain, whatever the journal last said of it: a
    # daemon stopped right after a broadcast leaves it `broadcast` until a restart
    # reconciles it (a fresh CI stopped the daemons with six so).
    landed = [row for row in journaled if row.status == "final" or _mined(deployment, row.tx_id)]
    payers = [senders[row.sender.lower()] for row in landed]
    payers = [agent for agent in payers if agent not in _cluster_swap.OTHER]
    for agent in payers:
        figures.spend_by_agent[agent] = figures.spend_by_agent.get(agent, Decimal(0)) + AMOUNT
    figures.payments_final = len(payers)
    figures.ledger_total = sum(figures.ledger_by_agent.values(), Decimal(0))
    acme_after = asyncio.run(balance(deployment, ACME))
    figures.chain_total = Decimal(acme_after - acme_before) / WEI
    for agent in deployment.agents:
        report = verify_audit(engine, agent.name)
        if not report.ok:
            figures.audit_broken.append(agent.name)
    return figures


def _mined(deployment: Deployment, tx_id: str) -> bool:
    """Whether transaction `tx_id` succeeded on the deployment's first chain (anvil)."""
    url = resolve_url(deployment.chains[0], deployment.data_dir)
    try:
        receipt = Web3(Web3.HTTPProvider(url)).eth.get_transaction_receipt(tx_id)  # type: ignore[arg-type]
    except TransactionNotFound:
        return False
    return int(receipt["status"]) == 1


def _senders(engine: Engine, deployment: Deployment) -> dict[str, str]:
    wallets = open_wallets(deployment, engine, PASSPHRASE)
    return {wallets.agent(a.name).evm_address.lower(): a.name for a in deployment.agents}


async def balance(deployment: Deployment, address: str, chain: int = 0) -> int:
    """`address`'s native balance on the deployment's chain number `chain`."""
    adapter = await connect(deployment.chains[chain], data_dir=deployment.data_dir)
    try:
        return await adapter.balance(address)
    finally:
        await adapter.close()


def fenced_rejections(log: Path) -> int:
    """Writes the fence refused, as the daemons logged them."""
    if not log.exists():
        return 0
    return log.read_text(encoding="utf-8", errors="replace").count("fenced: daemon ")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class PausableProxy:
    """A loopback TCP proxy to `target` that can stop forwarding (both ways) and go on
    later: a daemon behind it is cut off from the database while its connections stay
    open, as on a stalled network (the kernel still acknowledges what was sent)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._running = threading.Event()
        self._running.set()
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._start(self._accept)

    def pause(self) -> None:
        """Stop forwarding; bytes wait in the kernel's buffers."""
        self._running.clear()

    def resume(self) -> None:
        """Forward again, what waited first."""
        self._running.set()

    def close(self) -> None:
        self._closed = True
        self._running.set()
        self._server.close()

    def _start(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._start(self._pump, client, upstream)
            self._start(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(0.1)
        while not self._closed:
            self._running.wait()
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            self._running.wait()  # paused mid-read: hold what was read
            try:
                sink.sendall(data)
            except OSError:
                break
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
