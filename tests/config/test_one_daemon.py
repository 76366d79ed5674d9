"""One daemon per SQLite store (config/store.py `one_daemon`): a second `run` on the
same store refuses to start with a clear error, and a daemon killed with SIGKILL leaves
no lock behind (the kernel drops an flock with its holder)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import main
from config.errors import StoreError
from config.store import one_daemon

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_holder_is_refused_naming_the_first_and_the_store_is_free_after(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with one_daemon(url):
        with (
            pytest.raises(StoreError, match=rf"another daemon \(pid {os.getpid()}\)"),
            one_daemon(url),
        ):
            pass
        # Another store is another daemon's business.
        with one_daemon(f"sqlite:///{tmp_path / 'other.db'}"):
            pass
    # Negative control: once the first has let go, the store is free.
    with one_daemon(url):
        pass


def test_a_killed_daemon_leaves_no_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from config.store import one_daemon\n"
            f"with one_daemon({url!r}):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(120)\n",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreError, match=rf"pid {holder.pid}"), one_daemon(url):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with one_daemon(url):  # nothing stale
        pass


def test_run_refuses_a_store_another_daemon_holds(tmp_path: Path, capsys) -> None:
    data = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text(encoding="utf-8"))
    data["data_dir"] = str(tmp_path / "data")
    data.pop("console", None)
    file = tmp_path / "demo.yaml"
    file.write_text(yaml.safe_dump(data), encoding="utf-8")
    (tmp_path / "demo-invoices.yaml").write_text("[]", encoding="utf-8")
    store = tmp_path / "data" / "state.db"
    store.parent.mkdir()
    store.write_bytes(b"the running daemon's state")
    with one_daemon(f"sqlite:///{tmp_path / 'data' / 'state.db'}"):
        assert main.main(["run", str(file), "--ticks", "1", "--fresh"]) == 1
    shown = capsys.readouterr()
    assert "another daemon" in shown.out + shown.err
    assert "one daemon per SQLite store" in shown.out + shown.err
    # --fresh would have wiped the running daemon's store first; it did not run.
    assert store.read_bytes() == b"the running daemon's state"
