"""Ollama planner: LangChain's ``ChatOllama`` with the plan's JSON schema as ``format``.

What this module relies on, from Ollama's source (ollama/ollama, read at v0.24.0 and at
v0.33.0-rc2) and from the ``ollama`` and ``langchain-ollama`` clients pinned here:

- Every request says ``think: false``. Thinking models think by default since Ollama
  0.12.4 and ``format`` only constrains what comes after the thinking; a model without
  thinking accepts ``false`` (only ``true`` is a 400 there). A model that thinks anyway
  sends ``message.thinking`` chunks, which carry logprobs too: those are left out of
  the evidence and out of the reply text.
- Options are sent, not left to Ollama's defaults: ``num_predict`` (Ollama's default is
  no limit, and a schema grammar can allow whitespace without end), a fresh ``seed`` per
  request (each of the k samples is its own draw; sending none would also be random, but
  a sent seed can be told apart in the server log), and ``keep_alive`` (Ollama unloads a
  model 5 minutes after its last request by default, so ticks further apart would each
  pay a reload).
- Requests go out ``parallel`` at a time (default 1): Ollama serves OLLAMA_NUM_PARALLEL
  requests (default 1) and queues the rest, and a queued request spends its read
  timeout waiting for headers.
- Every failure of the server or the wire is a :class:`~config.errors.PlannerError`
  that names the server and what to do: a status before the first chunk (400, 404, 499,
  500 such as ``invalid JSON schema in format``, 503 when the queue is full), the
  ``{"error": ...}`` line Ollama sends mid-stream after a 200 (the client raises it with
  status -1), an empty 200, a line that is not JSON, a stream cut before its final
  line, a read timeout, a refused connection. :meth:`OllamaPlanner.plan` turns such an
  error into an empty plan whose errors carry the reason, so the tick is recorded
  rather than failed, and cancels the decision's other requests; only an Ollama that
  cannot serve at all (unreachable, or without the model: :class:`OllamaUnavailable`)
  is raised, as the Planner contract asks.

Token evidence (``Completion.token_logprobs``, whose mean becomes
``ConfidenceEvidence.mean_token_logprob``) means, from this backend: for each token of
the reply's content, the model's own log-probability of that token, the plain
log-softmax of its raw logits before grammar, penalties and temperature (Ollama's
runner computes it from the raw logits); no value for the end-of-sequence token (Ollama
sends none) and none for thinking. ``completion_tokens`` likewise leaves the
end-of-sequence token out, as llama.cpp's usage does on the embedded backend, although
Ollama's ``eval_count`` includes it. Because the grammar is not taken into account, a
token the grammar forces (a brace, a key) scores what the unconstrained model would have
given it, often far below 0. The embedded backend records the same quantity
(``agents/planners/_llama.py``), so the evidence means the same on both.

One request per sample: Ollama's chat API has no way to ask for k replies at once. Its
runner keeps each slot's KV cache and reuses the longest common prefix of the next
prompt (v0.24.0 runner/ollamarunner/cache.go LoadCacheSlot), so with the default one
request at a time the k samples of a decision pay about one prefill there too; but
``Completion.prefill_tokens`` stays None, because the response cannot say:
``prompt_eval_count`` is the whole prompt, cached or not (v0.24.0 runner/ollamarunner/
runner.go: ``numPromptInputs`` is ``len(inputs)`` taken in NewSequence, before
LoadCacheSlot drops the cached inputs; at v0.33.0-rc2 llm/llama_server.go
``promptEvalCount`` is llama-server's ``cache_n + prompt_n``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import ollama
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_ollama import ChatOllama

from agents.plan import Plan, failed_evidence
from agents.planners.base import ModelPlanner
from agents.planners.types import ChatMessage, Completion, Observation, PlanResult
from config.errors import PlannerError
from config.models import Deployment
from config.models import OllamaPlanner as OllamaPlannerConfig

_ROLES = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
_OLLAMA_KEEP_ALIVE = 300  # seconds: Ollama's default (envconfig KeepAlive)
_CRON_KEEP_ALIVE = 3600
_DETAIL = 300  # characters of a server's error text worth quoting


class OllamaUnavailable(PlannerError):
    """Ollama cannot serve this planner at all: unreachable, or without the model. An
    operator must act, so :meth:`OllamaPlanner.plan` raises it, as the Planner contract
    says; every other failure becomes an empty plan with the reason."""


class OllamaPlanner(ModelPlanner):
    """Plans with a model served by Ollama at ``config.base_url``."""

    def __init__(self, config: OllamaPlannerConfig, deployment: Deployment, agent: str) -> None:
        super().__init__(deployment, agent, samples=config.samples)
        self.config = config
        self.keep_alive = keep_alive_seconds(config, deployment.agent(agent).schedule)
        self.url = _public(config.base_url)
        self._client = ChatOllama(
            model=config.model,
            base_url=config.base_url,
            logprobs=True,
            reasoning=False,
            keep_alive=f"{self.keep_alive}s",
            client_kwargs={"timeout": float(config.timeout)},
        )
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._decision: _Decision | None = None

    async def plan(self, observation: Observation) -> PlanResult:
        """The majority plan; an empty plan with the reason if Ollama fails."""
        decision = self._decision = _Decision()
        try:
            return await super().plan(observation)
        except OllamaUnavailable:
            await decision.cancel()
            raise
        except PlannerError as exc:
            await decision.cancel()
            reason = str(exc)
            return PlanResult(
                plan=Plan.empty(f"no plan: {reason}"),
                evidence=failed_evidence(self.samples, 0),
                errors=(reason,),
                model_calls=decision.sent,
            )
        finally:
            self._decision = None

    async def check(self) -> None:
        """Raise PlannerError unless the server answers and has the model."""
        client = ollama.AsyncClient(host=self.config.base_url, timeout=float(self.config.timeout))
        try:
            listed = await client.list()
        except Exception as exc:  # each is mapped to a clear PlannerError
            raise self._failure(exc) from exc
        names = {model.model for model in listed.models if model.model}
        if model_name(self.config.model) not in {model_name(name) for name in names}:
            raise OllamaUnavailable(
                f"Ollama at {self.url} has no model {self.config.model!r} "
                f"(it has: {', '.join(sorted(names)) or 'none'}); run "
                f"`ollama pull {self.config.model}` or fix planner {self.config.name!r}"
            )

    async def complete(self, messages: list[ChatMessage], schema: dict[str, Any]) -> Completion:
        """One schema-constrained reply from Ollama; PlannerError on any failure."""
        decision = self._decision
        task = asyncio.current_task()
        if decision is not None and task is not None:
            decision.requests.add(task)
        async with self._slot():
            if decision is not None:
                if decision.failed:  # woken by the failed request's slot: do not send
                    raise PlannerError("abandoned: another request of this decision failed")
                decision.sent += 1
            try:
                return await self._ask(messages, schema)
            except Exception as exc:  # each is mapped to a clear PlannerError
                if decision is not None:
                    decision.failed = True
                if isinstance(exc, PlannerError):
                    raise
                raise self._failure(exc) from exc

    async def _ask(self, messages: list[ChatMessage], schema: dict[str, Any]) -> Completion:
        options = {
            "temperature": self.config.temperature,
            "num_predict": self.config.num_predict,
            "seed": random.randrange(2**31),  # noqa: S311 - sampling diversity, not secrecy
        }
        reply = _Reply()
        # `reasoning=True` makes ChatOllama hand each chunk's thinking over (so its
        # logprobs can be left out); the explicit `think=False` still goes on the wire,
        # because ChatOllama lets request kwargs override the parameters it derives.
        stream = self._client.astream(
            _to_langchain(messages), format=schema, options=options, reasoning=True, think=False
        )
        try:
            async for chunk in stream:
                reply.add(chunk)
        except ValueError as exc:
            # LangChain's own complaint about a stream without a single line; a
            # JSONDecodeError or ValidationError (also ValueErrors) is another failure.
            if type(exc) is not ValueError or reply.chunks:
                raise
        return reply.completion(self.url)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self.config.parallel))
        async with self._slots[1]:
            yield

    def _failure(self, exc: Exception) -> PlannerError:
        if isinstance(exc, ollama.ResponseError):
            return self._refused(exc)
        if isinstance(exc, httpx.TimeoutException):
            return PlannerError(
                f"Ollama at {self.url} sent nothing for {self.config.timeout}s "
                f"({type(exc).__name__}): the model may still be loading or the server be "
                f"busy with other requests; raise timeout (or lower samples) of planner "
                f"{self.config.name!r}"
            )
        if isinstance(exc, ConnectionError | httpx.ConnectError):
            return OllamaUnavailable(
                f"Ollama at {self.url} is unreachable ({type(exc).__name__}); start it with "
                f"`ollama serve` or fix base_url of planner {self.config.name!r}"
            )
        if isinstance(exc, httpx.TransportError):
            return PlannerError(
                f"Ollama at {self.url} broke off the reply ({type(exc).__name__}: "
                f"{_short(exc)}); check the Ollama server log and retry"
            )
        if isinstance(exc, json.JSONDecodeError):
            return PlannerError(
                f"Ollama at {self.url} sent a line that is not JSON ({exc.msg}: "
                f"{_short(exc.doc)!r}); is base_url an Ollama server, not a proxy?"
            )
        return PlannerError(
            f"Ollama at {self.url} sent a reply the client cannot read "
            f"({type(exc).__name__}: {_short(exc)}); is base_url an Ollama server, not a "
            "proxy? Check the Ollama server log"
        )

    def _refused(self, exc: ollama.ResponseError) -> PlannerError:
        status, detail = exc.status_code, _short(exc.error)
        model, name = self.config.model, self.config.name
        hints = {
            -1: "check the Ollama server log and retry",
            400: f"check model of planner {name!r} and that Ollama is current",
            404: f"run `ollama pull {model}` or fix model of planner {name!r}",
            499: "the request was cancelled; retry",
            503: f"the server's queue is full; lower samples or parallel of planner {name!r} "
            "or raise OLLAMA_MAX_QUEUE on the server",
        }
        hint = hints.get(status, "check the Ollama server log")
        if "schema" in detail:
            hint = "Ollama cannot turn the plan schema into a grammar; upgrade Ollama"
        if status == -1:
            what = f"failed mid-reply with model {model!r} (mid-stream error: {detail})"
        else:
            what = f"refused model {model!r} (HTTP {status}: {detail})"
        error = OllamaUnavailable if status == 404 else PlannerError
        return error(f"Ollama at {self.url} {what}; {hint}")


@dataclass
class _Decision:
    """The requests of one :meth:`OllamaPlanner.plan` call."""

    requests: set[asyncio.Task[Any]] = field(default_factory=set)
    sent: int = 0
    failed: bool = False

    async def cancel(self) -> None:
        """Cancel the requests still running: one failed, so their replies are moot
        (with Ollama queueing them, each would otherwise wait out its own turn)."""
        current = asyncio.current_task()
        pending = [t for t in self.requests if t is not current and not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


@dataclass
class _Reply:
    """A streamed reply as it arrives: content, content logprobs, the final line."""

    text: list[str] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    chunks: int = 0
    final: dict[str, Any] | None = None

    def add(self, chunk: BaseMessage) -> None:
        self.chunks += 1
        metadata = chunk.response_metadata
        if metadata.get("done") is True:
            self.final = dict(metadata)
        self.text.append(chunk.text)  # the content only: ChatOllama keeps thinking apart
        if chunk.additional_kwargs.get("reasoning_content"):
            return  # its logprobs are (or include) the thinking's: not the reply's evidence
        self.logprobs.extend(float(item["logprob"]) for item in metadata.get("logprobs") or ())

    def completion(self, url: str) -> Completion:
        if self.chunks == 0:
            raise PlannerError(
                f"Ollama at {url} answered 200 with an empty body; is base_url an Ollama "
                "server, not a proxy? Check the Ollama server log"
            )
        if self.final is None:
            raise PlannerError(
                f"Ollama at {url} ended the reply before its final line; check the Ollama "
                "server log and retry"
            )
        # Ollama counts the end-of-sequence token in eval_count ("stop": one was sampled;
        # no stop sequences are sent); llama.cpp's usage, which the embedded backend
        # reports, does not. Counted like llama.cpp, one logprob per completion token.
        evaluated = int(self.final.get("eval_count") or 0)
        eos = 1 if self.final.get("done_reason") == "stop" and evaluated else 0
        return Completion(
            text="".join(self.text),
            token_logprobs=tuple(self.logprobs) or None,
            # cached tokens included, so it is no prefill count (module docstring)
            prompt_tokens=int(self.final.get("prompt_eval_count") or 0),
            completion_tokens=evaluated - eos,
            prefill_tokens=None,
        )


def keep_alive_seconds(config: OllamaPlannerConfig, schedule: Any) -> int:
    """How long to ask Ollama to keep the model loaded after each request."""
    if config.keep_alive is not None:
        return int(config.keep_alive)
    every = getattr(schedule, "every", None)
    if every is None:  # a cron schedule: its gaps vary; an hour covers the usual ones
        return _CRON_KEEP_ALIVE
    tick = Decimal(every) + Decimal(getattr(schedule, "jitter", None) or 0)
    return max(_OLLAMA_KEEP_ALIVE, int(2 * tick) + 60)


def model_name(name: str) -> str:
    """`name` as Ollama resolves it (types/model/name.go ParseName, routes.go
    getExistingName): case-insensitive, the tag defaulting to ``latest``, the default
    registry host and ``library`` namespace optional."""
    name = name.strip().lower()
    for prefix in ("registry.ollama.ai/", "library/"):
        name = name.removeprefix(prefix)
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def _public(url: str) -> str:
    """`url` without user and password, for messages that end up in logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _short(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= _DETAIL else text[: _DETAIL - 1] + "…"


def _to_langchain(messages: list[ChatMessage]) -> list[BaseMessage]:
    return [_ROLES[message["role"]](content=message["content"]) for message in messages]
