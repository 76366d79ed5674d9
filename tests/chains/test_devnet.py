"""`devnet up | status | down` and `connect`: real processes, real funding."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from chains.connect import connect, fund_local, resolve_url
from chains.devnet import manager
from chains.families.evm.adapter import EvmAdapter
from chains.families.solana.adapter import SolanaAdapter
from config.errors import ChainError
from config.loader import load_deployment
from config.models import Deployment
from main import main
from tests.chains.conftest import needs_anvil

EVM_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
SOL_ADDRESS = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"

DEPLOYMENT = """
version: 1
name: devtest
data_dir: data
operator: {name: op}
chains:
  - {name: l2-a, family: evm, chain_id: 31337, rpc: local, local: {fund_agents: "7"}, htlc: local}
  - {name: l2-b, family: evm, chain_id: 8453, rpc: local}
  - {name: sol, family: solana, cluster: localnet, rpc: local, local: {fund_agents: "3"},
     htlc: local}
  - {name: remote, family: evm, chain_id: 10, rpc: "http://127.0.0.1:9"}
planners:
  - {name: s, kind: scripted}
"""


@pytest.fixture
def deployment_file(tmp_path: Path) -> Path:
    path = tmp_path / "deploy.yaml"
    path.write_text(DEPLOYMENT, encoding="utf-8")
    return path


@needs_anvil
@pytest.mark.anvil
@pytest.mark.slow
def test_devnet_up_funds_serves_and_down_stops(deployment_file, capsys):
    deployment = load_deployment(deployment_file)
    argv = ["devnet", "up", str(deployment_file), "--fund", EVM_ADDRESS, "--fund", SOL_ADDRESS]
    try:
        assert main(argv) == 0
        assert "l2-a" in capsys.readouterr().out
        nodes = manager.read_state(deployment.data_dir or "").nodes
        assert sorted(nodes) == ["l2-a", "l2-b", "sol"]
        asyncio.run(_check_chains(deployment))
        pids = {node.pid for node in nodes.values()}
        assert main(["devnet", "up", str(deployment_file)]) == 0  # idempotent: same nodes
        assert {n.pid for n in manager.read_state(deployment.data_dir or "").nodes.values()} == pids
        assert main(["devnet", "status", str(deployment_file)]) == 0
        assert capsys.readouterr().out.count("running") == 3
    finally:
        assert main(["devnet", "down", str(deployment_file)]) == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    assert resolve_url(deployment.chain("l2-a"), deployment.data_dir) is None


async def _check_chains(deployment: Deployment) -> None:
    expected = {"l2-a": 7 * 10**18, "l2-b": 100 * 10**18, "sol": 3 * 10**9}
    for name, amount in expected.items():
        chain = deployment.chain(name)
        url = resolve_url(chain, deployment.data_dir)
        assert url is not None
        assert url.startswith("http://127.0.0.1:")
        async with await connect(chain, data_dir=deployment.data_dir) as adapter:
            address = EVM_ADDRESS if chain.family == "evm" else SOL_ADDRESS
            assert await adapter.balance(address) == amount
    await _check_htlcs(deployment)


async def _check_htlcs(deployment: Deployment) -> None:
    """`htlc: local` chains carry the project's own HTLC builds; others none."""
    import httpx

    from chains.devnet._htlc import htlc_address
    from chains.families.evm import htlc_client as evm_client

    def rpc(chain: str, method: str, params: list[object]) -> object:
        url = resolve_url(deployment.chain(chain), deployment.data_dir)
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        return httpx.post(str(url), json=body, timeout=10).json()["result"]

    contract = htlc_address(deployment.chain("l2-a"))
    code = str(rpc("l2-a", "eth_getCode", [contract, "latest"]))
    assert len(code) > 1000
    assert evm_client.bytecode().hex().endswith(code[-200:].removeprefix("0x"))
    assert rpc("l2-b", "eth_getCode", [contract, "latest"]) == "0x"
    assert htlc_address(deployment.chain("l2-b")) is None
    program = rpc("sol", "getAccountInfo", [htlc_address(deployment.chain("sol"))])
    assert isinstance(program, dict)
    assert program["value"]["executable"] is True


@needs_anvil
@pytest.mark.anvil
@pytest.mark.slow
async def test_anvil_state_survives_devnet_down_and_up(deployment_file):
    deployment = load_deployment(deployment_file)
    try:
        await manager.up(deployment, fund=[EVM_ADDRESS])
        manager.down(deployment)
        await manager.up(deployment)  # no funding this time
        async with await connect(deployment.chain("l2-a"), data_dir=deployment.data_dir) as adapter:
            assert isinstance(adapter, EvmAdapter)
            assert await adapter.balance(EVM_ADDRESS) == 7 * 10**18
        await _check_htlcs(deployment)  # installed again on the new Solana server
    finally:
        manager.down(deployment)


async def test_connect_falls_back_to_in_process_chains(deployment_file):
    deployment = load_deployment(deployment_file)
    evm, sol = deployment.chain("l2-b"), deployment.chain("sol")
    await fund_local(evm, [EVM_ADDRESS, SOL_ADDRESS], data_dir=deployment.data_dir)
    await fund_local(sol, [EVM_ADDRESS, SOL_ADDRESS], data_dir=deployment.data_dir)
    async with await connect(evm, data_dir=deployment.data_dir) as adapter:
        assert isinstance(adapter, EvmAdapter)
        assert await adapter.balance(EVM_ADDRESS) >= 100 * 10**18
    async with await connect(sol, data_dir=deployment.data_dir) as adapter:
        assert isinstance(adapter, SolanaAdapter)
        assert await adapter.balance(SOL_ADDRESS) >= 3 * 10**9
    with pytest.raises(ChainError, match=r"not local"):
        await fund_local(deployment.chain("remote"), [EVM_ADDRESS], data_dir=None)


def _zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True


def test_stale_state_file_is_not_trusted(deployment_file):
    deployment = load_deployment(deployment_file)
    stale = manager.LocalNode(
        chain="l2-a", kind="anvil", url="http://127.0.0.1:1", pid=os.getpid(), port=1
    )
    manager._write_state(deployment.data_dir or "", manager.DevnetState(nodes={"l2-a": stale}))
    assert not manager.is_running(stale)  # our PID is python, not anvil
    assert resolve_url(deployment.chain("l2-a"), deployment.data_dir) is None


PACED = """
version: 1
name: paced
data_dir: data
operator: {name: op}
chains:
  - {name: paced, family: evm, chain_id: 31337, rpc: local, local: {block_time: 0.5}}
  - {name: instant, family: evm, chain_id: 8453, rpc: local}
  - {name: sol, family: solana, cluster: localnet, rpc: local, local: {block_time: 0.1}}
planners:
  - {name: s, kind: scripted}
"""


@needs_anvil
@pytest.mark.anvil
def test_local_block_time_sets_the_nodes_pace(tmp_path: Path):
    """`local.block_time` makes anvil mine on a clock (`--block-time`) and the Solana
    server make its slots that often; a chain without it (the negative control) mines
    only when a transaction comes, so its height stands still."""
    import time

    import httpx

    path = tmp_path / "paced.yaml"
    path.write_text(PACED, encoding="utf-8")
    deployment = load_deployment(path)

    def heights() -> dict[str, int]:
        method = {"paced": "eth_blockNumber", "instant": "eth_blockNumber", "sol": "getSlot"}
        found = {}
        for name, call in method.items():
            url = resolve_url(deployment.chain(name), deployment.data_dir)
            body = {"jsonrpc": "2.0", "id": 1, "method": call, "params": []}
            result = httpx.post(str(url), json=body, timeout=10).json()["result"]
            found[name] = int(result, 16) if isinstance(result, str) else int(result)
        return found

    try:
        assert main(["devnet", "up", str(path)]) == 0
        before = heights()
        time.sleep(2)
        grown = {name: height - before[name] for name, height in heights().items()}
    finally:
        assert main(["devnet", "down", str(path)]) == 0
    assert grown["instant"] == 0
    assert 2 <= grown["paced"] <= 6, grown  # about 4 blocks of 0.5 s in 2 s
    assert grown["sol"] >= 12, grown  # about 20 slots of 0.1 s (5 at the default 0.4 s)
