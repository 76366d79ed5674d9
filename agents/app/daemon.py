"""`run` and `status`: the daemon's command-line face.

`run FILE` starts whatever local chains the deployment needs (and stops what it
started), opens the runtime, shows a live status view while the agents tick, and ends
with a summary. `status FILE` reads the store from another process: heartbeats, breaker
states, pending approvals, open cross-chain plans.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from agents import daemon_state
from agents.app.a2a import a2a_running
from agents.app.commands.config import load_checked_deployment
from agents.app.commands.swaps import add_command, swaps_group
from agents.app.console import console_running
from agents.app.runtime import Runtime, open_runtime
from agents.audit import verify as verify_audit
from agents.cluster import status as cluster_status
from agents.log_context import JsonLines
from chains.atomic.store import PlanStore
from chains.devnet import manager as devnet
from chains.families import FAMILIES
from config.errors import ConfigError
from config.loader import load_deployment
from config.models import Deployment
from config.store import one_daemon, open_store
from policies import control
from policies.approvals import list_requests
from wallets.operator import ensure_demo_keystore
from wallets.passphrase import ENV_VAR, is_all_local, resolve_passphrase

console = Console(emoji=False)  # "did:key:" must print as written, not as an emoji
log = logging.getLogger(__name__)

Ticks = Annotated[int | None, typer.Option("--ticks", help="Stop after N ticks per agent.")]
PassphraseFile = Annotated[
    Path | None, typer.Option(help="File whose first line is the passphrase.")
]
Fresh = Annotated[bool, typer.Option(help="All-local deployments only: start from empty state.")]


def run(
    file: Path, ticks: Ticks = None, passphrase_file: PassphraseFile = None, fresh: Fresh = False
) -> None:
    """Run the agents of FILE on their schedules (Ctrl-C or SIGTERM stops gracefully)."""
    deployment = load_checked_deployment(file)
    if ticks is not None and deployment.cluster is not None:
        # A cluster daemon ticks only the agents it holds: it might never count N ticks
        # of the others, and would then never stop.
        raise ConfigError(
            f"{file}: --ticks counts N ticks of every agent in this daemon, but in cluster "
            "mode the daemons share the agents out, so this one may never tick some of "
            "them; run without --ticks and stop the daemon with Ctrl-C or SIGTERM"
        )
    _configure_logging(
        Path(deployment.data_dir or ".") / "covenant.log", jsonl=deployment.log_format == "jsonl"
    )
    # Held before anything is touched: a second daemon must not even wipe (--fresh).
    with one_daemon(deployment.store.url or ""):
        if fresh:
            _wipe_local_state(deployment)
        passphrase = _passphrase(deployment, passphrase_file)
        with _local_chains(deployment) as started:
            asyncio.run(_run(deployment, passphrase, ticks, fund=started))


_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _OneLine(logging.Formatter):
    """The terminal's format: one line a record; the traceback is in the log file."""

    def __init__(self, log_file: Path) -> None:
        super().__init__(_LOG_FORMAT)
        self._log_file = log_file

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line += f" ({type(error).__name__}: {error}; traceback in {self._log_file})"
        return line


def _configure_logging(log_file: Path, *, jsonl: bool = False) -> None:
    """Warnings and errors to the terminal, one line each, and in full (tracebacks
    included) to `log_file`, where an operator looks after the fact: as text, or with
    `jsonl` one JSON object a line with the agent and plan id of each record."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(log_file, encoding="utf-8")
    to_file.setFormatter(JsonLines() if jsonl else logging.Formatter(_LOG_FORMAT))
    to_terminal = logging.StreamHandler()
    to_terminal.setFormatter(_OneLine(log_file))
    logging.basicConfig(level=logging.WARNING, handlers=[to_file, to_terminal], force=True)
    # A skipped run ("maximum number of running instances") is the one-tick-in-flight
    # rule working, not news: with many agents it would flood the log.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)


def _passphrase(deployment: Deployment, passphrase_file: Path | None) -> str:
    # A demo (every chain local) needs nothing by hand: it makes its own keystore.
    if passphrase_file is None and not os.environ.get(ENV_VAR) and is_all_local(deployment):
        return ensure_demo_keystore(deployment)
    return resolve_passphrase(deployment, passphrase_file)


def _wipe_local_state(deployment: Deployment) -> None:
    if not is_all_local(deployment):
        raise ConfigError("--fresh deletes state and is only for all-local deployments")
    data_dir = Path(deployment.data_dir or ".")
    devnet.down(deployment)
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (data_dir / name).unlink(missing_ok=True)
    shutil.rmtree(devnet.devnet_dir(data_dir), ignore_errors=True)
    console.print(f"[yellow]--fresh: cleared the store and local chains in {data_dir}[/]")


@contextmanager
def _local_chains(deployment: Deployment) -> Iterator[bool]:
    """Start local chains that are not running; stop them afterwards. Yields whether any
    chain was started here (or runs in-process), i.e. whether agents need funding."""
    local = devnet.local_chains(deployment)
    if not local:
        yield False
        return
    running = {name for name, _node, alive in devnet.status(deployment) if alive}
    missing = [chain for chain in local if chain.name not in running]
    if not missing:
        yield False
        return
    if not all(family.local_node_installed() for family in FAMILIES):
        console.print(
            "[yellow]anvil is not installed: local chains run in-process "
            "(py-evm, LiteSVM); run scripts/setup.sh for real nodes[/]"
        )
        yield True
        return
    state = asyncio.run(devnet.up(deployment))
    console.print(
        "local chains: " + ", ".join(f"{n} {node.url}" for n, node in state.nodes.items())
    )
    try:
        yield True
    finally:
        devnet.down(deployment)


async def _run(deployment: Deployment, passphrase: str, ticks: int | None, *, fund: bool) -> None:
    async with (
        open_runtime(deployment, passphrase, fund_local_chains=fund) as runtime,
        console_running(runtime) as console_url,
        a2a_running(runtime) as a2a_url,
    ):
        if console_url is not None:
            console.print(f"console: {console_url}", highlight=False)
        if a2a_url is not None:
            console.print(f"A2A endpoint: {a2a_url}/agents/<name>", highlight=False)
        with Live(
            _live_table(runtime), console=console, refresh_per_second=2, transient=False
        ) as live:
            updater = asyncio.create_task(_refresh(live, runtime))
            try:
                await runtime.run(max_ticks=ticks)
            finally:
                updater.cancel()
                live.update(_live_table(runtime))
        _summary(runtime)


async def _refresh(live: Live, runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(0.5)
        live.update(_live_table(runtime))


def _live_table(runtime: Runtime) -> Table:
    table = Table(
        "agent",
        "ticks",
        "now",
        "next tick",
        "last result",
        title=f"covenant · {runtime.deployment.name}",
        expand=True,
    )
    scheduler = runtime.scheduler
    for name, agent in runtime.agents.items():
        job = scheduler.jobs.get(name) if scheduler else None
        next_tick = scheduler.next_tick(name) if scheduler else None
        last = agent.reports[-1].headline() if agent.reports else "-"
        table.add_row(
            name,
            str(job.ticks_done if job else 0),
            "[cyan]ticking[/]" if job and job.running else "idle",
            next_tick.strftime("%H:%M:%S") if next_tick else "-",
            (job.last_error if job and job.last_error else last)[:160],
        )
    return table


def _summary(runtime: Runtime) -> None:
    table = Table(
        "agent",
        "ticks",
        "executed",
        "cross-chain",
        "pending",
        "denied",
        "queued",
        "failed",
        "audit log",
        title="summary",
    )
    for name, agent in runtime.agents.items():
        states = [result.state for report in agent.reports for result in report.results]
        audit = verify_audit(runtime.store, name)
        table.add_row(
            name,
            str(len(agent.reports)),
            str(states.count("executed")),
            str(states.count("started")),
            str(states.count("pending")),
            str(states.count("denied")),
            str(states.count("queued")),
            str(states.count("failed") + states.count("error")),
            f"{audit.entries} entries, " + ("intact" if audit.ok else "BROKEN"),
        )
    console.print(table)
    _print_outcomes(runtime)


def _print_outcomes(runtime: Runtime) -> None:
    for name, agent in runtime.agents.items():
        for report in agent.reports:
            for result in report.results:
                colour = {"executed": "green", "queued": "yellow", "pending": "yellow"}.get(
                    result.state, "red"
                )
                tx = f" tx {result.tx_id}" if result.tx_id else ""
                console.print(
                    f"[{colour}]{name} {result.state}[/]{tx}: {result.summary}",
                    highlight=False,
                    soft_wrap=True,
                )
    _print_plans(runtime)
    for request in list_requests(runtime.store, "pending"):
        console.print(
            f"[yellow]waiting for approval[/] {request.id}: {request.summary}\n"
            f"  approve: python main.py approvals approve FILE {request.id}",
            highlight=False,
            soft_wrap=True,
        )


def _print_plans(runtime: Runtime) -> None:
    """Where each all-or-nothing plan of the deployment stands."""
    if runtime.desk is None:
        return
    for name, coordinator in runtime.desk.coordinators.items():
        for plan in coordinator.store.plans(agent=name):
            colour = {"claimed": "green", "refunded": "yellow"}.get(plan.state, "cyan")
            legs = ", ".join(
                f"{leg.chain} {state}"
                for leg, state in zip(plan.legs, plan.leg_states, strict=True)
            )
            reason = f" - {plan.reason}" if plan.reason else ""
            console.print(
                f"[{colour}]{name} {plan.kind} {plan.plan_id}: {plan.state}[/] ({legs}){reason}",
                highlight=False,
                soft_wrap=True,
            )


def status(file: Path) -> None:
    """Agents: last and next tick, breaker state, balances (as last observed) and last
    result; then pending approvals and open cross-chain plans."""
    deployment = load_deployment(file)
    store = open_store(deployment.store.url or "")
    try:
        beats = daemon_state.heartbeats(store)
        breakers = {row.agent: row for row in control.breakers(store)}
        leases = cluster_status.leases(store) if deployment.cluster is not None else None
        columns = ["agent", "ticks", "last tick", "next tick", "breaker", "balances"]
        if leases is not None:  # cluster mode: who ticks each agent, and until when
            columns += ["owner", "epoch", "lease until"]
        table = Table(*columns, "last result", title=f"status · {deployment.name}")
        for agent in deployment.agents:
            beat = beats.get(agent.name)
            breaker = breakers.get(agent.name)
            cells = [
                agent.name,
                str(beat.ticks if beat else 0),
                _when(beat.last_tick_at if beat else None),
                _when(beat.next_tick_at if beat else None),
                breaker.state if breaker else "closed",
                (beat.balances if beat else "") or "-",
            ]
            if leases is not None:
                cells += _lease_cells(leases.get(agent.name))
            table.add_row(*cells, (beat.last_result if beat else "never ticked")[:120])
        console.print(table)
        for request in list_requests(store, "pending"):
            console.print(
                f"[yellow]pending approval[/] {request.id}: {request.summary}",
                highlight=False,
                soft_wrap=True,
            )
        for plan in PlanStore(store).plans(open_only=True):
            console.print(
                f"[cyan]open plan[/] {plan.agent} {plan.kind} {plan.plan_id}: {plan.state}"
                + (f" - {plan.reason}" if plan.reason else ""),
                highlight=False,
                soft_wrap=True,
            )
    finally:
        store.dispose()


def _lease_cells(lease: cluster_status.Lease | None) -> list[str]:
    if lease is None or lease.owner is None:
        return ["-", str(lease.epoch) if lease else "-", "never held"]
    until = _when(lease.expires_at) + ("" if lease.live else " (expired)")
    return [lease.owner, str(lease.epoch), until]


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def recover(file: Path, passphrase_file: PassphraseFile = None) -> None:
    """Drive every open cross-chain plan of FILE's agents once: claim what can be
    claimed, refund what is past its deadline (what the daemon's watchtower does)."""
    deployment = load_checked_deployment(file)
    if deployment.cluster is not None:
        raise ConfigError(
            f"{file}: in cluster mode each agent's plans are driven by the daemon that holds "
            "its lease (its watchtower, and the take-over when a daemon dies); `cluster "
            "status FILE` shows who holds what. Start a daemon with `run` instead"
        )
    passphrase = _passphrase(deployment, passphrase_file)
    with _local_chains(deployment):
        still_open = asyncio.run(_recover(deployment, passphrase))
    console.print(
        f"[green]swept[/]; {still_open} plan(s) still open (waiting for a deadline, a "
        "confirmation or a counterparty; the daemon's watchtower goes on with them)"
    )


async def _recover(deployment: Deployment, passphrase: str) -> int:
    async with open_runtime(deployment, passphrase) as runtime:
        if runtime.desk is None:
            raise ConfigError(
                f"{deployment.name}: no chain has `htlc:`, so there are no cross-chain "
                "plans to recover"
            )
        for plan in runtime.desk.open_plans():
            console.print(f"{plan.agent} {plan.kind} {plan.plan_id}: {plan.state}")
        return len(await runtime.desk.sweep())


def register(app: typer.Typer) -> None:
    """Add `run`, `status` and `swaps recover` to the main CLI; `swaps list | show` are
    agents.app.commands.swaps's, in the same group of `app`."""
    app.command("run")(run)
    app.command("status")(status)
    add_command(swaps_group(app), "recover", recover)
