"""TaskFile: tasks from a JSON or YAML file that someone else writes (an invoice inbox)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from agents.sources.base import MAX_BYTES, Source, SourceError, SourceRead


class TaskFileParams(BaseModel):
    """Where the file is; relative paths are read beside the deployment file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1, description="A .json, .yaml or .yml file of tasks.")


class TaskFile(Source[TaskFileParams]):
    """Reads the whole file at every observation; a missing file means no tasks yet."""

    Params = TaskFileParams

    async def read(self) -> SourceRead:
        path = Path(self.params.path)
        try:
            raw = await asyncio.to_thread(_head, path, MAX_BYTES + 1)
        except FileNotFoundError:
            return SourceRead()
        except OSError as exc:
            raise SourceError(f"source {self.name}: cannot read {path}: {exc.strerror}") from exc
        if len(raw) > MAX_BYTES:
            raise SourceError(f"source {self.name}: {path} is over {MAX_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
            document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
            raise SourceError(
                f"source {self.name}: {path} is not valid {path.suffix.lstrip('.')}: "
                f"{str(exc).splitlines()[0]}"
            ) from exc
        return self.tasks_from(document or [])


def _head(path: Path, size: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)
