"""`swaps list | show | recover` against a deployment's store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer

import main
from chains.atomic import Leg, PlanRecord, PlanStore
from config.loader import load_deployment
from config.store import open_store

DEMO = Path(main.__file__).resolve().parent / "config" / "demo.yaml"


def _deployment(tmp_path: Path) -> Path:
    text = DEMO.read_text().replace("data_dir: ../.covenant/demo", f"data_dir: {tmp_path}")
    file = tmp_path / "covenant.yaml"
    file.write_text(text)
    return file


def _leg(locator: str) -> Leg:
    return Leg(
        index=0,
        chain="arbitrum-local",
        sender="0x" + "11" * 20,
        recipient="0x" + "22" * 20,
        amount=5,
        deadline=1_900_000_000,
        locator=locator,
    )


def _journal_plan(file: Path) -> None:
    engine = open_store(load_deployment(file).store.url or "")
    leg = _leg("0x" + "ab" * 32)
    PlanStore(engine).create(
        PlanRecord(
            plan_id="pay-1",
            agent="payer",
            kind="plan",
            state="locking",
            hashlock=bytes(32),
            preimage_journaled=True,
            legs=(leg,),
        )
    )
    engine.dispose()


def test_list_and_show_read_the_store(tmp_path, capsys, monkeypatch):
    from agents.app.commands import swaps as cli

    monkeypatch.setattr(cli.console, "width", 300)
    file = _deployment(tmp_path)
    _journal_plan(file)
    assert main.main(["swaps", "list", str(file)]) == 0
    listed = capsys.readouterr().out
    assert "pay-1" in listed
    assert "locking" in listed
    assert main.main(["swaps", "show", str(file), "pay-1"]) == 0
    shown = capsys.readouterr().out
    assert "never stored" in shown
    assert "0x" + "ab" * 32 in shown  # the escrow id
    assert "planned" in shown


def test_show_unknown_plan_is_one_red_line(tmp_path, capsys):
    file = _deployment(tmp_path)
    assert main.main(["swaps", "show", str(file), "nope"]) == 1
    assert "no plan 'nope'" in capsys.readouterr().err


def _commands(app: typer.Typer, prefix: str = "") -> list[str]:
    """Every command path of `app` as registered (a name twice if registered twice)."""
    names = [f"{prefix}{info.name}" for info in app.registered_commands]
    for group in app.registered_groups:
        assert group.typer_instance is not None
        names += _commands(group.typer_instance, f"{prefix}{group.name} ")
    return names


def test_every_command_is_registered_once():
    import agents.app.commands.agents
    import agents.app.daemon

    names = _commands(main.app)
    assert sorted(set(names)) == sorted(names), names
    assert {"swaps list", "swaps show", "swaps recover"} <= set(names)
    group = next(g.typer_instance for g in main.app.registered_groups if g.name == "swaps")
    assert group is not None
    (recover,) = [c for c in group.registered_commands if c.name == "recover"]
    assert recover.callback is agents.app.daemon.recover
    # Composing another CLI (as tests/agents/test_audit_cli.py does) builds its own
    # `swaps` group and leaves the main one alone.
    other = typer.Typer()
    agents.app.commands.agents.register(other)
    assert _commands(main.app) == names
    assert _commands(other).count("swaps recover") == 1


def test_swaps_recover_help_runs_from_main():
    result = subprocess.run(
        [sys.executable, "main.py", "swaps", "recover", "--help"],
        cwd=DEMO.parents[1],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Drive every open cross-chain plan" in result.stdout


@pytest.mark.anvil
async def test_leg_states_follow_the_chain_after_a_swap(tmp_path, evm_nodes, capsys, monkeypatch):
    """Each side's own leg is claimed by the counterparty, after its own claim: the
    watchtower's next sweep records it, so `swaps list | show` say `claimed`."""
    from agents.app.commands import swaps as cli
    from chains.atomic.swap import SwapSide
    from chains.atomic.watchtower import Watchtower
    from tests.atomic._swap import ETH, close, make_side, open_swap, run_both, trusting

    monkeypatch.setattr(cli.console, "width", 300)
    file = _deployment(tmp_path)  # its store is tmp_path/state.db, shared by both sides
    nodes = [evm_nodes["arb"], evm_nodes["base"]]
    maker = await make_side("maker", tmp_path, nodes, None, store="state.db")
    taker = await make_side("taker", tmp_path, nodes, None, verify=trusting, store="state.db")
    for side in (maker, taker):
        for node in nodes:
            node.fund(side.wallet.evm_address, 10 * ETH)
    give, take = SwapSide(chain="arb", amount=ETH // 10), SwapSide(chain="base", amount=ETH // 5)
    try:
        await open_swap(maker, taker, "cli-swap", give=give, take=take)
        made, taken = await run_both(maker, taker, "cli-swap")
        assert (made.state, taken.state) == ("claimed", "claimed")
        await Watchtower([maker.coordinator, taker.coordinator]).sweep()
    finally:
        await close(maker, taker)
    assert main.main(["swaps", "list", str(file)]) == 0
    listed = capsys.readouterr().out
    assert listed.count("arb:claimed, base:claimed") == 2, listed
    assert "locked" not in listed
    for agent in ("maker", "taker"):
        assert main.main(["swaps", "show", str(file), "cli-swap", "--agent", agent]) == 0
        shown = capsys.readouterr().out
        cells = [line.split("│")[1:-1] for line in shown.splitlines() if line.count("│") == 9]
        legs = [[cell.strip() for cell in row] for row in cells if row[0].strip() in ("0", "1")]
        assert [(leg[0], leg[-1]) for leg in legs] == [("0", "claimed"), ("1", "claimed")], shown


BOB = "did:key:z6MkeXVMTUGiv5WXfeDjJ8FhiNkbE8DgQWAB5Hn8hVqXsKNC"


def test_list_and_show_name_a_remote_counterparty_by_did(tmp_path, capsys, monkeypatch):
    from agents.app.commands import swaps as cli

    monkeypatch.setattr(cli.console, "width", 300)
    file = _deployment(tmp_path)
    entry = f"  - {{name: bob, did: {BOB}, card: http://127.0.0.1:9/agents/bob}}\n"
    file.write_text(file.read_text().replace("address_book:\n", "address_book:\n" + entry))
    engine = open_store(load_deployment(file).store.url or "")
    leg = _leg("0x" + "cd" * 32)
    for plan_id, did in (("swap-bob", BOB), ("swap-stranger", BOB.replace("z6Mke", "z6Mkf"))):
        PlanStore(engine).create(
            PlanRecord(
                plan_id=plan_id,
                agent="maker",
                kind="maker",
                state="offered",
                hashlock=bytes(32),
                preimage_journaled=True,
                legs=(leg,),
                counterparty=did,
            )
        )
    engine.dispose()
    assert main.main(["swaps", "list", str(file)]) == 0
    listed = capsys.readouterr().out
    assert f"bob ({BOB})" in listed
    stranger = next(line for line in listed.splitlines() if "swap-stranger" in line)
    assert "bob" not in stranger  # a DID the book does not list is shown bare
    assert BOB.replace("z6Mke", "z6Mkf") in stranger
    assert main.main(["swaps", "show", str(file), "swap-bob"]) == 0
    assert f"counterparty bob ({BOB})" in capsys.readouterr().out
