"""Cluster mode's acceptance test: real daemons (`main.py run`), real PostgreSQL, real
anvil payments.

Three daemons share 30 agents that each pay acme every second up to a per-agent daily
limit and, all together, up to a deployment-wide one (judged across the daemons in the
store), and two more agents that swap ETH on two anvil chains with each other through
HTLC escrow (tests/agents/_cluster_swap.py). Once both legs of the swap are locked and
before either is claimed, the daemon holding the swap's maker is killed with SIGKILL;
then another (the taker's, if another holds it) is stopped with SIGSTOP for twice the
lease TTL and resumed. The swap must end claimed on both sides, each leg moved once.
The checker then reads the store and the chain and the test asserts,
and prints: take-over latency (p50, max) after the SIGKILL and after the SIGSTOP, the
longest gap between two ticks of one agent, fenced rejections, stale commits (0),
(agent, epoch) pairs written by two daemons (0), spend per agent and of the whole
deployment at or under its limit and within the ledger, acme's balance equal to the
journal's payments (no side effect repeated), nonces reused (0), every audit chain
intact.

A third test cuts one daemon off the database with a paused loopback TCP proxy (its
connections stay open, nothing goes through) for longer than the TTL, then stops it
with SIGSTOP while one of its transactions is open.

The negative control runs the stopped daemon with fencing switched off (a test-only
setting) and asserts that the same checker then finds stale commits: without it this
test could pass by checking nothing.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from chains.devnet import manager as devnet
from tests.agents import _cluster_harness as harness
from tests.agents import _cluster_swap as swap
from wallets.operator import open_wallets

pytestmark = [pytest.mark.anvil, pytest.mark.slow, harness.needs_anvil]

TTL = 3.0
AGENTS = 30
LIMIT = Decimal("0.02")
DEPLOYMENT_LIMIT = Decimal("0.3")  # all 30 together: below 30 x LIMIT, so it binds first
SWAP_EVERY = 5  # the swap's agents' schedule: their first plans come after the share-out


def _held_by(engine: Engine, daemon: str) -> set[str]:
    return {agent for agent, (owner, _) in harness.owners(engine).items() if owner == daemon}


def _all_held_by(engine: Engine, daemons: set[str], agents: int = AGENTS) -> bool:
    found = harness.owners(engine)
    return len(found) == agents and all(owner in daemons for owner, _ in found.values())


def _takeover(engine: Engine, agents: set[str], since: datetime, timeout: float) -> list[float]:
    """Seconds from `since` (database clock) until each of `agents` was claimed anew."""
    try:
        harness.wait_until(
            lambda: len(harness.claimed_after(engine, agents, since)) == len(agents),
            timeout,
            f"{len(agents)} agents to be taken over",
        )
    except AssertionError:
        with engine.connect() as connection:
            for row in connection.execute(
                sa.text(
                    "SELECT a.pid, a.application_name, a.state, a.wait_event, l.mode, "
                    "left(a.query, 120) AS query, now() - a.xact_start AS age FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.relation = 'cluster_leases'::regclass"
                )
            ):
                print("lease lock:", tuple(row))
        raise
    claimed = harness.claimed_after(engine, agents, since)
    return [(at - since).total_seconds() for at in claimed.values()]


def test_three_daemons_survive_sigkill_and_sigstop_with_nothing_stale(
    pg: str, pg_store: Engine, tmp_path: Path
) -> None:
    file = harness.deployment_file(
        tmp_path,
        pg,
        agents=AGENTS,
        ttl=f"{TTL:g}s",
        per_day=str(LIMIT),
        deployment_per_day=str(DEPLOYMENT_LIMIT),
        # The maker claims at its sweep after the taker's lock is final: up to 8 s in
        # which the swap is locked on both chains and claimed on neither.
        swap_every=f"{SWAP_EVERY}s",
        watcher_interval=8,
    )
    deployment = harness.prepare(file)
    wallets = open_wallets(deployment, pg_store, harness.PASSPHRASE)
    every_agent = AGENTS + len(swap.OTHER)
    names = ["d1", "d2", "d3"]
    logs = {name: tmp_path / f"{name}.log" for name in names}
    daemons = {}
    try:
        acme_before = asyncio.run(harness.balance(deployment, harness.ACME))
        swap_before = swap.balances(deployment, wallets)
        daemons = {name: harness.start_daemon(file, name, logs[name]) for name in names}
        harness.wait_until(
            lambda: (
                _all_held_by(pg_store, set(names), every_agent)
                and all(_held_by(pg_store, name) for name in names)
            ),
            90,
            "every agent held and every daemon holding some",
        )
        harness.wait_until(lambda: swap.both_locked(pg_store), 90, "the swap locked on both")
        sides = {plan.kind: agent for agent, plan in swap.plans(pg_store).items()}
        held = harness.owners(pg_store)
        killer, paused = held[sides["maker"]][0], held[sides["taker"]][0]
        assert killer is not None
        assert paused is not None
        if paused == killer:
            paused = next(name for name in names if name != killer)
        survivor = next(name for name in names if name not in (killer, paused))

        killed = _held_by(pg_store, killer)
        since = harness.db_now(pg_store)
        daemons[killer].send_signal(signal.SIGKILL)
        after_kill = _takeover(pg_store, killed, since, timeout=6 * TTL)
        time.sleep(2)

        stopped = _held_by(pg_store, paused)
        since = harness.db_now(pg_store)
        daemons[paused].send_signal(signal.SIGSTOP)
        after_stop = _takeover(pg_store, stopped, since, timeout=6 * TTL)
        harness.wait_until(
            lambda: _all_held_by(pg_store, {survivor}, every_agent),
            6 * TTL,
            f"{survivor} to hold all",
        )
        time.sleep(max(0.0, 2 * TTL - (time.monotonic() % 1)))
        daemons[paused].send_signal(signal.SIGCONT)
        harness.wait_until(
            lambda: _held_by(pg_store, paused), 10 * TTL, f"{paused} to get agents back"
        )
        harness.wait_until(lambda: swap.finished(pg_store), 90, "the swap to finish")
        time.sleep(3)
        swap_summary = swap.assert_settled(
            pg_store, deployment, swap_before, swap.balances(deployment, wallets)
        )
    finally:
        harness.stop_all(daemons)
        figures = harness.check(pg_store, deployment, acme_before) if daemons else None
        devnet.down(deployment)
    assert figures is not None
    rejections = {name: harness.fenced_rejections(logs[name]) for name in names}
    latencies = after_kill + after_stop
    print(
        f"\ncluster acceptance: {AGENTS} agents, 3 daemons, TTL {TTL}s\n"
        f"  take-over after SIGKILL: p50 {harness.percentile(after_kill, 0.5):.2f}s "
        f"max {max(after_kill):.2f}s ({len(after_kill)} agents)\n"
        f"  take-over after SIGSTOP: p50 {harness.percentile(after_stop, 0.5):.2f}s "
        f"max {max(after_stop):.2f}s ({len(after_stop)} agents)\n"
        f"  longest gap between one agent's ticks: {figures.longest_tick_gap:.2f}s "
        f"({figures.longest_gap_at})\n"
        f"  ledger {figures.ledger_states}, journal {figures.journal_states}\n"
        f"  fenced rejections: {rejections}\n"
        f"  fenced commits recorded: {figures.writes}; stale commits: {figures.stale_commits}"
        f"; (agent, epoch) written by two daemons: {figures.pairs_by_two_daemons}\n"
        f"  payments final: {figures.payments_final}; spent on chain {figures.chain_total} "
        f"ETH; ledger {figures.ledger_total} ETH (authorized, incl. interrupted); "
        f"nonces reused {figures.nonces_reused}; audit chains broken {figures.audit_broken}\n"
        f"  max spend of one agent: {max(figures.spend_by_agent.values(), default=0)} ETH "
        f"(limit {LIMIT}); deployment: spent {figures.chain_total} ETH, ledger "
        f"{figures.ledger_total} ETH (limit {DEPLOYMENT_LIMIT} across the daemons)\n"
        f"  swap in flight: {killer} (holding the maker, {sides['maker']}) SIGKILLed with "
        f"both legs locked; {paused} SIGSTOPped; {swap_summary}; longest gap between "
        f"ticks of a swap agent (every {SWAP_EVERY}s): {figures.longest_swap_tick_gap:.2f}s"
    )
    assert figures.stale_commits == 0, figures.stale_examples
    assert figures.pairs_by_two_daemons == 0
    assert figures.writes > 0
    # The resumed daemon's refused writes are reported, not asserted: whether it had a
    # write in flight when it stopped is luck; its local guard stops the rest before the
    # database sees them (tests/agents/test_cluster_leases.py refuses one for certain).
    assert figures.nonces_reused == 0
    assert figures.audit_broken == []
    # What left the agents is exactly what the journal sent: nothing repeated, nothing
    # unjournaled. The ledger counts every authorized payment, so it is at least what
    # was spent (an authorization whose daemon was killed or fenced before its journal
    # entry or its settle mark stays counted), and never above the limit.
    assert figures.chain_total == figures.payments_final * harness.AMOUNT
    for agent, counted in figures.ledger_by_agent.items():
        assert figures.spend_by_agent.get(agent, Decimal(0)) <= counted <= LIMIT, agent
    assert figures.ledger_total - figures.chain_total <= harness.AMOUNT * 3 * len(names)
    assert figures.chain_total <= figures.ledger_total <= DEPLOYMENT_LIMIT
    assert figures.payments_final > AGENTS  # the agents did pay, before and after
    assert max(latencies) < 4 * TTL
    assert figures.longest_tick_gap < 6 * TTL
    # A swap agent's next tick after a take-over comes a schedule period later.
    assert figures.longest_swap_tick_gap < 6 * TTL + SWAP_EVERY


def test_negative_control_without_fencing_the_checker_sees_stale_commits(
    pg: str, pg_store: Engine, tmp_path: Path
) -> None:
    file = harness.deployment_file(tmp_path, pg, agents=12, ttl=f"{TTL:g}s", per_day="1")
    deployment = harness.prepare(file)
    logs = {name: tmp_path / f"{name}.log" for name in ("d1", "d2")}
    daemons = {}
    try:
        acme_before = asyncio.run(harness.balance(deployment, harness.ACME))
        daemons["d1"] = harness.start_daemon(file, "d1", logs["d1"])
        daemons["d2"] = harness.start_daemon(file, "d2", logs["d2"], unfenced=True)
        harness.wait_until(
            lambda: _held_by(pg_store, "d1") and _held_by(pg_store, "d2"),
            90,
            "both daemons holding",
        )
        # Whether the stopped daemon has a write in flight to commit when it resumes is
        # timing (a loaded machine once gave none), so it is stopped up to three times.
        for _ in range(3):
            time.sleep(2)
            daemons["d2"].send_signal(signal.SIGSTOP)
            harness.wait_until(
                lambda: len(_held_by(pg_store, "d1")) == 12, 6 * TTL, "d1 to hold all"
            )
            daemons["d2"].send_signal(signal.SIGCONT)
            time.sleep(2 * TTL)
            if harness.stale_commits(pg_store):
                break
            harness.wait_until(lambda: _held_by(pg_store, "d2"), 10 * TTL, "d2 to hold again")
    finally:
        harness.stop_all(daemons)
        figures = harness.check(pg_store, deployment, acme_before) if daemons else None
        devnet.down(deployment)
    assert figures is not None
    print(
        f"\nnegative control (fencing off in the stopped daemon): stale commits "
        f"{figures.stale_commits}, e.g. {figures.stale_examples[:2]}"
    )
    assert figures.stale_commits > 0


def _stop_inside_a_transaction(store: Engine, process: Any, name: str) -> int:
    """SIGSTOP `process` while its database session `name` is inside an open transaction
    (between two statements, the commit's fence check included); the attempts it took."""
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
        "AND state = 'idle in transaction'"
    )
    with store.connect() as connection:
        for attempt in range(1, 200):
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                if connection.execute(query, {"name": name}).scalar_one():
                    process.send_signal(signal.SIGSTOP)
                    break
                connection.rollback()
            else:
                continue
            time.sleep(0.05)
            connection.rollback()
            if connection.execute(query, {"name": name}).scalar_one():
                return attempt  # stopped with the transaction open
            process.send_signal(signal.SIGCONT)
            connection.rollback()
    raise AssertionError(f"{name} was never caught inside an open transaction")


def test_further_faults_a_paused_proxy_and_a_stop_inside_an_open_transaction(
    pg: str, pg_store: Engine, tmp_path: Path
) -> None:
    """d2 reaches the database through a loopback TCP proxy that is paused for longer
    than the TTL (its connections stay open, nothing goes through), and later d2 is
    stopped while one of its transactions is open. Both times d1 takes its agents over,
    and nothing d2 commits afterwards is stale."""
    agents = 8
    file = harness.deployment_file(tmp_path, pg, agents=agents, ttl=f"{TTL:g}s", per_day="1")
    url = make_url(pg)
    proxy = harness.PausableProxy((url.host or "127.0.0.1", url.port or 5432))
    proxied = (
        url.set(host="127.0.0.1", port=proxy.port)
        .update_query_dict({"application_name": "d2"})
        .render_as_string(hide_password=False)
    )
    cut_file = harness.deployment_file(
        tmp_path, proxied, agents=agents, ttl=f"{TTL:g}s", per_day="1", name="proxied.yaml"
    )
    deployment = harness.prepare(file)
    logs = {name: tmp_path / f"{name}.log" for name in ("d1", "d2")}
    daemons = {}
    try:
        acme_before = asyncio.run(harness.balance(deployment, harness.ACME))
        daemons["d1"] = harness.start_daemon(file, "d1", logs["d1"])
        daemons["d2"] = harness.start_daemon(cut_file, "d2", logs["d2"])
        both = (lambda: _held_by(pg_store, "d1") and _held_by(pg_store, "d2"), 90, "both holding")
        harness.wait_until(*both)
        time.sleep(2)
        cut = _held_by(pg_store, "d2")
        since = harness.db_now(pg_store)
        proxy.pause()
        after_pause = _takeover(pg_store, cut, since, timeout=6 * TTL)
        time.sleep(TTL)
        proxy.resume()
        harness.wait_until(*both)
        time.sleep(2)

        stopped = _held_by(pg_store, "d2")
        since = harness.db_now(pg_store)
        attempts = _stop_inside_a_transaction(pg_store, daemons["d2"], "d2")
        after_stop = _takeover(pg_store, stopped, since, timeout=6 * TTL)
        daemons["d2"].send_signal(signal.SIGCONT)
        harness.wait_until(*both)
        time.sleep(2)
    finally:
        harness.stop_all(daemons)
        proxy.close()
        figures = harness.check(pg_store, deployment, acme_before) if daemons else None
        devnet.down(deployment)
    assert figures is not None
    print(
        f"\npaused proxy: {len(cut)} agents taken over, p50 "
        f"{harness.percentile(after_pause, 0.5):.2f}s max {max(after_pause):.2f}s\n"
        f"stopped inside an open transaction (caught after {attempts} attempt(s)): "
        f"{len(stopped)} agents taken over, p50 {harness.percentile(after_stop, 0.5):.2f}s "
        f"max {max(after_stop):.2f}s\n"
        f"fenced rejections of d2: {harness.fenced_rejections(logs['d2'])}; stale commits "
        f"{figures.stale_commits}; (agent, epoch) by two daemons "
        f"{figures.pairs_by_two_daemons}; payments {figures.payments_final}, on chain "
        f"{figures.chain_total} ETH; nonces reused {figures.nonces_reused}"
    )
    assert figures.stale_commits == 0, figures.stale_examples
    assert figures.pairs_by_two_daemons == 0
    assert figures.nonces_reused == 0
    assert figures.audit_broken == []
    assert figures.chain_total == figures.payments_final * harness.AMOUNT
    assert max(after_pause + after_stop) < 4 * TTL
