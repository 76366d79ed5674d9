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
import contextlib
import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine as SqlEngine

from agents import daemon_state, log_context
from agents.a2a.deals import Deals
from agents.a2a.peers import PeerBook
from agents.a2a.store import MessageStore
from agents.agent import Agent, TickReport
from agents.audit import AuditLog
from agents.cluster.node import ClusterNode
from agents.cross_chain import AtomicDesk, Remember
from agents.held import HeldActions
from agents.observe import Observer
from agents.payments import PaymentExecutor
from agents.planners import Planner, build_planner
from agents.planners.scripted import ScriptedPlanner
from agents.planners.types import Observation, PendingApproval
from agents.prices import PriceReader
from agents.resolver import Resolver
from agents.scheduler import AgentJob, AgentScheduler, TickFunction
from agents.sources import build_sources
from chains._store import NonceStore
from chains.atomic.base import HtlcChain
from chains.atomic.coordinator import Coordinator
from chains.atomic.runtime import htlc_chains
from chains.base import ChainAdapter
from chains.connect import connect, fund_local, resolve_url
from chains.devnet import manager as devnet
from chains.devnet._fund import local_tokens
from chains.devnet._htlc import htlc_address
from chains.journal import TxJournal
from chains.sender import reconcile
from config import fencing
from config.errors import ChainError, CredentialError, StoreError
from config.models import AgentConfig, Deployment
from config.store import open_store
from config.types import plain_amount
from policies.approvals import ApprovalRequest, list_requests
from policies.base import AuthorityClaims
from policies.engine import PolicyEngine
from policies.prices import FeedPrices
from wallets.credentials import verify_credential
from wallets.operator import OperatorWallets, open_wallets

log = logging.getLogger(__name__)

TickHook = Callable[[str, TickReport | None, float], None]

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


class PendingApprovals:
    """The approvals waiting for a person, per agent, for the observations: read from the
    store only when the engine's approvals version (or the held actions') moved."""

    def __init__(self, store: SqlEngine, engine: PolicyEngine, held: HeldActions) -> None:
        self._store, self._engine, self._held = store, engine, held
        self._cache: tuple[tuple[int, ...], list[ApprovalRequest]] | None = None

    def __call__(self, agent: str) -> list[PendingApproval]:
        # A request this daemon made is committed before its action is held.
        version = (*self._engine.approvals_version(), self._held.generation)
        if self._cache is None or self._cache[0] != version:
            self._cache = (version, list_requests(self._store, "pending"))
        return [
            PendingApproval(id=request.id, summary=request.summary[:300])
            for request in self._cache[1]
            if request.agent == agent
        ]


@dataclass
class Runtime:
    """Everything one daemon runs: store, wallets, chains, engine and agents, built in one
    pass by :func:`build_runtime`; only :meth:`run` adds the state of a run (its
    scheduler and heartbeats)."""

    deployment: Deployment
    store: SqlEngine
    wallets: OperatorWallets
    adapters: dict[str, ChainAdapter]
    engine: PolicyEngine
    journal: TxJournal
    audit: AuditLog
    pending_approvals: PendingApprovals
    desk: AtomicDesk | None
    agents: dict[str, Agent]
    scheduler: AgentScheduler | None = None
    tick_hooks: list[TickHook] = field(default_factory=list)
    """Called after every tick with the agent's name, its report (None if the tick
    raised) and its wall time in seconds: how the console's metrics are fed."""
    cluster: ClusterNode | None = None
    """Cluster mode: this daemon's leases; only the agents it holds tick here."""
    _beats: dict[str, daemon_state.Heartbeat] = field(default_factory=dict)

    def __post_init__(self) -> None:
        cluster = self.cluster
        if cluster is None:
            return
        cluster.on_gained = self.take_over
        cluster.busy = self._busy
        cluster.on_ready = lambda agents: self._schedule(agents, ticking=True)
        cluster.on_lost = lambda agents: self._schedule(agents, ticking=False)
        if self.desk is not None:
            self.desk.owned = cluster.ready
            self.desk.writing_for = cluster.writing_for

    def _schedule(self, agents: set[str], *, ticking: bool) -> None:
        scheduler = self.scheduler
        if scheduler is None:
            return
        for agent in agents:
            if ticking:
                scheduler.resume(agent)
            else:
                scheduler.pause(agent)

    def _busy(self, agent: str) -> bool:
        """Not to be handed to another daemon now: mid-tick, or with a lock planned here
        and not yet judged (see AtomicDesk.holds_unjudged_lock)."""
        job = self.scheduler.jobs.get(agent) if self.scheduler else None
        if job and job.running:
            return True
        return self.desk is not None and self.desk.holds_unjudged_lock(agent)

    async def take_over(self, agents: dict[str, int], inherited: set[str]) -> None:
        """Cluster mode: make `agents`, just won (at these epochs), ready to tick here.
        The state of those another daemon held (`inherited`) is read again from the
        store (policies); every agent's audit head and scripted cursor are read, its
        old owner's nonce reservations dropped, its journal reconciled with the chains
        (unsent bytes sent, the rest tracked, nothing signed anew) and its cross-chain
        plans driven from their state on chain, all before it plans anything new. One
        batch for every agent won in a lease cycle: one reconciliation per chain, not
        one per agent. Every write is fenced under the new epochs."""
        names = sorted(agents)
        with fencing.writing_for(*names, epochs=agents):
            self.engine.reload_agents(sorted(inherited))
            cursors = daemon_state.load_cursors(self.store, names)
            senders: dict[str, set[str]] = {}
            for agent in names:
                self.audit.forget(agent)
                planner = self.agents[agent].planner
                if isinstance(planner, ScriptedPlanner):
                    planner.position = cursors[agent]
                wallet = self.wallets.agent(agent)
                for chain in self.deployment.agent(agent).chains:
                    senders.setdefault(chain, set()).add(wallet.address(self.deployment, chain))
            nonces = NonceStore(self.store)
            for chain, addresses in senders.items():
                nonces.release_all(chain, addresses)
                await reconcile(self.adapters[chain], self.journal, senders=frozenset(addresses))
            if self.desk is not None:
                for agent in names:
                    await self.desk.take_over(agent)
        log.info("cluster: took over %d agent(s) (%d read again)", len(names), len(inherited))

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
        """Tick every agent on its schedule until stopped (or `max_ticks` each).

        The heartbeat flusher and the watchtower belong to this call: both are stopped and
        awaited before it returns, whatever ended the run."""
        jobs = [AgentJob(agent.config, self._ticker(agent)) for agent in self.agents.values()]
        freeze_startup_heap()
        # A cluster daemon fires only the jobs of agents it holds and has taken over.
        self.scheduler = AgentScheduler(jobs, max_ticks=max_ticks, paused=self.cluster is not None)
        stop = asyncio.Event()
        background = [
            asyncio.create_task(self._flush_heartbeats_until(stop)),
            asyncio.create_task(self._watch_plans(stop)),
        ]
        if self.cluster is not None:
            background.append(asyncio.create_task(self.cluster.run(stop)))
        try:
            await self.scheduler.run()
            stop.set()
            await background[1]  # the watchtower's last sweep
            if max_ticks is not None and self.desk is not None:
                # A bounded run (the demo, tests) sees its plans through before it ends.
                await self.desk.settle(timeout=SETTLE_TIMEOUT)
        finally:
            # Not a TaskGroup: it would wrap a failed run's own error in an ExceptionGroup.
            stop.set()
            await asyncio.gather(*background)
            self.flush_heartbeats()
            if self.cluster is not None:
                # Hand the agents back only once their writes are in: a write after the
                # release would be fenced.
                await self.drain()
                self.cluster.leave()

    async def drain(self) -> None:
        """Wait for the writes the engine and the audit log still have in flight."""
        await self.engine.drain()
        await self.audit.drain()

    async def _watch_plans(self, stop: asyncio.Event) -> None:
        if self.desk is not None:
            interval = self.deployment.atomic.watcher_interval
            await self.desk.run(stop, interval=interval)

    async def _flush_heartbeats_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), HEARTBEAT_FLUSH)
            self.flush_heartbeats()

    def flush_heartbeats(self) -> None:
        """Write the heartbeats gathered since the last flush (one transaction)."""
        beats, self._beats = list(self._beats.values()), {}
        if self.cluster is None:
            daemon_state.beat(self.store, *beats)
            return
        # Only the agents still held here, each fenced by its lease.
        beats = [beat for beat in beats if self.cluster.table.holds(beat.agent)]
        try:
            with self.cluster.writing_for(*(beat.agent for beat in beats)):
                daemon_state.beat(self.store, *beats)
        except StoreError as exc:  # a heartbeat is for people; the next flush retries
            log.warning("heartbeats not written: %s", exc)

    def _ticker(self, agent: Agent) -> TickFunction:
        failures = 0

        async def tick() -> None:
            if self.cluster is not None and not self.cluster.ready(agent.name):
                return  # another daemon ticks it (or it is being taken over)
            # Every write of the tick is fenced, under the epoch it starts at.
            fenced = self.cluster.writing_for if self.cluster else fencing.writing_for
            with fenced(agent.name):
                await attempt()

        async def attempt() -> None:
            nonlocal failures
            last = "tick did not finish"
            started, report = time.perf_counter(), None
            context = log_context.AGENT.set(agent.name)
            try:
                report = await agent.tick()
                last = report.headline()
            except Exception as exc:
                failures += 1
                last = f"tick failed: {type(exc).__name__}: {exc}"
                raise
            finally:
                self._beat(agent, failures, last)
                for hook in self.tick_hooks:
                    hook(agent.name, report, time.perf_counter() - started)
                log_context.AGENT.reset(context)
                log_context.PLAN.set(None)

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
    """Give every agent its `local.fund_agents` coins, and `local.fund_tokens` of each
    local token, on each local chain."""
    for chain in devnet.local_chains(deployment):
        addresses = [
            wallets.agent(a.name).address(deployment, chain.name)
            for a in deployment.agents
            if chain.name in a.chains
        ]
        tokens = local_tokens(deployment, chain)
        await fund_local(chain, addresses, data_dir=deployment.data_dir, tokens=tokens)


@asynccontextmanager
async def open_runtime(
    deployment: Deployment, passphrase: str, *, fund_local_chains: bool = False
) -> AsyncIterator[Runtime]:
    """Open store, wallets and chains, build the runtime, recover, and yield it ready to
    run. On exit, in reverse: drain the writers, close the escrow clients and adapters,
    dispose of the store."""
    async with contextlib.AsyncExitStack() as stack:
        cluster = ClusterNode(deployment) if deployment.cluster is not None else None
        if cluster is not None:
            stack.callback(cluster.close)
        settings = cluster.settings if cluster is not None else None
        store = open_store(deployment.store.url or "", settings=settings)
        stack.callback(store.dispose)
        if cluster is not None:
            fencing.install(store, cluster.fence)
            cluster.register()
        wallets = open_wallets(deployment, store, passphrase)
        adapters = await _connect_all(deployment, store)
        for adapter in adapters.values():
            stack.push_async_callback(adapter.close)
        if fund_local_chains:
            await _fund_local_agents(deployment, wallets)
        escrows = _htlc_chains(deployment, adapters)
        for escrow in escrows.values():
            stack.push_async_callback(escrow.close)
        peers = PeerBook(deployment)
        await peers.load()  # other operators' agents: addresses only from verified cards
        runtime = build_runtime(
            deployment, store, wallets, adapters, escrows, cluster=cluster, peers=peers
        )
        stack.push_async_callback(runtime.drain)
        if runtime.desk is not None and runtime.desk.deals is not None:
            stack.push_async_callback(runtime.desk.deals.outbox.close)
        if cluster is None:  # a cluster daemon recovers each agent as it wins it
            await runtime.recover()
        yield runtime


def build_runtime(
    deployment: Deployment,
    store: SqlEngine,
    wallets: OperatorWallets,
    adapters: dict[str, ChainAdapter],
    escrows: dict[str, HtlcChain],
    *,
    cluster: ClusterNode | None = None,
    peers: PeerBook | None = None,
) -> Runtime:
    """Every part of a runtime, each built once and handed to what needs it."""
    prices = FeedPrices(deployment)
    engine = PolicyEngine(
        deployment,
        store,
        prices=prices,
        resolve_agent_address=lambda agent, chain: wallets.agent(agent).address(deployment, chain),
        resolve_peer_address=(
            (lambda name, chain: peers.address(name, deployment.chain(chain)))
            if peers is not None
            else None
        ),
        lease_epochs=cluster.epoch if cluster is not None else None,
    )
    # One reader for every agent: a feed may be on a chain the agent does not use.
    reader = PriceReader(deployment, prices, adapters)
    held = HeldActions(store, engine.approvals_version)
    claims = {config.name: verified_claims(wallets, config) for config in deployment.agents}
    observers = {
        config.name: Observer(
            deployment,
            config,
            wallets.agent(config.name),
            {name: adapters[name] for name in config.chains},
            sources=build_sources(config),
            prices=reader,
        )
        for config in deployment.agents
    }

    audit = AuditLog(store, {name: wallets.agent(name).jws_signer() for name in wallets.agents})

    async def remember(agent: str, summary: str, ok: bool) -> None:
        # How a plan ended is a decision of the runtime's, not of a tick: its own entry.
        observers[agent].remember(summary, ok=ok)
        await audit.record(agent, {"plan_ended": {"summary": summary, "ok": ok}})

    desk = _desk(
        deployment,
        store,
        engine,
        wallets=wallets,
        claims=claims,
        escrows=escrows,
        remember=remember,
        peers=peers,
    )
    parts = _Parts(deployment, store, wallets, adapters, engine, held, claims, desk, peers)
    pending = PendingApprovals(store, engine, held)
    agents = {
        config.name: _agent(parts, config, observers[config.name], audit, pending)
        for config in deployment.agents
    }
    return Runtime(
        deployment,
        store,
        wallets,
        adapters,
        engine,
        parts.journal,
        audit,
        pending,
        desk,
        agents,
        cluster=cluster,
    )


@dataclass(frozen=True)
class _Parts:
    """What every agent of a runtime shares."""

    deployment: Deployment
    store: SqlEngine
    wallets: OperatorWallets
    adapters: dict[str, ChainAdapter]
    engine: PolicyEngine
    held: HeldActions
    claims: dict[str, AuthorityClaims | None]
    desk: AtomicDesk | None
    peers: PeerBook | None = None
    journal: TxJournal = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "journal", TxJournal(self.store))


def _agent(
    parts: _Parts,
    config: AgentConfig,
    observer: Observer,
    audit: AuditLog,
    pending: PendingApprovals,
) -> Agent:
    executor = PaymentExecutor(
        config.name,
        parts.deployment,
        parts.wallets.agent(config.name),
        parts.engine,
        {name: parts.adapters[name] for name in config.chains},
        parts.journal,
        Resolver(parts.deployment, parts.wallets, parts.peers),
        parts.held,
        claims=parts.claims[config.name],
    )
    planner = build_planner(parts.deployment, config.name)
    desk = parts.desk
    return Agent(
        config=config,
        planner=planner,
        on_planned=_cursor_keeper(parts.store, config.name, planner),
        observer=observer,
        executor=executor,
        audit=audit,
        pending=pending,
        atomic=desk.handler(config.name) if desk else None,
        extras=desk.extras if desk else None,
    )


def _cursor_keeper(store: SqlEngine, agent: str, planner: Planner) -> Callable[[], None] | None:
    """For a scripted planner: resume where it stopped, and save each step."""
    if not isinstance(planner, ScriptedPlanner):
        return None
    planner.position = daemon_state.load_cursor(store, agent)
    return lambda: daemon_state.save_cursor(store, agent, planner.position)


def verified_claims(wallets: OperatorWallets, config: AgentConfig) -> AuthorityClaims | None:
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
        issuer=wallets.did,
        subject=wallets.agent(config.name).did,
        revocations=wallets.revocations(),
    )
    return AuthorityClaims.model_validate(verified.as_claims())


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


def _desk(
    deployment: Deployment,
    store: SqlEngine,
    engine: PolicyEngine,
    *,
    wallets: OperatorWallets,
    claims: dict[str, AuthorityClaims | None],
    escrows: dict[str, HtlcChain],
    remember: Remember,
    peers: PeerBook | None = None,
) -> AtomicDesk | None:
    """The desk and one coordinator per agent, or None if no chain has an HTLC."""
    if not escrows:
        return None
    deals = None
    if deployment.a2a is not None and peers is not None:
        deals = Deals(deployment, wallets, peers, MessageStore(store))
    desk = AtomicDesk(
        deployment,
        engine,
        wallets,
        Resolver(deployment, wallets, peers),
        claims,
        remember=remember,
        deals=deals,
    )
    # Each coordinator's party signs through the desk's gate, never on its own.
    desk.coordinators.update(
        {
            config.name: Coordinator(
                store,
                desk.party(config.name),
                escrows,
                desk.authorize,
                margins=deployment.atomic,
                verify_authority=desk.verify_authority,
            )
            for config in deployment.agents
        }
    )
    return desk
