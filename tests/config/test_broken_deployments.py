"""Broken deployments: each gives one clear message naming file, line and field.

Every case edits one thing in a valid deployment; the test checks the exit code, the
`file:line: field` prefix, a phrase saying what is wrong, and that no traceback leaks.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import main

ROOT = Path(__file__).resolve().parents[2]

VALID = """\
version: 1
name: shop
operator:
  name: ops
chains:
  - name: arb
    family: evm
    chain_id: 42161
    rpc: https://arb1.example.org
    fees: {max_fee_gwei: "2", max_priority_fee_gwei: "0.01"}
  - name: sol
    family: solana
    cluster: mainnet-beta
    rpc: https://sol.example.org
assets:
  - {symbol: ETH, chain: arb, native: true, decimals: 18, usd_price: "3000"}
  - {symbol: SOL, chain: sol, native: true, decimals: 9}
address_book:
  - name: acme
    addresses:
      arb: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
      sol: "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
planners:
  - name: llama
    kind: ollama
    model: llama3.1:8b
agents:
  - name: payer
    schedule: {cron: "*/5 * * * *"}
    mandate: Pay acme.
    planner: llama
    chains: [arb]
    counterparties: [acme]
    policies:
      - SpendLimit: {per_transaction: {ETH: "0.1"}}
"""


@dataclass(frozen=True)
class Case:
    """Replace `old` by `new` in VALID; expect `field` and `phrase` at the line of `at`."""

    id: str
    old: str
    new: str
    field: str
    phrase: str
    at: str


CASES = [
    Case("unknown-top-key", "agents:\n", "agnets:\n", "agnets", "did you mean 'agents'", "agnets:"),
    Case(
        "unknown-nested-key",
        "    rpc: https://arb1",
        "    rpcc: https://arb1",
        "chains[0].rpcc",
        "did you mean 'rpc'",
        "rpcc:",
    ),
    Case(
        "wrong-type",
        "chain_id: 42161",
        "chain_id: forty-two",
        "chains[0].chain_id",
        "valid integer",
        "chain_id:",
    ),
    Case(
        "missing-required",
        "    model: llama3.1:8b\n",
        "",
        "planners[0].model",
        "missing required field 'model'",
        "  - name: llama",
    ),
    Case(
        "duplicate-agent",
        "agents:\n",
        "agents:\n  - {name: payer, schedule: {every: 1m}, "
        "mandate: x, planner: llama, chains: [arb]}\n",
        "agents[1].name",
        "duplicate agents name 'payer'",
        "  - name: payer\n    schedule: {cron",
    ),
    Case(
        "unknown-planner",
        "planner: llama",
        "planner: lama",
        "agents[0].planner",
        "did you mean 'llama'",
        "planner: lama",
    ),
    Case(
        "unknown-chain",
        "chains: [arb]",
        "chains: [arbitrum]",
        "agents[0].chains[0]",
        "unknown chain 'arbitrum'",
        "chains: [arbitrum]",
    ),
    Case(
        "unknown-counterparty",
        "counterparties: [acme]",
        "counterparties: [acne]",
        "agents[0].counterparties[0]",
        "did you mean 'acme'",
        "counterparties: [acne]",
    ),
    Case(
        "unknown-asset",
        "    counterparties: [acme]",
        "    assets: [USDC]\n    counterparties: [acme]",
        "agents[0].assets[0]",
        "unknown asset 'USDC'",
        "assets: [USDC]",
    ),
    Case(
        "bad-checksum",
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "0x70997970c51812dc3A010C7d01b50e0d17dc79C8",
        "address_book[0].addresses.arb",
        "wrong EIP-55 checksum",
        'arb: "0x7099',
    ),
    Case(
        "not-hex",
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "0x7099zz",
        "address_book[0].addresses.arb",
        "not an EVM address",
        'arb: "0x7099',
    ),
    Case(
        "bad-solana",
        "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
        "9WzDXwBbmkg8ZT0OIl",
        "address_book[0].addresses.sol",
        "not a Solana address",
        'sol: "9Wz',
    ),
    Case(
        "short-solana",
        "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
        "9WzDXwBbmkg8ZT",
        "address_book[0].addresses.sol",
        "32-byte",
        'sol: "9Wz',
    ),
    Case(
        "bad-cron",
        '"*/5 * * * *"',
        '"*/5 * * *"',
        "agents[0].schedule.cron",
        "not a valid cron expression",
        "schedule: {cron",
    ),
    Case(
        "bad-cron-range",
        '"*/5 * * * *"',
        '"0 25 * * *"',
        "agents[0].schedule.cron",
        "not a valid cron expression",
        "schedule: {cron",
    ),
    Case(
        "negative-amount",
        'max_fee_gwei: "2"',
        'max_fee_gwei: "-2"',
        "chains[0].fees.max_fee_gwei",
        "greater than zero",
        "fees: {",
    ),
    Case(
        "float-amount",
        'usd_price: "3000"',
        "usd_price: 3000.5",
        "assets[0].usd_price",
        "is a float; write it as a quoted decimal string",
        "symbol: ETH",
    ),
    Case(
        "not-a-number",
        'usd_price: "3000"',
        'usd_price: "lots"',
        "assets[0].usd_price",
        "not a decimal number",
        "symbol: ETH",
    ),
    Case(
        "zero-amount",
        'usd_price: "3000"',
        'usd_price: "0"',
        "assets[0].usd_price",
        "greater than zero",
        "symbol: ETH",
    ),
    Case(
        "missing-env",
        "https://sol.example.org",
        "${COVENANT_TEST_UNSET_URL}",
        "chains[1].rpc",
        "COVENANT_TEST_UNSET_URL is not set",
        "COVENANT_TEST_UNSET_URL",
    ),
    Case(
        "pyth-feed-on-an-evm-chain",
        "address_book:\n",
        "prices:\n  - symbol: SOL\n    sources:\n      - {kind: pyth, chain: arb, "
        'account: "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM", max_age: 60s}\naddress_book:\n',
        "prices[0].sources[0].chain",
        "a pyth feed is read on Solana chains; chain 'arb' is not one",
        "{kind: pyth",
    ),
    Case(
        "local-feed-on-a-remote-chain",
        "address_book:\n",
        "prices:\n  - symbol: SOL\n    sources:\n      - {kind: pyth, chain: sol, "
        "account: local, max_age: 60s}\naddress_book:\n",
        "prices[0].sources[0].account",
        "`account: local` needs `rpc: local`",
        "{kind: pyth",
    ),
    Case(
        "two-sources-without-deviation",
        "address_book:\n",
        'prices:\n  - symbol: SOL\n    sources:\n      - {kind: fixed, usd: "150"}\n'
        '      - {kind: fixed, usd: "151"}\naddress_book:\n',
        "prices[0]",
        "set max_deviation",
        "  - symbol: SOL",
    ),
    Case(
        "priced-twice",
        "address_book:\n",
        'prices:\n  - {symbol: ETH, sources: [{kind: fixed, usd: "3000"}]}\naddress_book:\n',
        "prices[0].symbol",
        "also sets usd_price",
        "  - {symbol: ETH, sources",
    ),
    Case("yaml-syntax", "chains: [arb]", "chains: [arb", "", "YAML syntax error", "chains: [arb\n"),
    Case("tab-indent", "  name: ops", "\tname: ops", "", "tabs", "\tname: ops"),
    Case(
        "duplicate-yaml-key",
        "  name: ops\n",
        "  name: ops\n  name: ops2\n",
        "operator.name",
        "duplicate key 'name'",
        "name: ops2",
    ),
    Case("unknown-family", "family: evm", "family: cosmos", "chains[0]", "family", "  - name: arb"),
    Case(
        "unknown-planner-kind",
        "kind: ollama",
        "kind: openai",
        "planners[0]",
        "kind",
        "  - name: llama",
    ),
    Case(
        "secret-in-yaml",
        "  name: ops\n",
        "  name: ops\n  passphrase: hunter2\n",
        "operator.passphrase",
        "secrets are never read from YAML",
        "passphrase:",
    ),
    Case(
        "duplicate-chain-id",
        "rpc: https://sol.example.org",
        "rpc: https://sol.example.org\n  - {name: op, "
        "family: evm, chain_id: 42161, rpc: https://op.example.org}",
        "chains[2].chain_id",
        "chain id 42161 is used by both",
        "name: op,",
    ),
    Case(
        "erc20-on-solana",
        "{symbol: SOL, chain: sol, native: true, decimals: 9}",
        "{symbol: USDC, chain: sol, decimals: 6, "
        'erc20: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}',
        "assets[1].erc20",
        "erc20 token on non-EVM chain",
        "symbol: USDC",
    ),
    Case(
        "rpc-not-url",
        "rpc: https://arb1.example.org",
        "rpc: arb1.example.org",
        "chains[0].rpc",
        "must be an http(s):// URL",
        "rpc: arb1",
    ),
    Case(
        "schedule-without-kind",
        '{cron: "*/5 * * * *"}',
        "{at: noon}",
        "agents[0].schedule",
        "one of the keys every, cron",
        "schedule: {at",
    ),
    Case(
        "interval-not-duration",
        '{cron: "*/5 * * * *"}',
        "{every: soon}",
        "agents[0].schedule.every",
        "not a positive duration",
        "schedule: {every",
    ),
    Case(
        "address-book-unknown-agent",
        "  - name: acme\n",
        "  - name: bob\n    agent: bob\n  - name: acme\n",
        "address_book[0].agent",
        "unknown agent 'bob'",
        "agent: bob",
    ),
    Case(
        "policy-two-keys",
        '- SpendLimit: {per_transaction: {ETH: "0.1"}}',
        "- {SpendLimit: {}, RateLimit: {}}",
        "agents[0].policies",
        "one-key mapping",
        "- {SpendLimit",
    ),
    Case(
        "duplicate-chain-name",
        "  - name: sol\n",
        "  - name: arb\n",
        "chains[1].name",
        "duplicate chains name 'arb'",
        "  - name: arb\n    family: solana",
    ),
    Case(
        "priority-above-max",
        'max_priority_fee_gwei: "0.01"',
        'max_priority_fee_gwei: "3"',
        "chains[0].fees",
        "exceeds max_fee_gwei",
        "fees: {",
    ),
    Case(
        "htlc-local-on-remote-chain",
        "    rpc: https://arb1.example.org\n",
        "    rpc: https://arb1.example.org\n    htlc: local\n",
        "chains[0]",
        "htlc `local` needs `rpc: local`",
        "  - name: arb",
    ),
    Case(
        "htlc-not-an-address",
        "    rpc: https://sol.example.org\n",
        "    rpc: https://sol.example.org\n    htlc: 0xabc\n",
        "chains[1].htlc",
        "is not a Solana address",
        "htlc: 0xabc",
    ),
    Case(
        "atomic-margin-of-unknown-chain",
        "agents:\n",
        "atomic:\n  chains:\n    arbitrum: {inclusion: 10, finality: 5}\nagents:\n",
        "atomic.chains.arbitrum",
        "unknown chain 'arbitrum'",
        "    arbitrum: {",
    ),
    Case(
        "bad-name",
        "  - name: payer",
        "  - name: Payer!",
        "agents[0].name",
        "should match pattern",
        "name: Payer!",
    ),
]


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_broken_deployment_names_file_line_and_field(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert case.old in VALID, case.id
    text = VALID.replace(case.old, case.new, 1)
    file = tmp_path / "deployment.yaml"
    file.write_text(text)

    code = main.main(["config", "validate", str(file)])

    captured = capsys.readouterr()
    message = " ".join(captured.err.split())
    assert code == 1
    assert "Traceback" not in captured.err + captured.out
    assert f"{file}:{_line_of(text, case.at)}:" in message
    assert case.field in message
    assert case.phrase in message
    assert len(captured.err.strip().splitlines()) >= 1


def test_valid_base_deployment_passes(tmp_path: Path) -> None:
    file = tmp_path / "deployment.yaml"
    file.write_text(VALID)
    assert main.main(["config", "validate", str(file)]) == 0


def test_missing_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert main.main(["config", "validate", str(missing)]) == 1
    assert f"{missing}: file not found" in capsys.readouterr().err


def test_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "empty.yaml"
    file.write_text("# nothing yet\n")
    assert main.main(["config", "validate", str(file)]) == 1
    assert "the file is empty" in capsys.readouterr().err


def test_env_interpolation_and_escape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from config import load_deployment

    monkeypatch.setenv("SOL_RPC", "https://rpc.example.net")
    text = VALID.replace("https://sol.example.org", "${SOL_RPC}").replace(
        "mandate: Pay acme.", "mandate: Pay acme $${NOT_A_VAR}."
    )
    file = tmp_path / "d.yaml"
    file.write_text(text)
    deployment = load_deployment(file)
    assert deployment.chain("sol").rpc == "https://rpc.example.net"
    assert deployment.agent("payer").mandate == "Pay acme ${NOT_A_VAR}."


def test_cli_process_exits_nonzero_without_traceback(tmp_path: Path) -> None:
    file = tmp_path / "d.yaml"
    file.write_text(VALID.replace("planner: llama", "planner: lama"))
    result = subprocess.run(
        [sys.executable, "main.py", "config", "validate", str(file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "agents[0].planner: unknown planner 'lama'; did you mean 'llama'?" in result.stderr
