"""Ollama planner: LangChain's ``ChatOllama`` with the plan's JSON schema as ``format``.

Each call asks for token log-probabilities (``logprobs=True``); LangChain accumulates the
streamed per-token values into ``response_metadata["logprobs"]``. A server that does
not return them simply yields no token evidence.
"""

from __future__ import annotations

from typing import Any

import httpx
import ollama
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_ollama import ChatOllama

from agents.planners.base import ModelPlanner
from agents.planners.types import ChatMessage, Completion
from config.errors import PlannerError
from config.models import Deployment
from config.models import OllamaPlanner as OllamaPlannerConfig

_ROLES = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


class OllamaPlanner(ModelPlanner):
    """Plans with a model served by Ollama at ``config.base_url``."""

    def __init__(self, config: OllamaPlannerConfig, deployment: Deployment, agent: str) -> None:
        super().__init__(deployment, agent, samples=config.samples)
        self.config = config
        self._client = ChatOllama(
            model=config.model,
            base_url=config.base_url,
            temperature=config.temperature,
            logprobs=True,
            client_kwargs={"timeout": float(config.timeout)},
        )

    async def check(self) -> None:
        """Raise PlannerError unless the server answers and has the model."""
        client = ollama.AsyncClient(host=self.config.base_url, timeout=float(self.config.timeout))
        try:
            listed = await client.list()
        except (httpx.HTTPError, ollama.ResponseError, ConnectionError) as exc:
            raise self._unreachable(exc) from exc
        names = {model.model for model in listed.models if model.model}
        if self.config.model not in names and f"{self.config.model}:latest" not in names:
            raise PlannerError(
                f"Ollama at {self.config.base_url} has no model {self.config.model!r} "
                f"(it has: {', '.join(sorted(names)) or 'none'}); run "
                f"`ollama pull {self.config.model}` or fix planner {self.config.name!r}"
            )

    async def complete(self, messages: list[ChatMessage], schema: dict[str, Any]) -> Completion:
        """One schema-constrained reply from Ollama."""
        try:
            reply = await self._client.ainvoke(_to_langchain(messages), format=schema)
        except ollama.ResponseError as exc:
            raise self._response_error(exc) from exc
        except (httpx.HTTPError, ConnectionError) as exc:
            raise self._unreachable(exc) from exc
        return _completion(reply)

    def _unreachable(self, exc: Exception) -> PlannerError:
        return PlannerError(
            f"Ollama at {self.config.base_url} is unreachable ({exc.__class__.__name__}: "
            f"{exc}); start it with `ollama serve` or fix base_url of planner "
            f"{self.config.name!r}"
        )

    def _response_error(self, exc: ollama.ResponseError) -> PlannerError:
        hint = (
            f"run `ollama pull {self.config.model}`"
            if exc.status_code == 404
            else "check the Ollama server log"
        )
        return PlannerError(
            f"Ollama at {self.config.base_url} refused model {self.config.model!r} "
            f"(HTTP {exc.status_code}: {exc.error}); {hint}"
        )


def _to_langchain(messages: list[ChatMessage]) -> list[BaseMessage]:
    return [_ROLES[message["role"]](content=message["content"]) for message in messages]


def _completion(reply: BaseMessage) -> Completion:
    metadata = reply.response_metadata
    logprobs = metadata.get("logprobs")
    values = tuple(float(item["logprob"]) for item in logprobs) if logprobs else None
    return Completion(
        text=reply.text,
        token_logprobs=values,
        prompt_tokens=int(metadata.get("prompt_eval_count") or 0),
        completion_tokens=int(metadata.get("eval_count") or 0),
    )
