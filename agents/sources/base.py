"""The interface of an observation source: where an agent finds tasks it may act on.

A source turns what an outside party wrote (an invoice file, an HTTP inbox) into
:class:`~agents.planners.types.Task` items. Everything it reads is untrusted: items are
validated one by one, a bad item is left out with a reason instead of failing the rest,
and the reasons reach the observation as outcomes so the planner and the operator see
them. A source that cannot be read at all raises :class:`SourceError`; the observer
reports it and the tick goes on without that source.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from agents.tasks import Task
from config.errors import CovenantError

MAX_ITEMS = 50
"""Items a source gives per observation; more are left out (the prompt stays small)."""

MAX_BYTES = 1 << 20
"""Bytes a source reads at most; a larger document is refused, not truncated."""


class SourceError(CovenantError):
    """A source could not be read; the message names the source and what to do."""


@dataclass
class SourceRead:
    """What one read gave: the valid tasks, and a reason for each item left out."""

    tasks: list[Task] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


P = TypeVar("P", bound=BaseModel)


class Source(ABC, Generic[P]):
    """One configured source of one agent."""

    Params: ClassVar[type[BaseModel]]
    """The source's YAML parameters (validated by the registry)."""

    def __init__(self, name: str, params: P) -> None:
        self.name = name
        self.params = params

    @abstractmethod
    async def read(self) -> SourceRead:
        """The source's current items; SourceError if it cannot be read at all."""

    def tasks_from(self, document: Any) -> SourceRead:
        """Validate a decoded document: a list of items, or ``{"tasks": [...]}``."""
        items = document.get("tasks") if isinstance(document, dict) else document
        if not isinstance(items, list):
            raise SourceError(
                f"source {self.name}: expected a list of tasks or {{tasks: [...]}}, "
                f"got {type(document).__name__}"
            )
        read = SourceRead()
        for position, item in enumerate(items[:MAX_ITEMS]):
            try:
                read.tasks.append(Task.model_validate({**_mapping(item), "source": self.name}))
            except (ValidationError, TypeError) as exc:
                read.skipped.append(f"source {self.name}: item {position} left out: {_why(exc)}")
        if len(items) > MAX_ITEMS:
            read.skipped.append(
                f"source {self.name}: {len(items) - MAX_ITEMS} items over the limit"
            )
        return read


def _mapping(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise TypeError(f"an item is a mapping, got {type(item).__name__}")
    return item


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "item"
        return f"{where}: {error['msg']}"[:200]
    return str(exc)[:200]
