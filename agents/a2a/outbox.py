"""Sending one signed message to another operator's agent: an A2A ``SendMessage`` over
JSON-RPC, through `a2a-sdk`'s own client, to the endpoint the agent's verified card
names (never to a URL a message or a model supplied)."""

from __future__ import annotations

import uuid

import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.types import Message, Part, Role, SendMessageRequest

from agents.a2a.messages import MEDIA_TYPE
from agents.a2a.peers import Peer
from config.errors import CovenantError

TIMEOUT = 10.0
"""Seconds to wait for the other daemon's answer before the message counts as lost."""


class DeliveryError(CovenantError):
    """The other agent did not take a message: unreachable, or it refused it (why)."""


class Outbox:
    """Delivers messages; one HTTP client for every peer, opened on first use."""

    def __init__(self, http: httpx.AsyncClient | None = None) -> None:
        self._http = http

    async def deliver(self, peer: Peer, token: str) -> str:
        """Send `token` to `peer`; the agent's answer ("accepted: …"), or DeliveryError."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=TIMEOUT)
        client = ClientFactory(ClientConfig(streaming=False, httpx_client=self._http)).create(
            peer.card
        )
        message = Message(
            message_id=str(uuid.uuid4()),
            role=Role.ROLE_USER,
            parts=[Part(text=token, media_type=MEDIA_TYPE)],
        )
        answers: list[str] = []
        try:
            async for event in client.send_message(SendMessageRequest(message=message)):
                answers += [part.text for part in event.message.parts]
        except Exception as exc:  # the SDK's transport errors have no common base
            raise DeliveryError(f"{peer.name} ({peer.url}) is unreachable: {exc}") from exc
        answer = "\n".join(answers)
        if not answer.startswith("accepted:"):
            raise DeliveryError(f"{peer.name} did not take the message: {answer[:300]}")
        return answer

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
