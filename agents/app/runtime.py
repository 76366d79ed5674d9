"""The daemon: build every agent of a deployment and run them on their schedules.

Start-up order is a safety property: open the store (migrations), decrypt the wallets,
connect to every chain (refusing a wrong chain id), reconcile the transaction journal
with the chains (nothing journaled before a crash is sent twice or lost), build the
policy engine (it restores breaker states, spend windows and approvals from the store),
let the watchtower finish or refund open cross-chain plans (its first sweep, as the
agents start ticking).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine as SqlEngine

from agents import daemon_state
from agents.agent import Agent
from agents.audit import AuditLog
from agents.cross_chain import AtomicDesk
from agents.held import HeldActions
from agents.observe import Observer
from agents.payments import PaymentExecutor
from agents.planners import Planner, build_planner
from agents.planners.scripted import ScriptedPlanner
from agents.planners.types import Observation, PendingApproval
from agents.resolver import Resolver
from agents.scheduler import AgentJob, AgentScheduler, TickFunction
from agents.sources import build_sources
from chains.atomic.base import HtlcChain
from chains.atomic.coordinator import Coordinator
from chains.atomic.runtime import htlc_chains
from chains.base import ChainAdapter
from chains.connect import connect, fund_local, resolve_url
from chains.devnet import manager as devnet
from chains.devnet._htlc import htlc_address
from chains.journal import TxJournal
from chains.sender import reconcile
from config.errors import ChainError, CredentialError
from config.models import AgentConfig, Deployment
from config.store import open_store
from config.types import plain_amount
from policies.approvals import ApprovalRequest, list_requests
from policies.base import AuthorityClaims
from policies.engine import PolicyEngine
from wallets.credentials import verify_credential
from wallets.operator import OperatorWallets, open_wallets

log = logging.getLogger(__name__)

HEARTBEAT_FLUSH = 1.0
"""Seconds between heartbeat writes."""

SETTLE_TIMEOUT = 180.0
"""Seconds a `--ticks` run waits for the all-or-nothing plans it started to end."""


def freeze_startup_heap() -> None:
    """Take what start-up built (modules, config, engine, agents) out of the garbage
    collector's view. Each full collection would otherwise walk those hundreds of
    thousands of long-lived objects, stalling every agent and evaluation for tens of
    milliseconds; the policy benchmark does the same before it measures."""
    gc.collect()
    gc.freeze()


@dataclass
class Runtime:
    """Everything one daemon runs: store, wallets, chains, engine and agents."""

    deployment: Deployment
    store: SqlEngine
    wallets: OperatorWallets
    adapters: dict[str, ChainAdapter]
    engine: PolicyEngine
    journal: TxJournal
    audit: AuditLog
    desk: AtomicDesk | None = None
    agents: dict[str, Agent] = field(default_factory=dict)
    scheduler: AgentScheduler | None = None
    _beats: dict[str, daemon_state.Heartbeat] = field(default_factory=dict)
    _pending: tuple[tuple[int, int, int], list[ApprovalRequest]] | None = None
    _held: HeldActions | None = None

    def pending_approvals(self, agent: str) -> list[PendingApproval]:
        """The approvals waiting for a person, for `agent`'s observation (read from the
        store only when the engine's approvals version moved, not on every tick)."""
        # A request this daemon made is committed before its action is held.
        held = self._held.generation if self._held is not None else 0
        version = (*self.engine.approvals_version(), held)
        if self._pending is None or self._pending[0] != version:
            waiting = list_requests(self.store, "pending")
            self._pending = (version, waiting)
        return [
            PendingApproval(id=request.id, summary=request.summary[:300])
            for request in self._pending[1]
            if request.agent == agent
        ]

    def build_agents(self) -> None:
        """One :class:`Agent` per configured agent, sharing chains, engine and journal."""
        resolver = Resolver(self.deployment, self.wallets)
        held = self._held = HeldActions(self.store, self.engine.approvals_version)
        for config in self.deployment.agents:
            wallet = self.wallets.agent(config.name)
            adapters = {name: self.adapters[name] for name in config.chains}
            executor = PaymentExecutor(
                config.name,
                self.deployment,
                wallet,
                self.engine,
                adapters,
                self.journal,
                resolver,
                held,
                claims=self.claims(config),
            )
            planner = build_planner(self.deployment, config.name)
            self.agents[config.name] = Agent(
                config=config,
                planner=planner,
                on_planned=self._cursor_keeper(config.name, planner),
                observer=Observer(
                    self.deployment, config, wallet, adapters, sources=build_sources(config)
                ),
                executor=executor,
                audit=self.audit,
                pending=self.pending_approvals,
                atomic=self.desk.handler(config.name) if self.desk else None,
                extras=self.desk.extras if self.desk else None,
            )
        if self.desk is not None:
            self.desk.remember = self._remember

    def _remember(self, agent: str, summary: str, ok: bool) -> None:
        if agent in self.agents:
            self.agents[agent].observer.remember(summary, ok=ok)

    def _cursor_keeper(self, agent: str, planner: Planner) -> Callable[[], None] | None:
        """For a scripted planner: resume where it stopped, and save each step."""
        if not isinstance(planner, ScriptedPlanner):
            return None
        planner.position = daemon_state.load_cursor(self.store, agent)
        return lambda: daemon_state.save_cursor(self.store, agent, planner.position)

    def claims(self, config: AgentConfig) -> AuthorityClaims | None:
        """The agent's verified authority credential, if it has one; a bad one is fatal."""
        if config.credential is None:
            return None
        path = Path(config.credential)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CredentialError(
                f"cannot read credential {path}: {exc.strerror}", reason="unreadable"
            ) from exc
        verified = verify_credential(
            token,
            issuer=self.wallets.did,
            subject=self.wallets.agent(config.name).did,
            revocations=self.wallets.revocations(),
        )
        return AuthorityClaims.model_validate(verified.as_claims())

    async def recover(self) -> None:
        """Settle what a previous run journaled but did not see through."""
        for name, adapter in self.adapters.items():
            outcomes = await reconcile(adapter, self.journal)
            unresolved = [item for item in outcomes if isinstance(item, ChainError)]
            if outcomes:
                log.info(
                    "chain %s: reconciled %d journaled transactions (%d unresolved)",
                    name,
                    len(outcomes),
                    len(unresolved),
                )

    async def run(self, *, max_ticks: int | None = None) -> None:
        """Tick every agent on its schedule until stopped (or `max_ticks` each)."""
        jobs = [AgentJob(agent.config, self._ticker(agent)) for agent in self.agents.values()]
        freeze_startup_heap()
        self.scheduler = AgentScheduler(jobs, max_ticks=max_ticks)
        flusher = asyncio.create_task(self._flush_heartbeats_every(HEARTBEAT_FLUSH))
        stop_tower = asyncio.Event()
        tower = asyncio.create_task(self._watch_plans(stop_tower))
        try:
            await self.scheduler.run()
            stop_tower.set()
            await tower
            if max_ticks is not None and self.desk is not None:
                # A bounded run (the demo, tests) sees its plans through before it ends.
                await self.desk.settle(timeout=SETTLE_TIMEOUT)
        finally:
            stop_tower.set()
            await tower
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            self.flush_heartbeats()

    async def drain(self) -> None:
        """Wait for the writes the engine and the audit log still have in flight."""
        await self.engine.drain()
        await self.audit.drain()

    async def _watch_plans(self, stop: asyncio.Event) -> None:
        if self.desk is not None:
            interval = self.deployment.atomic.watcher_interval
            await self.desk.run(stop, interval=interval)

    async def _flush_heartbeats_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            self.flush_heartbeats()

    def flush_heartbeats(self) -> None:
        """Write the heartbeats gathered since the last flush (one transaction)."""
        beats, self._beats = list(self._beats.values()), {}
        daemon_state.beat(self.store, *beats)

    def _ticker(self, agent: Agent) -> TickFunction:
        failures = 0

        async def tick() -> None:
            nonlocal failures
            last = "tick did not finish"
            try:
                last = (await agent.tick()).headline()
            except Exception as exc:
                failures += 1
                last = f"tick failed: {type(exc).__name__}: {exc}"
                raise
            finally:
                self._beat(agent, failures, last)

        return tick

    def _beat(self, agent: Agent, failures: int, last: str) -> None:
        # Kept in memory and flushed once a second: a heartbeat is for people reading
        # `status`, and one fsync per tick would cap a daemon of many agents.
        next_tick = self.scheduler.next_tick(agent.name) if self.scheduler else None
        self._beats[agent.name] = daemon_state.Heartbeat(
            agent=agent.name,
            last_tick_at=datetime.now(UTC),
            next_tick_at=next_tick,
            ticks=len(agent.reports) + failures,
            failures=failures,
            last_result=last[:500],
            pid=os.getpid(),
            balances=_balances_line(agent.last_observation),
        )


def _balances_line(observation: Observation | None) -> str:
    """The observed balances in one line, for `status`."""
    if observation is None:
        return ""
    return ", ".join(
        f"{plain_amount(b.amount)} {b.asset} on {b.chain}" for b in observation.balances
    )[:500]


async def _connect_all(deployment: Deployment, store: SqlEngine) -> dict[str, ChainAdapter]:
    adapters: dict[str, ChainAdapter] = {}
    try:
        for chain in deployment.chains:
            adapters[chain.name] = await connect(chain, data_dir=deployment.data_dir, engine=store)
    except BaseException:
        for adapter in adapters.values():
            await adapter.close()
        raise
    return adapters


async def _fund_local_agents(deployment: Deployment, wallets: OperatorWallets) -> None:
    """Give every agent its `local.fund_agents` coins on each local chain."""
    for chain in devnet.local_chains(deployment):
        addresses = [
            wallets.agent(a.name).address(deployment, chain.name)
            for a in deployment.agents
            if chain.name in a.chains
        ]
        await fund_local(chain, addresses, data_dir=deployment.data_dir)


@asynccontextmanager
async def open_runtime(
    deployment: Deployment, passphrase: str, *, fund_local_chains: bool = False
) -> AsyncIterator[Runtime]:
    """Open store, wallets and chains, recover, and yield a runtime ready to run."""
    store = open_store(deployment.store.url or "")
    wallets = open_wallets(deployment, store, passphrase)
    adapters = await _connect_all(deployment, store)
    escrows: dict[str, HtlcChain] = {}
    try:
        if fund_local_chains:
            await _fund_local_agents(deployment, wallets)
        signers = {name: wallets.agent(name).jws_signer() for name in wallets.agents}
        runtime = Runtime(
            deployment=deployment,
            store=store,
            wallets=wallets,
            adapters=adapters,
            engine=PolicyEngine(
                deployment,
                store,
                resolve_agent_address=lambda agent, chain: wallets.agent(agent).address(
                    deployment, chain
                ),
            ),
            journal=TxJournal(store),
            audit=AuditLog(store, signers),
        )
        escrows = _htlc_chains(deployment, adapters)
        runtime.desk = _desk(runtime, escrows)
        await runtime.recover()
        runtime.build_agents()
        try:
            yield runtime
        finally:
            await runtime.drain()
    finally:
        for escrow in escrows.values():
            await escrow.close()
        for adapter in adapters.values():
            await adapter.close()
        store.dispose()


def _htlc_chains(deployment: Deployment, adapters: dict[str, ChainAdapter]) -> dict[str, HtlcChain]:
    """An HTLC client for every chain with `htlc:` (local ones need a devnet node: the
    escrow clients read logs and history over JSON-RPC)."""
    addresses, urls = {}, {}
    for chain in deployment.chains:
        address = htlc_address(chain)
        url = resolve_url(chain, deployment.data_dir)
        if address is None:
            continue
        if url is None:
            log.warning(
                "chain %s runs in-process: all-or-nothing actions are off on it", chain.name
            )
            continue
        addresses[chain.name], urls[chain.name] = address, url
    return htlc_chains(adapters, addresses, margins=deployment.atomic, rpc_urls=urls)


def _desk(runtime: Runtime, escrows: dict[str, HtlcChain]) -> AtomicDesk | None:
    """The desk and one coordinator per agent, or None if no chain has an HTLC."""
    if not escrows:
        return None
    deployment = runtime.deployment
    desk = AtomicDesk(
        deployment,
        runtime.engine,
        runtime.wallets,
        Resolver(deployment, runtime.wallets),
        claims={config.name: runtime.claims(config) for config in deployment.agents},
    )
    # Each coordinator's party signs through the desk's gate, never on its own.
    desk.coordinators = {
        config.name: Coordinator(
            runtime.store,
            desk.party(config.name),
            escrows,
            desk.authorize,
            margins=deployment.atomic,
            verify_authority=desk.verify_authority,
        )
        for config in deployment.agents
    }
    return desk
