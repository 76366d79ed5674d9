"""A failing tick is one line on the operator's terminal; its traceback is in the log file
(a newcomer's first demo printed a whole traceback through the live view)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.app.daemon import _configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:], root.level = handlers, level


def test_a_failure_is_one_line_on_the_terminal_and_whole_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    log_file = tmp_path / "data" / "covenant.log"
    _configure_logging(log_file)
    try:
        raise FileExistsError("model file already exists with an unexpected sha256")
    except FileExistsError:
        logging.getLogger("agents.scheduler").exception("tick of agent payer failed")
    terminal = capsys.readouterr().err
    assert terminal.count("\n") == 1
    assert "tick of agent payer failed (FileExistsError: model file" in terminal
    assert f"traceback in {log_file}" in terminal
    assert "Traceback" not in terminal
    written = log_file.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in written  # negative control: it exists
    assert "raise FileExistsError" in written


def test_warnings_without_an_exception_stay_plain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    _configure_logging(tmp_path / "covenant.log")
    logging.getLogger("chains").warning("endpoint slow")
    terminal = capsys.readouterr().err
    assert terminal.rstrip().endswith("WARNING chains: endpoint slow")
    assert "traceback in" not in terminal
