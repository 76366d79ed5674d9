"""Cluster mode's parts on a real PostgreSQL: leases (claims, fair share, expiry by the
database clock, epochs), the fence on every kind of write path (a plain transaction, a
group commit mixing agents), the timeouts that take a paused daemon's locks away, the
epoch in authorizations, and the config's refusals (SQLite, a TTL the HTLC margins
cannot absorb).

Daemons here are LeaseStores in one process; tests/agents/test_cluster_daemons.py runs
real daemon processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Connection, Engine

import main
from agents import daemon_state
from agents.cluster.fence import LeaseFence
from agents.cluster.lease import LeaseStore, LeaseTable, cluster_engine, local_deadline, timeouts
from agents.cluster.node import ClusterNode
from agents.cluster.status import daemons, leases
from config import fencing
from config.errors import ConfigError, SignerError
from config.fencing import Fenced
from config.group_commit import GroupCommitter
from config.loader import load_deployment
from config.store import open_store
from wallets.authorization import AuthorizationMint

AGENTS = [f"a{index}" for index in range(9)]
DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"


@pytest.fixture
def store(pg: str) -> Iterator[Engine]:
    engine = open_store(pg, settings=timeouts(2))
    yield engine
    engine.dispose()


class _Daemon:
    """A lease store, its table and its fence: what one daemon holds, without a runtime."""

    def __init__(self, url: str, me: str, ttl: float = 2.0, agents: list[str] = AGENTS) -> None:
        self.engine = cluster_engine(url, ttl)
        self.leases = LeaseStore(self.engine, me, agents, ttl)
        self.table = LeaseTable()
        self.fence = LeaseFence(me, self.table)
        self.ttl = ttl
        self.releasing: set[str] = set()
        self.leases.register()

    def cycle(self, idle: bool = True) -> set[str]:
        """One cycle as ClusterNode runs it: surplus stops at once, is released next."""
        started = time.monotonic()
        result = self.leases.cycle(lambda _agent: idle, self.table.agents(), self.releasing)
        self.table.set(result.held, local_deadline(started, self.ttl))
        self.releasing = set(result.surplus)
        self.table.drop(self.releasing)
        return set(result.held) - self.releasing

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def daemon_factory(pg: str, store: Engine) -> Iterator[Any]:
    made: list[_Daemon] = []

    def make(me: str, **kwargs: Any) -> _Daemon:
        made.append(_Daemon(pg, me, **kwargs))
        return made[-1]

    yield make
    for daemon in made:
        daemon.close()


def test_agents_are_shared_fairly_and_a_newcomer_gets_its_share(daemon_factory: Any) -> None:
    first = daemon_factory("d1")
    assert first.cycle() == set(AGENTS)  # alone: everything
    second = daemon_factory("d2")
    assert second.cycle() == set()  # nothing free yet
    assert len(first.cycle()) == 5  # ceil(9 / 2): it stops acting for the surplus now
    assert second.cycle() == set()  # not released in the store yet
    assert len(first.cycle()) == 5  # ... until this cycle
    assert len(second.cycle()) == 4
    third = daemon_factory("d3")
    third.cycle()
    first.cycle(), second.cycle()
    first.cycle(), second.cycle()
    assert len(third.cycle()) == 3
    held = [first.cycle(), second.cycle(), third.cycle()]
    assert sorted(len(h) for h in held) == [3, 3, 3]
    assert set().union(*held) == set(AGENTS)
    assert sum(map(len, held)) == len(AGENTS)  # no agent held twice


def test_a_busy_agent_is_not_released(daemon_factory: Any) -> None:
    first = daemon_factory("d1")
    first.cycle()
    daemon_factory("d2").cycle()
    assert first.cycle(idle=False) == set(AGENTS)  # every agent mid-tick: kept


def test_expiry_is_judged_by_the_database_and_every_new_owner_bumps_the_epoch(
    daemon_factory: Any, store: Engine
) -> None:
    first = daemon_factory("d1", ttl=1.0, agents=["solo"])
    second = daemon_factory("d2", ttl=1.0, agents=["solo"])
    assert first.cycle() == {"solo"}
    assert first.table.epoch("solo") == 1
    assert second.cycle() == set()  # held and unexpired
    time.sleep(1.3)  # first stops renewing (as if paused)
    assert first.table.epoch("solo") is None  # the local guard: past its deadline
    assert first.table.believed("solo") == 1
    assert second.cycle() == {"solo"}
    assert second.table.epoch("solo") == 2
    assert first.cycle() == set()  # not renewed: it expired and changed owner
    lease = leases(store)["solo"]
    assert (lease.owner, lease.epoch, lease.live) == ("d2", 2, True)
    with store.connect() as connection:
        history = connection.execute(
            sa.text("SELECT epoch, owner, previous_owner FROM cluster_lease_history ORDER BY epoch")
        ).all()
    assert [tuple(row) for row in history] == [(1, "d1", None), (2, "d2", "d1")]


def test_a_write_commits_only_under_the_writers_live_lease(
    daemon_factory: Any, store: Engine
) -> None:
    first = daemon_factory("d1", ttl=1.0, agents=["solo"])
    fencing.install(store, first.fence)
    first.cycle()
    beat = daemon_state.Heartbeat("solo", None, None, 1, 0, "ok", 1)
    with fencing.writing_for("solo"):
        daemon_state.beat(store, beat)
    time.sleep(1.3)
    second = daemon_factory("d2", ttl=1.0, agents=["solo"])
    assert second.cycle() == {"solo"}
    stale = daemon_state.Heartbeat("solo", None, None, 2, 0, "stale", 1)
    refused = r"daemon d1 no longer holds the lease of agent\(s\) solo"
    with pytest.raises(Fenced, match=refused), fencing.writing_for("solo"):
        daemon_state.beat(store, stale)
    assert daemon_state.heartbeats(store)["solo"].ticks == 1  # nothing of it was stored
    assert first.fence.rejections == 1
    # Writes for nobody (the CLI's, the operator's) are not fenced.
    daemon_state.beat(store, daemon_state.Heartbeat("other", None, None, 7, 0, "cli", 1))


def test_work_begun_under_an_epoch_stays_fenced_after_the_agent_is_won_back(
    daemon_factory: Any, store: Engine
) -> None:
    """A daemon paused past its lease may win the agent back while work begun under the
    old epoch (a tick waiting on a chain) is still running: that work must not commit
    under the new lease, whose take-over never saw it. The unpinned write is the negative
    control: without the pin the same late write would go through."""
    first = daemon_factory("d1", ttl=1.0, agents=["solo"])
    fencing.install(store, first.fence)
    assert first.cycle() == {"solo"}
    begun_at = first.table.believed("solo")
    time.sleep(1.3)  # paused past the lease
    second = daemon_factory("d2", ttl=1.0, agents=["solo"])
    assert second.cycle() == {"solo"}
    second.leases.leave(["solo"])  # d2 hands it back (a graceful stop)
    assert first.cycle() == {"solo"}  # ... and d1 wins it again, at a later epoch
    assert first.table.believed("solo") == (begun_at or 0) + 2
    late = daemon_state.Heartbeat("solo", None, None, 9, 0, "late", 1)
    with (
        pytest.raises(Fenced, match="solo"),
        fencing.writing_for("solo", epochs={"solo": begun_at or 0}),
    ):
        daemon_state.beat(store, late)
    assert "solo" not in daemon_state.heartbeats(store)
    with fencing.writing_for("solo"):  # negative control: unpinned, it commits
        daemon_state.beat(store, late)
    assert daemon_state.heartbeats(store)["solo"].ticks == 9

    # The group committer judges each request by the epoch its own work pinned.
    written: list[str] = []
    committer: GroupCommitter[str] = GroupCommitter(
        store, lambda _connection, requests: written.extend(requests), describe=lambda e, _r: e
    )

    async def old_and_new() -> list[BaseException | None]:
        with fencing.writing_for("solo", epochs={"solo": begun_at or 0}):
            old = committer.submit("old epoch")
        with fencing.writing_for("solo", epochs={"solo": first.table.believed("solo") or 0}):
            new = committer.submit("new epoch")
        results = await asyncio.gather(old, new, return_exceptions=True)
        await committer.aclose()
        return list(results)

    old, new = asyncio.run(old_and_new())
    assert isinstance(old, Fenced)
    assert new is None
    assert written == ["new epoch"]


def test_a_group_commit_fails_only_the_requests_of_fenced_agents(
    daemon_factory: Any, store: Engine
) -> None:
    mine = daemon_factory("d1", agents=["kept", "lost"])
    fencing.install(store, mine.fence)
    mine.cycle()
    mine.table.drop(["lost"])  # as if its lease had gone to another daemon
    written: list[str] = []

    def write(connection: Connection, requests: Any) -> None:
        written.extend(requests)

    committer: GroupCommitter[str] = GroupCommitter(store, write, describe=lambda exc, _r: exc)

    async def both() -> list[BaseException | None]:
        with fencing.writing_for("kept"):
            kept = committer.submit("kept entry")
        with fencing.writing_for("lost"):
            lost = committer.submit("lost entry")
        results = await asyncio.gather(kept, lost, return_exceptions=True)
        await committer.aclose()
        return list(results)

    kept, lost = asyncio.run(both())
    assert kept is None
    assert isinstance(lost, Fenced)
    assert lost.agents == {"lost"}
    assert written == ["kept entry"]


def test_a_transaction_left_open_loses_its_locks_to_the_server(pg: str) -> None:
    engine = cluster_engine(pg, ttl=1.0)  # idle-in-transaction timeout: about 333 ms
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))  # a transaction is open now
            time.sleep(1.0)  # paused (SIGSTOP) inside it
            with pytest.raises(sa.exc.DBAPIError, match="idle-in-transaction timeout"):
                connection.execute(sa.text("SELECT 1"))
    finally:
        engine.dispose()


def test_status_reads_leases_and_live_daemons(daemon_factory: Any, store: Engine) -> None:
    first = daemon_factory("d1", agents=["x", "y"])
    first.cycle()
    [only] = daemons(store)
    assert (only.daemon, only.live, only.agents) == ("d1", True, ("x", "y"))


def test_authorizations_carry_the_epoch_and_signers_refuse_an_older_one() -> None:
    held: dict[str, int] = {"a": 3}
    mint = AuthorizationMint(epochs=held.get)
    digest = bytes(32)
    auth = mint.mint("a", digest, timedelta(minutes=1))
    assert auth.epoch == 3
    mint.verifier.check(auth, agent="a", digest=digest)
    held["a"] = 5  # lost and won back since: the old authorization is dead
    with pytest.raises(
        SignerError, match="minted under lease epoch 3 and the agent is now at epoch 5"
    ):
        mint.verifier.check(auth, agent="a", digest=digest)
    del held["a"]
    with pytest.raises(SignerError, match="does not hold the agent's lease"):
        mint.verifier.check(auth, agent="a", digest=digest)
    with pytest.raises(SignerError, match="not minting for agent 'a'"):
        mint.mint("a", digest, timedelta(minutes=1))
    # The epoch is signed: moving a copy to the current epoch breaks the signature.
    held["a"] = 5
    with pytest.raises(SignerError, match="not signed by this runtime"):
        mint.verifier.check(auth.model_copy(update={"epoch": 5}), agent="a", digest=digest)


def _deployment_file(tmp_path: Path, **extra: Any) -> Path:
    data = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "config" / "demo.yaml").read_text()
    )
    data.pop("console", None)
    data.update(extra)
    file = tmp_path / "demo.yaml"
    file.write_text(yaml.safe_dump(data), encoding="utf-8")
    (tmp_path / "demo-invoices.yaml").write_text("[]", encoding="utf-8")
    return file


def test_cluster_mode_is_refused_on_sqlite_naming_the_store(tmp_path: Path) -> None:
    file = _deployment_file(tmp_path, cluster={"lease_ttl": "5s"})
    with pytest.raises(ConfigError, match="cluster mode needs a PostgreSQL store") as info:
        load_deployment(file)
    assert "default SQLite file" in str(info.value)
    assert "postgresql+psycopg://" in str(info.value)
    url = f"sqlite:///{tmp_path / 's.db'}"
    file = _deployment_file(tmp_path, cluster={}, store={"url": url})
    with pytest.raises(ConfigError, match=f"store url '{url}'"):
        load_deployment(file)


def test_run_with_ticks_is_refused_in_cluster_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cluster daemon may never tick the agents others hold, so `--ticks N` would never
    end: refused before anything is touched (the URL points at no server)."""

    file = _deployment_file(
        tmp_path,
        cluster={"lease_ttl": "1s"},
        store={"url": "postgresql+psycopg://u:p@127.0.0.1:9/x"},
    )
    assert main.main(["run", str(file), "--ticks", "1"]) == 1
    printed = capsys.readouterr()
    assert "in cluster mode the daemons share the agents out" in printed.out + printed.err
    assert not (tmp_path / ".covenant").exists()  # nothing was made


def test_a_deployment_scope_limit_is_accepted_in_cluster_mode(tmp_path: Path) -> None:
    # Judged in the store across daemons: tests/policies/test_shared_spend_limit.py.
    data = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "config" / "demo.yaml").read_text()
    )
    agent = data["agents"][0]
    agent["policies"].append({"SpendLimit": {"scope": "deployment", "per_transaction": {}}})
    file = _deployment_file(
        tmp_path,
        agents=data["agents"],
        cluster={"lease_ttl": "1s"},
        store={"url": "postgresql+psycopg://u:p@127.0.0.1/x"},
    )
    assert load_deployment(file).cluster is not None


def test_a_ttl_the_htlc_margins_cannot_absorb_is_refused(tmp_path: Path) -> None:
    file = _deployment_file(
        tmp_path,
        cluster={"lease_ttl": "3s"},
        store={"url": "postgresql+psycopg://u:p@127.0.0.1/x"},
    )
    with pytest.raises(
        ConfigError, match=r"within about 4s, more than atomic.watcher_interval \(2s\)"
    ):
        load_deployment(file)


def test_the_mint_sees_no_epoch_for_work_pinned_under_another(tmp_path: Path) -> None:
    """ClusterNode.epoch, which the mint and the signers ask, answers only for the epoch
    the running work pinned: a tick begun under epoch 1 gets nothing once the agent is
    held at epoch 3, while unpinned work and work pinned at 3 get 3 (the controls)."""
    file = _deployment_file(
        tmp_path,
        cluster={"lease_ttl": "1s"},
        store={"url": "postgresql+psycopg://u:p@127.0.0.1:9/x"},  # never connected to
    )
    deployment = load_deployment(file)
    node = ClusterNode(deployment)
    try:
        agent = deployment.agents[0].name
        node.table.set({agent: 3}, local_deadline(time.monotonic(), node.ttl))
        assert node.epoch(agent) == 3
        with fencing.writing_for(agent, epochs={agent: 1}):
            assert node.epoch(agent) is None
        with node.writing_for(agent):
            assert node.epoch(agent) == 3
    finally:
        node.close()
