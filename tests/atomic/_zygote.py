"""Start daemon processes fast for the crash test: import everything once, then fork.

``python tests/atomic/_zygote.py LOG``: reads one JSON request per line from stdin,
``{"config": PATH, "crash": "boundary:n" | null}``, forks a child that runs the daemon
of :mod:`tests.atomic._daemon` (a separate process, with its own pid, store connection
and event loop, killed by its own SIGKILL), waits for it and answers ``{"code": N}``
(``-9`` when it was killed). Forking a pristine, already-imported parent makes each
daemon start in milliseconds instead of seconds, so the test can kill dozens of them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from chains.atomic._crash import ENV_VAR
from tests.atomic import _daemon


def _child(request: dict[str, Any], log_path: str) -> None:
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.environ.pop(ENV_VAR, None)
    if request.get("crash"):
        os.environ[ENV_VAR] = request["crash"]
    try:
        config = json.loads(Path(request["config"]).read_text())
        code = asyncio.run(_daemon.main(config))
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request, sys.argv[1])
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"code": code}), flush=True)


if __name__ == "__main__":
    main()
