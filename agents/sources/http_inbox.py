"""HttpInbox: tasks from an HTTP JSON endpoint (a ticketing or invoicing system)."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from agents.sources.base import MAX_BYTES, Source, SourceError, SourceRead
from config.types import Duration


class HttpInboxParams(BaseModel):
    """The endpoint; it answers GET with a JSON list of tasks or ``{"tasks": [...]}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://", description="http(s) URL of the inbox.")
    timeout: Duration = Field(default=Decimal(5), description="Seconds per request.")


class HttpInbox(Source[HttpInboxParams]):
    """One GET per observation; the body is read up to a size limit, never beyond."""

    Params = HttpInboxParams

    async def read(self) -> SourceRead:
        url, timeout = self.params.url, float(self.params.timeout)
        try:
            async with (
                httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
                client.stream("GET", url, headers={"Accept": "application/json"}) as response,
            ):
                if response.status_code != 200:
                    raise SourceError(
                        f"source {self.name}: {url} answered HTTP {response.status_code}"
                    )
                body = await _limited(response, self.name)
        except httpx.HTTPError as exc:
            raise SourceError(
                f"source {self.name}: {url} is unreachable ({type(exc).__name__}); "
                "check the inbox service is running"
            ) from exc
        try:
            return self.tasks_from(json.loads(body))
        except json.JSONDecodeError as exc:
            raise SourceError(f"source {self.name}: {url} did not answer JSON: {exc.msg}") from exc


async def _limited(response: httpx.Response, name: str) -> bytes:
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_BYTES:
            raise SourceError(f"source {name}: the answer is over {MAX_BYTES} bytes; refused")
    return body
