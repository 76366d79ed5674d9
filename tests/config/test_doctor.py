"""`doctor` against real HTTP endpoints: unreachable, wrong chain id, wrong cluster."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

import main

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _JsonRpc(BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, Any]] = {}

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps(
            {"jsonrpc": "2.0", "id": request["id"], "result": self.answers[request["method"]]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def solana_like() -> Iterator[str]:
    """A JSON-RPC server on loopback answering getGenesisHash with Solana devnet's."""
    handler = type(
        "Handler",
        (_JsonRpc,),
        {"answers": {"getGenesisHash": "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG"}},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def anvil() -> Iterator[str]:
    """A real anvil with chain id 31337."""
    if not ANVIL.exists():
        pytest.skip("anvil not installed: run `npm ci` (bash .ci/run does)")
    port = _free_port()
    process = subprocess.Popen([str(ANVIL), "--port", str(port), "--chain-id", "31337", "--silent"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


def _deployment(tmp_path: Path, chains: str) -> Path:
    file = tmp_path / "d.yaml"
    file.write_text(f"""\
name: doc
operator: {{name: ops}}
chains:
{chains}
planners: [{{name: s, kind: scripted}}]
""")
    (tmp_path / ".covenant" / "doc" / "keystore").mkdir(parents=True)
    return file


def _doctor(file: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main.main(["doctor", str(file), "--timeout", "3"])
    return code, " ".join(capsys.readouterr().out.split())


def test_unreachable_rpc_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    file = _deployment(tmp_path, f"  - {{name: arb, family: evm, chain_id: 42161, rpc: '{url}'}}")
    code, out = _doctor(file, capsys)
    assert code == 1
    assert "unreachable" in out
    assert "fail" in out


@pytest.mark.anvil
def test_wrong_chain_id_is_reported(
    tmp_path: Path, anvil: str, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _deployment(tmp_path, f"  - {{name: arb, family: evm, chain_id: 42161, rpc: '{anvil}'}}")
    code, out = _doctor(file, capsys)
    assert code == 1
    assert "endpoint serves chain id 31337, deployment says 42161" in out


@pytest.mark.anvil
def test_right_chain_id_passes(
    tmp_path: Path, anvil: str, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _deployment(tmp_path, f"  - {{name: arb, family: evm, chain_id: 31337, rpc: '{anvil}'}}")
    code, out = _doctor(file, capsys)
    assert "chain id 31337" in out
    assert code == 0, out


def test_wrong_solana_cluster_is_reported(
    tmp_path: Path, solana_like: str, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _deployment(
        tmp_path, f"  - {{name: sol, family: solana, cluster: mainnet-beta, rpc: '{solana_like}'}}"
    )
    code, out = _doctor(file, capsys)
    assert code == 1
    assert "which is not cluster mainnet-beta" in out


def test_missing_keystore_and_unreachable_ollama(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "d.yaml"
    port = _free_port()
    file.write_text(f"""\
name: doc
operator: {{name: ops}}
chains: [{{name: sol, family: solana, cluster: localnet, rpc: local}}]
planners: [{{name: o, kind: ollama, model: llama3.1, base_url: 'http://127.0.0.1:{port}'}}]
agents: [{{name: a, schedule: {{every: 1m}}, mandate: wait, planner: o, chains: [sol]}}]
""")
    code, out = _doctor(file, capsys)
    assert code == 1
    assert "Ollama at http://127.0.0.1" in out
    assert "is unreachable" in out
    assert "`ollama serve`" in out
    assert "keys init" in out
    assert "migrated and writable" in out


def test_doctor_runs_each_planners_own_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The embedded planner's check loads its model: a missing model file fails by name,
    and a planner no agent uses is skipped, not checked."""
    file = tmp_path / "d.yaml"
    file.write_text(f"""\
name: doc
operator: {{name: ops}}
chains: [{{name: sol, family: solana, cluster: localnet, rpc: local}}]
planners:
  - {{name: e, kind: embedded, model_path: '{tmp_path / "missing.gguf"}'}}
  - {{name: unused, kind: scripted, plans: []}}
agents: [{{name: a, schedule: {{every: 1m}}, mandate: wait, planner: e, chains: [sol]}}]
""")
    code, out = _doctor(file, capsys)
    flat = " ".join(out.split())
    assert code == 1
    assert "missing.gguf" in flat
    assert "no agent uses it" in flat
