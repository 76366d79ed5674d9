"""The daemon's A2A endpoint: for every hosted agent, its signed Agent Card at
``/agents/<name>/.well-known/agent-card.json`` and its JSON-RPC endpoint at
``/agents/<name>``, both from `a2a-sdk`'s own routes and request handler.

What an agent answers (:class:`CovenantExecutor`): a message carrying signed Covenant
messages (text parts of media type ``application/jose``) gets, per message, "accepted"
or "refused: <reason>" from the agent's :class:`~agents.a2a.messages.Inbox`; any other
message gets a short explanation of what the agent takes. Nothing a message says is
acted on here: accepted messages wait in the inbox as untrusted data.

Limits sit in front of every route (:class:`Limits`): a body over ``max_body_bytes`` is
refused with 413 before it is read whole, and a client address over
``requests_per_minute`` gets 429, so a flood costs the daemon a counter, not a
signature check per message.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from a2a.helpers.proto_helpers import new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandlerV2
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import AgentCard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from agents.a2a.card import CARD_PATH, REVOCATIONS_PATH
from agents.a2a.messages import MEDIA_TYPE, Inbox, MessageRefused, SignedMessage
from agents.http_serving import bind, serving_app
from config.models import A2aConfig

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class HostedAgent:
    """One agent as the endpoint serves it: its signed card and its inbox."""

    name: str
    card: AgentCard
    inbox: Inbox
    on_message: Callable[[SignedMessage], None] | None = None
    """Told of each accepted message (after it is stored): the desk wakes to act on it."""


class CovenantExecutor(AgentExecutor):
    """Answers each A2A message to one agent (see the module)."""

    def __init__(self, agent: HostedAgent, clock: Callable[[], float] = time.time) -> None:
        self.agent = agent
        self._clock = clock

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        answers = []
        for part in message.parts if message is not None else []:
            if part.media_type == MEDIA_TYPE:
                answers.append(self._receive(part.text))
        if not answers:
            answers.append(
                f"{self.agent.name} takes Covenant messages (offer, counter_offer, accept, "
                f"decline, lock_notice, cancel) as JWS signed by the sender's DID key, one "
                f"per text part of media type {MEDIA_TYPE}; see the card's skills."
            )
        reply = new_text_message("\n".join(answers), context_id=context.context_id)
        await event_queue.enqueue_event(reply)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        return None  # every answer is immediate: there is no task to cancel

    def _receive(self, token: str) -> str:
        try:
            received: SignedMessage = self.agent.inbox.accept(token, now=int(self._clock()))
        except MessageRefused as refusal:
            # The reason, never the body: a hostile body must not reach the log.
            log.info(
                "a2a: %s refused a message from %s: %s",
                self.agent.name,
                refusal.sender or "an unknown sender",
                refusal.reason,
            )
            return f"refused: {refusal.reason}: {refusal}"
        log.info(
            "a2a: %s accepted %s %s from %s (plan %s)",
            self.agent.name,
            received.kind,
            received.id,
            received.sender,
            received.plan,
        )
        if self.agent.on_message is not None:
            self.agent.on_message(received)
        return f"accepted: {received.kind} {received.id}"


class Limits:
    """Body size and per-address request rate in front of the endpoint (see the module)."""

    def __init__(
        self, app: ASGIApp, config: A2aConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.app = app
        self.max_body = config.max_body_bytes
        self.per_minute = config.requests_per_minute
        self._clock = clock
        self._recent: dict[str, deque[float]] = {}
        self.refused: dict[int, int] = {413: 0, 429: 0}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        if not self._admit(client):
            await self._refuse(send, 429, "too many requests; slow down", retry_after=60)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._refuse(send, 413, f"request body over {self.max_body} bytes")
            return
        seen = 0

        async def limited() -> MutableMapping[str, Any]:
            # A body sent without a length is cut off where it passes the limit: the
            # endpoint sees the client go away instead of reading on.
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                self.refused[413] += 1
                return {"type": "http.disconnect"}
            return message

        await self.app(scope, limited, send)

    def _admit(self, client: str) -> bool:
        now = self._clock()
        window = self._recent.setdefault(client, deque())
        while window and now - window[0] >= 60:
            window.popleft()
        if len(window) >= self.per_minute:
            return False
        window.append(now)
        if len(self._recent) > 10_000:  # forget idle addresses so a scan cannot grow this
            self._recent = {c: w for c, w in self._recent.items() if now - w[-1] < 60}
        return True

    async def _refuse(self, send: Send, status: int, text: str, retry_after: int = 0) -> None:
        self.refused[status] += 1
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        if retry_after:
            headers.append((b"retry-after", str(retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": text.encode()})


def build_app(
    agents: Mapping[str, HostedAgent],
    config: A2aConfig,
    revocations: Callable[[], str] | None = None,
) -> Limits:
    """The endpoint of every agent in `agents`, behind the limits of `config`; with
    `revocations` (the operator's signed revocation list, read per request so a
    revocation shows at once), that list at ``/operator/revocations.jws``."""
    routes: list[BaseRoute] = []
    if revocations is not None:
        read = revocations

        async def revocation_list(_request: Request) -> Response:
            return PlainTextResponse(read(), media_type="application/jwt")

        routes.append(Route(f"/{REVOCATIONS_PATH}", revocation_list, methods=["GET"]))
    for name, agent in agents.items():
        handler = DefaultRequestHandlerV2(
            agent_executor=CovenantExecutor(agent),
            task_store=InMemoryTaskStore(),
            agent_card=agent.card,
        )
        routes += create_agent_card_routes(agent.card, card_url=f"/agents/{name}/{CARD_PATH}")
        routes += create_jsonrpc_routes(handler, rpc_url=f"/agents/{name}")
    return Limits(Starlette(routes=routes), config)


@asynccontextmanager
async def serving(
    agents: Mapping[str, HostedAgent],
    config: A2aConfig,
    revocations: Callable[[], str] | None = None,
) -> AsyncIterator[str]:
    """Serve :func:`build_app` on `config.listen` while the block runs; yields the base
    URL the cards name (`config.base_url`)."""
    sock = bind(config.host, config.port, what="A2A endpoint", setting="a2a.listen")
    app = build_app(agents, config, revocations)
    async with serving_app(app, sock, url=config.base_url, what="A2A endpoint") as url:
        yield url
