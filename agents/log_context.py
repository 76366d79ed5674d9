"""Which agent and plan a log record belongs to, and the JSON-lines log format.

The runtime sets `AGENT` around each tick and the tick sets `PLAN` once it has a plan
id; both are context variables, so every record logged inside the tick (by any module)
carries them, and ticks of different agents running at once never mix them up.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

AGENT: ContextVar[str | None] = ContextVar("covenant_agent", default=None)
PLAN: ContextVar[str | None] = ContextVar("covenant_plan", default=None)


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message, agent, plan and, for
    an exception, its type, message and traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "agent": AGENT.get(),
            "plan": PLAN.get(),
        }
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line["error"] = f"{type(error).__name__}: {error}"
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)
