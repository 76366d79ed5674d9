"""Start daemon processes fast for the crash tests: import everything once, then fork.

``python tests/atomic/_zygote.py LOG``: reads one JSON request per line from stdin,
``{"config": PATH, "crash": "boundary:n" | null}`` plus, optionally, ``"crash_write":
"before:n" | "after:n"`` (kill at the n-th durable store commit), ``"kill_after": SECONDS``
(SIGKILL the child that long after the fork, from this parent), ``"log": PATH`` (this
run's output instead of LOG) and ``"writes_log": PATH`` (one line per durable commit).
It forks a child that runs the daemon of :mod:`tests.atomic._daemon` (a separate
process, with its own pid, store connection and event loop, killed by its own SIGKILL),
waits for it and answers ``{"code": N, "elapsed": SECONDS}`` (``-9`` when it was
killed). Forking a pristine, already-imported parent makes each daemon start in
milliseconds instead of seconds, so the tests can kill hundreds of them.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import select
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from chains.atomic._crash import ENV_VAR
from tests.atomic import _daemon

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_CHILD_VARS = {
    "crash": ENV_VAR,
    "crash_write": _daemon.WRITE_VAR,
    "writes_log": _daemon.WRITES_LOG_VAR,
}


def _child(request: dict[str, Any], log_path: str) -> None:
    # Die with the zygote: a harness that is stopped must not leave daemons driving plans.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    log = os.open(request.get("log") or log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    for key, variable in _CHILD_VARS.items():
        os.environ.pop(variable, None)
        if request.get(key):
            os.environ[variable] = str(request[key])
    try:
        config = json.loads(Path(request["config"]).read_text())
        code = asyncio.run(_daemon.main(config))
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _wait(pid: int, kill_after: float | None) -> int:
    """The child's exit code, SIGKILLing it first if it outlives `kill_after` seconds.
    Through a pidfd, so the signal can never reach a recycled pid."""
    pidfd = os.pidfd_open(pid)
    try:
        if kill_after is not None:
            ready, _, _ = select.select([pidfd], [], [], max(0.0, kill_after))
            if not ready:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(pidfd)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(request, sys.argv[1])
        code = _wait(pid, request.get("kill_after"))
        elapsed = round(time.monotonic() - started, 3)
        print(json.dumps({"code": code, "elapsed": elapsed}), flush=True)


if __name__ == "__main__":
    main()
