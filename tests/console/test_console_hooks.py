"""The hooks that feed `/metrics` where the numbers are produced, each on real parts:

- the retry layer counts a read of a closed port as an RPC error of that chain and kind
  `unreachable` (EVM and Solana); negative control: reads of the demo's anvil count none;
- the audit log times every entry it stores, and not one whose commit failed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from web3 import AsyncHTTPProvider, AsyncWeb3

from agents.audit import AuditLog
from agents.console.metrics import ConsoleMetrics
from chains.connect import resolve_url
from chains.families.evm.adapter import EvmAdapter
from chains.families.evm.config import EvmChain
from chains.families.solana._backends import RpcBackend
from chains.families.solana.adapter import SolanaAdapter
from chains.families.solana.config import SolanaChain
from config.errors import AuditError, RpcUnreachable
from config.loader import load_deployment
from config.store import open_store
from tests.agents.conftest import make_signer
from tests.console.conftest import DEMO, DemoDaemon, _free_port


def _samples(metrics: ConsoleMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
        if s.name == name
    }


def _evm(url: str, metrics: ConsoleMetrics) -> EvmAdapter:
    chain = next(c for c in load_deployment(DEMO).chains if c.name == "arbitrum-local")
    assert isinstance(chain, EvmChain)
    provider = AsyncHTTPProvider(url, exception_retry_configuration=None)
    adapter = EvmAdapter(chain, AsyncWeb3(provider, middleware=[]), where=url, nonces=None)
    adapter.rpc_error_hook = metrics.observe_rpc_error
    return adapter


async def test_a_closed_port_counts_unreachable_errors_of_its_chain(tmp_path: Path) -> None:
    metrics = ConsoleMetrics(open_store(f"sqlite:///{tmp_path / 's.db'}"), [])
    closed = f"http://127.0.0.1:{_free_port()}"
    evm = _evm(closed, metrics)
    chain = next(c for c in load_deployment(DEMO).chains if c.name == "solana-local")
    assert isinstance(chain, SolanaChain)
    solana = SolanaAdapter(chain, RpcBackend(closed), where=closed)
    solana.rpc_error_hook = metrics.observe_rpc_error
    try:
        for adapter in (evm, solana):
            with pytest.raises(RpcUnreachable):
                await adapter.height()
    finally:
        await evm.close()
        await solana.close()
    # Four attempts each (the retry layer's), every one a failed request.
    assert _samples(metrics, "covenant_rpc_errors_total") == {
        (("chain", "arbitrum-local"), ("kind", "unreachable")): 4.0,
        (("chain", "solana-local"), ("kind", "unreachable")): 4.0,
    }


@pytest.mark.anvil
@pytest.mark.slow
async def test_reads_of_a_reachable_node_count_no_rpc_error(demo_daemon: DemoDaemon) -> None:
    deployment = load_deployment(demo_daemon.file)
    chain = next(c for c in deployment.chains if c.name == "arbitrum-local")
    url = resolve_url(chain, deployment.data_dir)
    assert url is not None
    metrics = ConsoleMetrics(open_store(deployment.store.url or ""), [])
    adapter = _evm(url, metrics)
    try:
        assert await adapter.height() > 0
        assert await adapter.balance("0x" + "00" * 20) >= 0
    finally:
        await adapter.close()
    assert _samples(metrics, "covenant_rpc_errors_total") == {}


async def test_the_audit_log_times_each_stored_entry_and_no_failed_one(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    metrics = ConsoleMetrics(store, [])
    log = AuditLog(store, {"alice": make_signer()})
    log.commit_hooks.append(metrics.observe_audit_commit)
    for n in range(3):
        await log.record("alice", {"observation_digest": "0" * 64, "note": f"tick {n}"})
    log.append("alice", {"observation_digest": "0" * 64, "note": "sync"})
    assert _samples(metrics, "covenant_audit_commit_seconds_count") == {(): 4.0}
    assert len(log.verify("alice").problems) == 0

    # Negative control: a commit that fails (the table is gone) is not timed.
    with store.begin() as connection:
        connection.execute(sa.text("DROP TABLE audit_entries"))
    with pytest.raises(AuditError):
        await log.record("alice", {"observation_digest": "0" * 64, "note": "lost"})
    await log.drain()
    assert _samples(metrics, "covenant_audit_commit_seconds_count") == {(): 4.0}
    store.dispose()
