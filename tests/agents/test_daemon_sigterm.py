"""SIGTERM during ticks, then restart: nothing lost, nothing done twice.

The daemon runs as its own process (`main.py run`) against anvil (started by `devnet
up`, so the chain outlives the daemon). It is stopped with SIGTERM several times while
it pays; in the end every scripted payment happened exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from agents.audit import verify as verify_audit
from agents.daemon_state import heartbeats
from chains.connect import connect
from chains.devnet import manager as devnet
from chains.families.evm._anvil import anvil_path
from config.loader import load_deployment
from config.models import Deployment
from config.store import open_store
from wallets.operator import create_keystore

ROOT = Path(__file__).resolve().parents[2]
ACME = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
MNEMONIC = "test test test test test test test test test test test junk"
PASSPHRASE = "sigterm test passphrase"
PAYMENTS = 4

pytestmark = [pytest.mark.anvil, pytest.mark.slow]


def _payment() -> dict[str, object]:
    return {
        "confidence": "0.9",
        "actions": [
            {
                "kind": "transfer",
                "chain": "arb",
                "asset": "ETH",
                "amount": "0.01",
                "counterparty": "acme",
            }
        ],
    }


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    if anvil_path() is None:
        pytest.skip("anvil not installed: run `npm ci` (scripts/setup.sh does)")
    data = {
        "name": "sig",
        "operator": {"name": "op"},
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
        "planners": [
            {"name": "script", "kind": "scripted", "plans": [_payment() for _ in range(PAYMENTS)]}
        ],
        "agents": [
            {
                "name": "payer",
                "schedule": {"every": "1s"},
                "mandate": "Pay acme.",
                "planner": "script",
                "chains": ["arb"],
                "policies": [
                    {"Allowlist": {"recipients": ["acme"]}},
                    {"SpendLimit": {"per_transaction": {"ETH": "0.01"}}},
                ],
            }
        ],
    }
    file = tmp_path / "sig.yaml"
    file.write_text(yaml.safe_dump(data))
    loaded = load_deployment(file)
    create_keystore(loaded, MNEMONIC, PASSPHRASE)
    engine = open_store(loaded.store.url or "")
    from wallets.operator import open_wallets

    payer = open_wallets(loaded, engine, PASSPHRASE).agent("payer").evm_address
    engine.dispose()
    asyncio.run(devnet.up(loaded, fund=[payer]))
    try:
        yield loaded
    finally:
        devnet.down(loaded)


def _daemon(file: Path, ticks: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "COVENANT_PASSPHRASE": PASSPHRASE}
    return subprocess.Popen(
        [sys.executable, "main.py", "run", str(file), "--ticks", str(ticks)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _ticks(deployment: Deployment) -> int:
    engine = open_store(deployment.store.url or "")
    try:
        beat = heartbeats(engine).get("payer")
        return beat.ticks if beat else 0
    finally:
        engine.dispose()


async def _acme_balance(deployment: Deployment) -> int:
    adapter = await connect(deployment.chains[0], data_dir=deployment.data_dir)
    try:
        return await adapter.balance(ACME)
    finally:
        await adapter.close()


def test_sigterm_mid_run_then_restart_loses_nothing_and_repeats_nothing(
    deployment: Deployment, tmp_path: Path
) -> None:
    file = tmp_path / "sig.yaml"
    before = asyncio.run(_acme_balance(deployment))
    for _ in range(2):
        daemon = _daemon(file, ticks=PAYMENTS + 2)
        seen = _ticks(deployment)
        deadline = time.monotonic() + 120
        while _ticks(deployment) == seen and daemon.poll() is None:
            assert time.monotonic() < deadline, "the daemon never ticked"
            time.sleep(0.05)
        daemon.send_signal(signal.SIGTERM)  # a tick is usually in flight right now
        _, stderr = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, stderr.decode()[-2000:]
        assert b"Traceback" not in stderr

    final = _daemon(file, ticks=PAYMENTS + 2)
    _, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr.decode()[-2000:]

    assert asyncio.run(_acme_balance(deployment)) - before == PAYMENTS * 10**16
    engine = open_store(deployment.store.url or "")
    with engine.connect() as connection:
        journal = sa.Table("chain_tx_journal", sa.MetaData(), autoload_with=connection)
        rows = connection.execute(sa.select(journal)).all()
    assert len(rows) == PAYMENTS
    audit = verify_audit(engine, "payer")
    assert audit.ok
    engine.dispose()
